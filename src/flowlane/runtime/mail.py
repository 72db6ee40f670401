"""Email delivery for the durable outbox: settings, message building and an SMTP sender.

The outbox hands every email a stable id; :func:`message_id` turns it into the Message-ID,
so a message retried after an unclear failure carries the same Message-ID and receivers can
drop the duplicate. Given the account secret, the Message-ID also carries a signature of the
id, so that a delivery report naming it is known to be about an email we sent
(:func:`outbox_id_of`). :class:`SmtpSender` keeps one connection open across sends and tells the
outbox whether a failure is worth retrying (:class:`TemporaryDeliveryError`) or not
(:class:`PermanentDeliveryError`).
"""

from __future__ import annotations

import hashlib
import re
import smtplib
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from types import TracebackType
from typing import Literal, Protocol, cast, get_args

from flowlane.core.errors import ValidationError
from flowlane.model.markdown import html_document, markdown_to_html, markdown_to_text
from flowlane.services.inbound import outbox_signature, signed_outbox_id
from flowlane.store.records import SinkMail

Security = Literal["none", "starttls", "tls"]
_SECURITY_VALUES: tuple[str, ...] = get_args(Security)
MailMode = Literal["smtp", "sink"]
MAIL_MODES: tuple[str, ...] = get_args(MailMode)

__all__ = [
    "MAIL_MODES",
    "DeliveryError",
    "MailMode",
    "PermanentDeliveryError",
    "Security",
    "Sender",
    "SinkSender",
    "SmtpSender",
    "SmtpSettings",
    "TemporaryDeliveryError",
    "build_email",
    "mail_mode",
    "message_id",
    "outbox_id_of",
]


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to hand mail over. ``timeout_s`` bounds every socket operation."""

    host: str = "127.0.0.1"
    port: int = 25
    security: Security = "none"
    username: str | None = None
    password: str | None = None
    sender: str = "flowlane@localhost"
    timeout_s: float = 10.0
    cafile: str | None = None
    """A PEM file of certificates to trust for TLS (a private CA, a self-signed server);
    without it the system's trusted certificates are used."""

    def __repr__(self) -> str:  # never print the password
        password = None if self.password is None else "***"
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port!r}, security={self.security!r}, "
            f"username={self.username!r}, password={password!r}, sender={self.sender!r}, "
            f"timeout_s={self.timeout_s!r}, cafile={self.cafile!r})"
        )

    def tls_context(self) -> ssl.SSLContext:
        """The context TLS connections verify the server with (``cafile`` if given)."""
        return ssl.create_default_context(cafile=self.cafile)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmtpSettings:
        """Read ``FLOWLANE_SMTP_*``; unset or empty variables keep their defaults."""

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value is not None and value.strip() else None

        defaults = cls()
        port = defaults.port
        raw_port = get("FLOWLANE_SMTP_PORT")
        if raw_port is not None:
            try:
                port = int(raw_port)
            except ValueError:
                raise ValidationError(
                    f"FLOWLANE_SMTP_PORT must be an integer, got {raw_port!r}",
                    variable="FLOWLANE_SMTP_PORT",
                ) from None
            if not 0 < port < 65536:
                raise ValidationError(
                    f"FLOWLANE_SMTP_PORT must be between 1 and 65535, got {port}",
                    variable="FLOWLANE_SMTP_PORT",
                )
        security = defaults.security
        raw_security = get("FLOWLANE_SMTP_SECURITY")
        if raw_security is not None:
            if raw_security.lower() not in _SECURITY_VALUES:
                raise ValidationError(
                    f"FLOWLANE_SMTP_SECURITY must be one of {', '.join(_SECURITY_VALUES)}, "
                    f"got {raw_security!r}",
                    variable="FLOWLANE_SMTP_SECURITY",
                )
            security = cast(Security, raw_security.lower())
        password = env.get("FLOWLANE_SMTP_PASSWORD") or None  # passwords are taken verbatim
        return cls(
            host=get("FLOWLANE_SMTP_HOST") or defaults.host,
            port=port,
            security=security,
            username=get("FLOWLANE_SMTP_USER"),
            password=password,
            sender=get("FLOWLANE_SMTP_FROM") or defaults.sender,
            cafile=get("FLOWLANE_SMTP_CAFILE"),
        )


# atext of RFC 5322 (section 3.2.3); dots are handled separately (dot-atom-text).
_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]")


def _dot_atom(text: str) -> str:
    """``text`` as RFC 5322 dot-atom-text: bad characters and empty dot parts become '-'."""
    return ".".join(_NOT_ATEXT.sub("-", part) or "-" for part in text.split("."))


def message_id(outbox_id: str, domain: str = "flowlane", *, secret: bytes | None = None) -> str:
    """The Message-ID of the email with outbox id ``outbox_id``: ``<i1.m6@flowlane>``, or
    with the account ``secret`` ``<i1.m6.<signature>@flowlane>`` (the worker's emails).

    Derived from the id (and the secret) alone, so every retry of the same email carries the
    same Message-ID. Characters a msg-id cannot hold become '-'; when that changed anything, a
    short hash of the original id is appended so that different ids never share a Message-ID.
    """
    if not outbox_id:
        raise ValidationError("an outbox id must not be empty")
    left = _dot_atom(outbox_id)
    if left != outbox_id:
        digest = hashlib.sha256(outbox_id.encode("utf-8")).hexdigest()[:8]
        left = f"{left}.{digest}"
    if secret is not None:
        left = f"{left}.{outbox_signature(secret, outbox_id)}"
    return f"<{left}@{_dot_atom(domain or 'flowlane')}>"


def outbox_id_of(
    message_id_header: str, secret: bytes, outbox_header: str | None = None
) -> str | None:
    """The outbox id whose signed :func:`message_id` is ``message_id_header``, or None (not
    ours, or a wrong signature).

    Ids made only of msg-id characters come back from their Message-ID; for others (with a
    hash appended) pass the ``X-Flowlane-Outbox`` header the email carries too, as
    ``outbox_header``: it is taken only when the Message-ID carries its signature.
    """
    return signed_outbox_id(secret, message_id_header, outbox_header)


def _header_value(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValidationError(f"the {name} of an email must be one line", header=name)
    return value


def build_email(
    settings: SmtpSettings,
    *,
    outbox_id: str,
    to: str | Sequence[str],
    subject: str,
    body: str,
    date: datetime | None = None,
    reply_to: str | None = None,
    html: bool = True,
    secret: bytes | None = None,
) -> EmailMessage:
    """A UTF-8 email. ``date`` (timezone-aware) sets Date; without it the relay does.
    ``secret`` (the account's) signs the Message-ID (:func:`message_id`): only then can a
    bounce be matched to the email.

    ``body`` is Markdown (as the outbox keeps it): with ``html`` the email is
    multipart/alternative, the Markdown as text/plain and its HTML (raw HTML in the text
    escaped) as text/html; without, plain text only. The result depends only on the
    arguments (the MIME boundary too), so rebuilding it for a retry gives the same message.
    """
    recipients = [to] if isinstance(to, str) else list(to)
    if not recipients or not all(r.strip() for r in recipients):
        raise ValidationError("an email needs at least one recipient", outbox_id=outbox_id)
    msg = EmailMessage()
    msg["From"] = _header_value("sender", settings.sender)
    msg["To"] = ", ".join(_header_value("recipient", r) for r in recipients)
    msg["Subject"] = _header_value("subject", subject)
    msg["Message-ID"] = message_id(outbox_id, secret=secret)
    msg["X-Flowlane-Outbox"] = _header_value("outbox id", outbox_id)
    if reply_to is not None:  # a task's reply address (runtime/mailin.py reads replies)
        msg["Reply-To"] = _header_value("reply address", reply_to)
    if date is not None:
        msg["Date"] = format_datetime(date)
    # Non-ASCII text goes quoted-printable: safe through relays without 8BITMIME.
    cte = None if body.isascii() else "quoted-printable"
    # The body's values are Markdown-escaped (model/markdown.py): shown as typed in the text.
    msg.set_content(markdown_to_text(body), charset="utf-8", cte=cte)
    if html:
        page = html_document(markdown_to_html(body), title=subject)
        page_cte = None if page.isascii() else "quoted-printable"
        msg.add_alternative(page, subtype="html", charset="utf-8", cte=page_cte)
        seed = f"{outbox_id}\n{subject}\n{body}".encode()
        msg.set_boundary(f"==flowlane-{hashlib.sha256(seed).hexdigest()[:32]}==")
    return msg


class DeliveryError(Exception):
    """An email was not handed over. ``code`` is the SMTP reply code when there was one."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message


class PermanentDeliveryError(DeliveryError):
    """The server refused for good (5xx): retrying the same email will not help."""


class TemporaryDeliveryError(DeliveryError):
    """A 4xx reply or a connection problem: retry later."""


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


class SmtpSender:
    """Sends emails over one SMTP connection, opened lazily and reopened when it dropped.

    Not thread-safe: use one sender per worker.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._conn: smtplib.SMTP | None = None
        self.connections_opened = 0

    @property
    def _where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Say QUIT and close the connection, if one is open. Never raises."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            conn.close()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        conn: smtplib.SMTP
        if s.security == "tls":
            conn = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=s.tls_context())
        else:
            conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
        try:
            if s.security == "starttls":
                conn.ehlo()
                conn.starttls(context=s.tls_context())
                conn.ehlo()
            if s.username is not None:
                conn.login(s.username, s.password or "")
        except BaseException:
            conn.close()
            raise
        self.connections_opened += 1
        return conn

    def send(self, msg: EmailMessage) -> None:
        """Hand ``msg`` to the server; raise a :class:`DeliveryError` subclass if it failed.

        A connection kept from an earlier send may have been closed by the server in the
        meantime; then the email is tried once more on a fresh connection.
        """
        retry = self._conn is not None
        while True:
            try:
                self._send_once(msg)
                return
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code == 421:  # the server closes the connection with this reply
                    self._drop()
                raise self._classify(exc) from exc
            except smtplib.SMTPServerDisconnected as exc:
                self._drop()
                if not retry:
                    raise self._classify(exc) from exc
            except smtplib.SMTPException as exc:  # refused recipients, unsupported feature
                raise self._classify(exc) from exc
            except OSError as exc:  # connection refused, reset, timed out, TLS failure
                self._drop()
                if not retry:
                    raise self._classify(exc) from exc
            retry = False

    def _send_once(self, msg: EmailMessage) -> None:
        if self._conn is None:
            self._conn = self._connect()
        refused = self._conn.send_message(msg, from_addr=self.settings.sender)
        if refused:  # some recipients took it, some did not: a retry would duplicate it
            detail = "; ".join(f"{r}: {c} {_text(t)}" for r, (c, t) in refused.items())
            raise PermanentDeliveryError(
                f"SMTP {self._where} refused some recipients ({detail}); "
                f"the others received {msg['Message-ID']}",
                code=max(c for c, _ in refused.values()),
            )

    def _classify(self, exc: BaseException) -> DeliveryError:
        where = self._where
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            replies = exc.recipients
            detail = "; ".join(f"{r}: {c} {_text(t)}" for r, (c, t) in replies.items())
            codes = [c for c, _ in replies.values()]
            if codes and all(c >= 500 for c in codes):
                return PermanentDeliveryError(
                    f"SMTP {where} refused all recipients: {detail}", code=max(codes)
                )
            return TemporaryDeliveryError(
                f"SMTP {where} refused recipients for now: {detail}",
                code=min(codes) if codes else None,
            )
        if isinstance(exc, smtplib.SMTPResponseException):
            code = exc.smtp_code
            text = f"SMTP {where} replied {code} {_text(exc.smtp_error)}"
            if 500 <= code < 600:
                return PermanentDeliveryError(text, code=code)
            return TemporaryDeliveryError(text, code=code)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            # e.g. STARTTLS or AUTH configured but not offered: no retry will change that.
            return PermanentDeliveryError(f"SMTP {where} lacks what the settings ask for: {exc}")
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return TemporaryDeliveryError(f"SMTP {where} closed the connection: {exc}")
        return TemporaryDeliveryError(
            f"SMTP {where} could not be reached: {type(exc).__name__}: {exc}"
        )


def mail_mode(env: Mapping[str, str], default: MailMode = "smtp") -> MailMode:
    """``FLOWLANE_MAIL``: ``smtp`` sends emails, ``sink`` stores them in the database instead
    (read them with :func:`flowlane.services.messages.sink_mails`); unset: ``default``."""
    raw = (env.get("FLOWLANE_MAIL") or "").strip().lower()
    if not raw:
        return default
    if raw not in MAIL_MODES:
        raise ValidationError(
            f"FLOWLANE_MAIL must be one of {', '.join(MAIL_MODES)}, got {raw!r}",
            variable="FLOWLANE_MAIL",
        )
    return cast(MailMode, raw)


class Sender(Protocol):
    """Hands emails over; raises a :class:`DeliveryError` subclass when it could not."""

    def send(self, msg: EmailMessage) -> None: ...

    def close(self) -> None: ...


class SinkStore(Protocol):
    def add_sink_mail(self, mail: SinkMail) -> bool: ...


class SinkSender:
    """The mail sink: stores every email (``sink_mails``) instead of sending it.

    Once per outbox id: an email stored again after a retry is not stored twice.
    """

    def __init__(self, store: SinkStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    def send(self, msg: EmailMessage) -> None:
        outbox_id = msg["X-Flowlane-Outbox"]
        if not outbox_id:
            raise PermanentDeliveryError("the mail sink keeps only emails of the outbox")
        self.store.add_sink_mail(
            SinkMail(
                outbox_id=str(outbox_id),
                message_id=str(msg["Message-ID"] or ""),
                to=str(msg["To"] or ""),
                subject=str(msg["Subject"] or ""),
                raw=msg.as_string(),
                stored_at=self.clock(),
            )
        )

    def close(self) -> None:
        """Nothing to release."""
