"""The SMTP adapter of the outbox, against a real SMTP server (tests/smtp_sink.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Literal

import pytest
from tests.smtp_sink import SmtpSink, free_port

from flowlane.core.errors import ValidationError
from flowlane.runtime.mail import (
    PermanentDeliveryError,
    SmtpSender,
    SmtpSettings,
    TemporaryDeliveryError,
    build_email,
    message_id,
)

MSG_ID = re.compile(
    r"^<[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@flowlane>$"
)


def settings_for(port: int) -> SmtpSettings:
    return SmtpSettings(port=port, sender="robot@flowlane.test", timeout_s=2.0)


def email_for(settings: SmtpSettings, outbox_id: str, to: str = "anna@example.org") -> EmailMessage:
    return build_email(
        settings, outbox_id=outbox_id, to=to, subject=f"Task {outbox_id}", body="Hello"
    )


# --- message ids and building -------------------------------------------------------------


def test_message_id_is_stable_and_derived_from_the_outbox_id_only() -> None:
    assert message_id("i1.m6") == "<i1.m6@flowlane>"
    assert message_id("i1.m6") == message_id("i1.m6")
    assert message_id("i1.m6", domain="example.org") == "<i1.m6@example.org>"
    assert message_id("i1.m6") != message_id("i1.m7")


@pytest.mark.parametrize("outbox_id", ["i1 m6", "a<b>@c", ".lead", "trail.", "a..b", "заказ/7"])
def test_message_id_sanitizes_and_stays_unique(outbox_id: str) -> None:
    mid = message_id(outbox_id)
    assert MSG_ID.match(mid), mid
    assert mid == message_id(outbox_id)
    # a sanitized id never collides with the plain id it was sanitized into
    left = mid[1:-1].rsplit("@", 1)[0]
    plain = left.rsplit(".", 1)[0]
    assert message_id(plain) != mid


def test_message_id_keeps_allowed_punctuation_and_replaces_the_rest() -> None:
    assert message_id("a+b_c=d~e") == "<a+b_c=d~e@flowlane>"
    mid = message_id("i1 m6")
    assert mid.startswith("<i1-m6.") and mid.endswith("@flowlane>")
    with pytest.raises(ValidationError):
        message_id("")


def test_build_email_headers_and_utf8_body() -> None:
    settings = settings_for(25)
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    msg = build_email(
        settings,
        outbox_id="i1.m6",
        to=["anna@example.org", "boris@example.org"],
        subject="Счёт № 42",
        body="Привет, Анна!\n",
        date=when,
    )
    assert msg["From"] == "robot@flowlane.test"
    assert msg["To"] == "anna@example.org, boris@example.org"
    assert msg["Subject"] == "Счёт № 42"
    assert msg["Message-ID"] == "<i1.m6@flowlane>"
    assert msg["X-Flowlane-Outbox"] == "i1.m6"
    assert msg["Date"] == "Mon, 06 May 2024 07:08:09 +0000"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(preferencelist=("plain",))
    assert text is not None and text.get_content_charset() == "utf-8"
    assert text.get_content() == "Привет, Анна!\n"
    html = msg.get_body(preferencelist=("html",))
    assert html is not None and "<p>Привет, Анна!</p>" in html.get_content()
    plain = build_email(
        settings, outbox_id="i1.m6", to="a@b", subject="s", body="Привет", html=False
    )
    assert plain.get_content_charset() == "utf-8" and plain.get_content() == "Привет\n"
    assert msg.as_bytes().isascii()  # 7-bit clean on the wire
    assert build_email(settings, outbox_id="x", to="a@b", subject="s", body="b")["Date"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("subject", "a\r\nBcc: evil@example.org"), ("to", "a@b\nBcc: evil@example.org"), ("to", [])],
)
def test_build_email_refuses_header_injection_and_no_recipient(field: str, value: object) -> None:
    kwargs: dict[str, object] = {"outbox_id": "i1", "to": "a@b", "subject": "s", "body": "b"}
    kwargs[field] = value
    with pytest.raises(ValidationError):
        build_email(settings_for(25), **kwargs)  # type: ignore[arg-type]


# --- delivery against a real server ---------------------------------------------------------


def test_message_arrives_with_headers_and_cyrillic_body() -> None:
    with SmtpSink() as sink, SmtpSender(settings_for(sink.port)) as sender:
        settings = sender.settings
        sender.send(
            build_email(
                settings,
                outbox_id="i1.m6",
                to="anna@example.org",
                subject="Заявка одобрена",
                body="Здравствуйте, Анна!\nВаша заявка № 7 одобрена.\n",
            )
        )
        assert sink.wait_for(1, timeout=2)
        (got,) = sink.messages
        (delivery,) = sink.deliveries
    assert isinstance(got, EmailMessage)
    assert got["Message-ID"] == "<i1.m6@flowlane>"
    assert got["From"] == "robot@flowlane.test"
    assert got["To"] == "anna@example.org"
    assert got["Subject"] == "Заявка одобрена"
    assert got["X-Flowlane-Outbox"] == "i1.m6"
    text = got.get_body(preferencelist=("plain",))
    assert text is not None
    assert text.get_content() == "Здравствуйте, Анна!\nВаша заявка № 7 одобрена.\n"
    assert delivery.mail_from == "robot@flowlane.test"
    assert delivery.rcpt_tos == ("anna@example.org",)
    assert sink.message_ids() == ["<i1.m6@flowlane>"]


def test_550_is_permanent() -> None:
    with SmtpSink(reject_codes={"ghost@example.org": "550 5.1.1 no such user"}) as sink:
        with SmtpSender(settings_for(sink.port)) as sender:
            with pytest.raises(PermanentDeliveryError) as err:
                sender.send(email_for(sender.settings, "i1.m1", to="ghost@example.org"))
            # the connection survives a refusal: the next email goes through on it
            sender.send(email_for(sender.settings, "i1.m2"))
            assert sink.wait_for(1, timeout=2)
        assert sink.connections == 1
    assert err.value.code == 550
    assert f"127.0.0.1:{sink.port}" in str(err.value)
    assert "550" in str(err.value) and "no such user" in str(err.value)
    assert sink.message_ids() == ["<i1.m2@flowlane>"]


def test_451_is_temporary() -> None:
    with (
        SmtpSink(reject_codes={"Busy@Example.org": "451 4.3.0 try later"}) as sink,
        SmtpSender(settings_for(sink.port)) as sender,
        pytest.raises(TemporaryDeliveryError) as err,
    ):
        sender.send(email_for(sender.settings, "i1.m1", to="busy@example.org"))
    assert err.value.code == 451
    assert f"127.0.0.1:{sink.port}" in str(err.value) and "try later" in str(err.value)
    assert sink.messages == []


def test_mixed_refusals_with_a_4xx_are_temporary() -> None:
    rejects = {"ghost@example.org": "550 no such user", "busy@example.org": "452 mailbox full"}
    with SmtpSink(reject_codes=rejects) as sink, SmtpSender(settings_for(sink.port)) as sender:
        msg = build_email(
            sender.settings,
            outbox_id="i1.m1",
            to=["ghost@example.org", "busy@example.org"],
            subject="s",
            body="b",
        )
        with pytest.raises(TemporaryDeliveryError) as err:
            sender.send(msg)
    assert "ghost@example.org" in str(err.value) and "busy@example.org" in str(err.value)


def test_partial_refusal_is_permanent_so_accepted_recipients_get_no_duplicate() -> None:
    with SmtpSink(reject_codes={"ghost@example.org": "550 no such user"}) as sink:
        with SmtpSender(settings_for(sink.port)) as sender:
            msg = build_email(
                sender.settings,
                outbox_id="i1.m1",
                to=["anna@example.org", "ghost@example.org"],
                subject="s",
                body="b",
            )
            with pytest.raises(PermanentDeliveryError, match=r"ghost@example\.org") as err:
                sender.send(msg)
        assert sink.wait_for(1, timeout=2)
    assert err.value.code == 550
    assert sink.deliveries[0].rcpt_tos == ("anna@example.org",)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("554 5.6.0 content rejected", PermanentDeliveryError),
        ("452 4.3.1 disk full", TemporaryDeliveryError),
    ],
)
def test_data_refusal_is_classified_by_code(reply: str, error: type[Exception]) -> None:
    with (
        SmtpSink(reject_data=reply) as sink,
        SmtpSender(settings_for(sink.port)) as sender,
        pytest.raises(error) as err,
    ):
        sender.send(email_for(sender.settings, "i1.m1"))
    assert reply.split(" ", 1)[0] in str(err.value) and reply.split(" ")[-1] in str(err.value)
    assert sink.messages == []


def test_connection_refused_is_temporary() -> None:
    port = free_port()  # nothing listens there
    with SmtpSender(settings_for(port)) as sender:
        with pytest.raises(TemporaryDeliveryError) as err:
            sender.send(email_for(sender.settings, "i1.m1"))
        assert sender.connections_opened == 0
    assert err.value.code is None
    assert f"127.0.0.1:{port}" in str(err.value)
    assert "ConnectionRefusedError" in str(err.value)


def test_one_connection_carries_several_messages() -> None:
    with SmtpSink() as sink, SmtpSender(settings_for(sink.port)) as sender:
        for n in range(3):
            sender.send(email_for(sender.settings, f"i1.m{n}"))
        assert sink.wait_for(3, timeout=2)
        assert sink.connections == 1
        assert sink.open_connections == 1
        assert sender.connections_opened == 1
    assert sink.message_ids() == ["<i1.m0@flowlane>", "<i1.m1@flowlane>", "<i1.m2@flowlane>"]
    assert sink.count_by_message_id() == {
        "<i1.m0@flowlane>": 1,
        "<i1.m1@flowlane>": 1,
        "<i1.m2@flowlane>": 1,
    }


def test_reconnects_once_after_the_server_dropped_the_connection() -> None:
    with SmtpSink() as sink, SmtpSender(settings_for(sink.port)) as sender:
        sender.send(email_for(sender.settings, "i1.m1"))
        assert sink.drop_connections() == 1
        sender.send(email_for(sender.settings, "i1.m2"))
        assert sink.wait_for(2, timeout=2)
        assert sink.connections == 2
        assert sender.connections_opened == 2
    assert sink.count_by_message_id() == {"<i1.m1@flowlane>": 1, "<i1.m2@flowlane>": 1}


def test_reconnects_to_a_restarted_server_on_the_same_port() -> None:
    with SmtpSender(settings_for(free_port())) as sender:
        port = sender.settings.port
        with SmtpSink(port=port) as first:
            sender.send(email_for(sender.settings, "i1.m1"))
            assert first.wait_for(1, timeout=2)
        with SmtpSink(port=port) as second:
            sender.send(email_for(sender.settings, "i1.m2"))
            assert second.wait_for(1, timeout=2)
        assert sender.connections_opened == 2
    assert first.message_ids() == ["<i1.m1@flowlane>"]
    assert second.message_ids() == ["<i1.m2@flowlane>"]


def test_server_gone_for_good_is_temporary_after_one_retry() -> None:
    with SmtpSender(settings_for(free_port())) as sender:
        with SmtpSink(port=sender.settings.port) as sink:
            sender.send(email_for(sender.settings, "i1.m1"))
            assert sink.wait_for(1, timeout=2)
        with pytest.raises(TemporaryDeliveryError):
            sender.send(email_for(sender.settings, "i1.m2"))
        assert sender.connections_opened == 1


def test_close_is_idempotent_and_the_sender_reopens_lazily() -> None:
    with SmtpSink() as sink:
        sender = SmtpSender(settings_for(sink.port))
        sender.close()  # nothing open yet
        sender.send(email_for(sender.settings, "i1.m1"))
        sender.close()
        sender.close()
        sender.send(email_for(sender.settings, "i1.m2"))
        sender.close()
        assert sink.wait_for(2, timeout=2)
        assert sink.connections == 2
    assert sender.connections_opened == 2


# --- settings ---------------------------------------------------------------------------


def test_settings_from_env() -> None:
    settings = SmtpSettings.from_env(
        {
            "FLOWLANE_SMTP_HOST": "mail.example.org",
            "FLOWLANE_SMTP_PORT": "587",
            "FLOWLANE_SMTP_SECURITY": "STARTTLS",
            "FLOWLANE_SMTP_USER": "robot",
            "FLOWLANE_SMTP_PASSWORD": " s3cret ",
            "FLOWLANE_SMTP_FROM": "Flowlane <robot@example.org>",
            "UNRELATED": "x",
        }
    )
    assert settings == SmtpSettings(
        host="mail.example.org",
        port=587,
        security="starttls",
        username="robot",
        password=" s3cret ",
        sender="Flowlane <robot@example.org>",
    )
    assert "s3cret" not in repr(settings)


def test_settings_from_empty_env_are_the_defaults() -> None:
    assert SmtpSettings.from_env({}) == SmtpSettings()
    assert SmtpSettings.from_env({"FLOWLANE_SMTP_PORT": "", "FLOWLANE_SMTP_HOST": " "}) == (
        SmtpSettings()
    )
    assert SmtpSettings() == SmtpSettings(
        host="127.0.0.1", port=25, security="none", sender="flowlane@localhost", timeout_s=10.0
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FLOWLANE_SMTP_PORT", "smtp"),
        ("FLOWLANE_SMTP_PORT", "25.5"),
        ("FLOWLANE_SMTP_PORT", "0"),
        ("FLOWLANE_SMTP_PORT", "70000"),
        ("FLOWLANE_SMTP_SECURITY", "ssl"),
        ("FLOWLANE_SMTP_SECURITY", "yes"),
    ],
)
def test_settings_from_env_names_the_bad_variable(name: str, value: str) -> None:
    with pytest.raises(ValidationError, match=name) as err:
        SmtpSettings.from_env({name: value})
    assert value in str(err.value)
    assert err.value.fields["variable"] == name


@pytest.mark.parametrize(
    ("security", "username", "error", "text"),
    [
        ("starttls", None, PermanentDeliveryError, "STARTTLS"),
        ("none", "robot", PermanentDeliveryError, "AUTH"),
        ("tls", None, TemporaryDeliveryError, "SSL"),
    ],
)
def test_security_the_server_does_not_offer_fails_cleanly(
    security: Literal["starttls", "tls", "none"],
    username: str | None,
    error: type[Exception],
    text: str,
) -> None:
    with SmtpSink() as sink:
        settings = SmtpSettings(
            port=sink.port, security=security, username=username, password="pw", timeout_s=2.0
        )
        with SmtpSender(settings) as sender, pytest.raises(error, match=text):
            sender.send(email_for(settings, "i1.m1"))
        assert sender.connections_opened == 0
    assert sink.messages == []
