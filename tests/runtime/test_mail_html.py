"""Emails are multipart/alternative: the Markdown as text/plain, its HTML as text/html.

Rebuilding an email for a retry gives the same bytes (the MIME boundary included); a value a
template put into the body arrives escaped in the HTML part at a real SMTP server.
"""

from __future__ import annotations

from email.message import EmailMessage

from tests.smtp_sink import SmtpSink

from flowlane.model.render import render
from flowlane.runtime.mail import (
    SmtpSender,
    SmtpSettings,
    build_email,
    message_id,
    outbox_id_of,
)

SECRET = b"s" * 32
SETTINGS = SmtpSettings(sender="robot@school.example", timeout_s=5.0)
BODY = "Hello **{{ object.name }}**,\n\n| day | topic |\n|---|---|\n| 1 | Jinja |\n"


def parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def test_an_email_has_a_text_and_an_html_alternative() -> None:
    body = render(BODY, {"object": {"name": "Anna"}})
    msg = build_email(SETTINGS, outbox_id="i1.m2", to="anna@example.com", subject="Hi", body=body)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    text, html = parts(msg)
    assert text == body + "\n"  # the rendered Markdown, as the outbox keeps it
    assert "<strong>Anna</strong>" in html and "<td>Jinja</td>" in html
    assert html.startswith("<!DOCTYPE html>") and "<title>Hi</title>" in html


def test_rebuilding_an_email_gives_the_same_bytes() -> None:
    def build() -> bytes:
        return build_email(
            SETTINGS, outbox_id="i1.m2", to="anna@example.com", subject="Hi", body="Привет *Анна*"
        ).as_bytes()

    assert build() == build()
    other = build_email(SETTINGS, outbox_id="i1.m3", to="anna@example.com", subject="Hi", body="x")
    assert (
        other.get_boundary()
        != build_email(
            SETTINGS, outbox_id="i1.m2", to="anna@example.com", subject="Hi", body="x"
        ).get_boundary()
    )


def test_a_name_put_in_by_jinja_arrives_escaped_in_the_html_part() -> None:
    body = render(BODY, {"object": {"name": "<script>alert(1)</script>"}})
    with SmtpSink() as sink:
        settings = SmtpSettings(port=sink.port, sender="robot@school.example", timeout_s=5.0)
        with SmtpSender(settings) as sender:
            sender.send(
                build_email(
                    settings,
                    outbox_id="i1.m2",
                    to="anna@example.com",
                    subject="Hi",
                    body=body,
                    secret=SECRET,
                )
            )
        assert sink.wait_for(1, timeout=2)
        (got,) = sink.messages
    assert isinstance(got, EmailMessage)
    text, html = parts(got)
    assert "<script>alert(1)</script>" in text  # plain text shows it as written
    assert "<script>" not in html
    assert "<strong>&lt;script&gt;alert(1)&lt;/script&gt;</strong>" in html
    assert outbox_id_of(str(got["Message-ID"]), SECRET) == "i1.m2"


def test_outbox_id_of_takes_correctly_signed_message_ids_only() -> None:
    signed = message_id("i1.m6", secret=SECRET)
    assert signed.startswith("<i1.m6.") and signed == message_id("i1.m6", secret=SECRET)
    assert outbox_id_of(signed, SECRET) == "i1.m6"
    assert outbox_id_of(f" {signed} ", SECRET) == "i1.m6"
    assert outbox_id_of(signed, b"t" * 32) is None  # another secret
    assert outbox_id_of("<i1.m6@flowlane>", SECRET) is None  # unsigned
    assert outbox_id_of(signed.replace("i1.m6", "i1.m7"), SECRET) is None
    assert outbox_id_of(signed.replace("flowlane", "mail.example.org"), SECRET) is None
    assert outbox_id_of(signed.strip("<>"), SECRET) is None
    assert outbox_id_of("<@flowlane>", SECRET) is None
    # an id a msg-id cannot hold comes back with its X-Flowlane-Outbox header only
    odd = message_id("i1 m6", secret=SECRET)
    assert outbox_id_of(odd, SECRET) is None
    assert outbox_id_of(odd, SECRET, "i1 m6") == "i1 m6"
    assert outbox_id_of(signed, SECRET, "i1 m6") is None  # the header must match the signature
