"""SMTP settings against a real aiosmtpd server on loopback: STARTTLS and implicit TLS with a
self-signed certificate made for the test (trusted through ``cafile``), and AUTH.

The certificate is made with ``openssl req`` once per module; every server listens on an
ephemeral port of 127.0.0.1.
"""

from __future__ import annotations

import email
import email.policy
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from tests.smtp_sink import free_port

from flowlane.runtime.mail import (
    PermanentDeliveryError,
    Security,
    SmtpSender,
    SmtpSettings,
    TemporaryDeliveryError,
    build_email,
)

USER, PASSWORD = "robot", "s3cret pass"


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    folder = tmp_path_factory.mktemp("tls")
    made = Cert(folder / "cert.pem", folder / "key.pem")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(made.key), "-out", str(made.cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return made


@dataclass
class Received:
    """What the server took: raw messages and the logins it accepted."""

    messages: list[email.message.Message] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler:
    def __init__(self, got: Received) -> None:
        self.got = got

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        msg = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
        with self.got.lock:
            self.got.messages.append(msg)
        return "250 OK"


def _authenticator(got: Received) -> Any:
    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        if ok:
            with got.lock:
                got.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)

    return check


@dataclass
class Server:
    port: int
    got: Received


def _serve(cert: Cert, *, implicit: bool, auth: bool) -> Iterator[Server]:
    got = Received()
    port = free_port()
    kwargs: dict[str, Any] = {}
    if implicit:
        kwargs["ssl_context"] = cert.server_context()
    else:
        kwargs.update(tls_context=cert.server_context(), require_starttls=True)
    if auth:
        kwargs.update(authenticator=_authenticator(got), auth_required=True, auth_require_tls=True)
    controller = Controller(
        _Handler(got), hostname="127.0.0.1", port=port, server_hostname="localhost", **kwargs
    )
    controller.start()
    try:
        yield Server(port, got)
    finally:
        controller.stop()


@pytest.fixture
def starttls_auth(cert: Cert) -> Iterator[Server]:
    yield from _serve(cert, implicit=False, auth=True)


@pytest.fixture
def implicit_tls(cert: Cert) -> Iterator[Server]:
    yield from _serve(cert, implicit=True, auth=False)


def settings(port: int, security: Security, **kw: Any) -> SmtpSettings:
    return SmtpSettings(
        port=port, security=security, sender="robot@school.example", timeout_s=5.0, **kw
    )


def send(s: SmtpSettings, outbox_id: str = "i1.m2") -> None:
    msg = build_email(s, outbox_id=outbox_id, to="anna@example.com", subject="Hi", body="**Hi**")
    with SmtpSender(s) as sender:
        sender.send(msg)


def test_starttls_with_a_trusted_self_signed_certificate_and_auth_delivers(
    cert: Cert, starttls_auth: Server
) -> None:
    s = settings(
        starttls_auth.port, "starttls", cafile=str(cert.cert), username=USER, password=PASSWORD
    )
    send(s)
    (msg,) = starttls_auth.got.messages
    assert msg["Message-ID"] == "<i1.m2@flowlane>"
    assert starttls_auth.got.logins == [USER]


def test_starttls_without_trusting_the_certificate_fails_and_sends_nothing(
    starttls_auth: Server,
) -> None:
    s = settings(starttls_auth.port, "starttls", username=USER, password=PASSWORD)
    with pytest.raises(TemporaryDeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        send(s)
    assert starttls_auth.got.messages == []


def test_a_wrong_password_is_a_permanent_failure(cert: Cert, starttls_auth: Server) -> None:
    s = settings(
        starttls_auth.port, "starttls", cafile=str(cert.cert), username=USER, password="nope"
    )
    with pytest.raises(PermanentDeliveryError) as failed:
        send(s)
    assert failed.value.code == 535
    assert starttls_auth.got.messages == [] and starttls_auth.got.logins == []


def test_without_starttls_a_server_requiring_it_refuses_for_good(starttls_auth: Server) -> None:
    with pytest.raises(PermanentDeliveryError) as failed:
        send(settings(starttls_auth.port, "none"))
    assert failed.value.code == 530
    assert starttls_auth.got.messages == []


def test_implicit_tls_with_the_certificate_trusted_delivers(
    cert: Cert, implicit_tls: Server
) -> None:
    send(settings(implicit_tls.port, "tls", cafile=str(cert.cert)), "i7.m3")
    (msg,) = implicit_tls.got.messages
    assert msg["Message-ID"] == "<i7.m3@flowlane>"


def test_cafile_comes_from_the_environment(cert: Cert) -> None:
    s = SmtpSettings.from_env(
        {
            "FLOWLANE_SMTP_HOST": "127.0.0.1",
            "FLOWLANE_SMTP_SECURITY": "starttls",
            "FLOWLANE_SMTP_CAFILE": f" {cert.cert} ",
        }
    )
    assert s.cafile == str(cert.cert)
    assert "cafile=" in repr(s)
    assert SmtpSettings.from_env({}).cafile is None
    ctx = s.tls_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
