"""``flowlane mail-in RECIPE --imap``: inbound email taken from an IMAP mailbox.

Every poll logs in (``FLOWLANE_IMAP_*``, see :class:`ImapSettings`), selects the folder and
takes its UNSEEN messages in UID order. Each one is read with ``BODY.PEEK[]`` (reading does
not mark it seen) and handed to :meth:`flowlane.runtime.mailin.MailIntake.process`, the very
function behind the SMTP receiver, which handles a Message-ID once. Then:

* handled (or seen before): marked ``\\Seen``, and moved to ``FLOWLANE_IMAP_DONE`` if set;
* refused for good (a forged reply address, an unknown sender, a message over
  :data:`~flowlane.runtime.mailin.MAX_MESSAGE`): marked ``\\Seen`` and ``\\Flagged`` and
  left in the folder for a person to look at, with a log line; it is never tried again;
* a failure that may pass (the database is away): left unseen, so the next poll tries again.

A crash between handling a message and marking it seen handles nothing twice: the next poll
takes it again and finds its Message-ID already handled. Use a mailbox (or a folder) of its
own: a message someone reads in a mail client before the poll is marked seen and skipped.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import signal
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType
from typing import cast, get_args

from flowlane.core.errors import ValidationError
from flowlane.runtime.mail import Security
from flowlane.runtime.mailin import MAX_MESSAGE, MailIntake

log = logging.getLogger("flowlane.imapin")

_SECURITY_VALUES: tuple[str, ...] = get_args(Security)
DEFAULT_INTERVAL_S = 60.0

__all__ = ["ImapError", "ImapPoller", "ImapSettings", "PollResult", "poll_forever"]


class ImapError(Exception):
    """The mailbox could not be read (connection, TLS, login, a refused command); the
    messages stay as they are and the next poll tries again."""


@dataclass(frozen=True)
class ImapSettings:
    """The mailbox to poll. ``port`` None: 993 with ``tls``, else 143. ``done_folder``: where
    handled messages go (None: they stay in ``folder``, seen)."""

    host: str
    username: str
    password: str
    port: int | None = None
    security: Security = "tls"
    folder: str = "INBOX"
    done_folder: str | None = None
    cafile: str | None = None
    """A PEM file of certificates to trust for TLS (a private CA, a self-signed server)."""
    timeout_s: float = 30.0

    def __repr__(self) -> str:  # never print the password
        return (
            f"ImapSettings(host={self.host!r}, username={self.username!r}, password='***', "
            f"port={self.port!r}, security={self.security!r}, folder={self.folder!r}, "
            f"done_folder={self.done_folder!r}, cafile={self.cafile!r}, "
            f"timeout_s={self.timeout_s!r})"
        )

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 993 if self.security == "tls" else 143

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ImapSettings:
        """Read ``FLOWLANE_IMAP_HOST``, ``_PORT``, ``_SECURITY`` (none / starttls / tls,
        default tls), ``_USER``, ``_PASSWORD``, ``_FOLDER`` (default INBOX), ``_DONE``,
        ``_CAFILE``. Host, user and password are required."""

        def get(name: str) -> str | None:
            value = env.get(f"FLOWLANE_IMAP_{name}")
            return value.strip() if value is not None and value.strip() else None

        missing = [f"FLOWLANE_IMAP_{name}" for name in ("HOST", "USER") if get(name) is None]
        if not env.get("FLOWLANE_IMAP_PASSWORD"):
            missing.append("FLOWLANE_IMAP_PASSWORD")
        if missing:
            raise ValidationError(f"IMAP polling needs {', '.join(missing)}", variable=missing[0])
        port: int | None = None
        raw_port = get("PORT")
        if raw_port is not None:
            try:
                port = int(raw_port)
            except ValueError:
                port = 0
            if not 0 < port < 65536:
                raise ValidationError(
                    f"FLOWLANE_IMAP_PORT must be an integer between 1 and 65535, got {raw_port!r}",
                    variable="FLOWLANE_IMAP_PORT",
                )
        security = (get("SECURITY") or "tls").lower()
        if security not in _SECURITY_VALUES:
            raise ValidationError(
                f"FLOWLANE_IMAP_SECURITY must be one of {', '.join(_SECURITY_VALUES)}, "
                f"got {get('SECURITY')!r}",
                variable="FLOWLANE_IMAP_SECURITY",
            )
        return cls(
            host=cast(str, get("HOST")),
            username=cast(str, get("USER")),
            password=env["FLOWLANE_IMAP_PASSWORD"],  # taken verbatim
            port=port,
            security=cast(Security, security),
            folder=get("FOLDER") or "INBOX",
            done_folder=get("DONE"),
            cafile=get("CAFILE"),
        )


@dataclass
class PollResult:
    """What one poll did, by UID: handled, refused (flagged) and left for the next poll."""

    handled: list[int]
    refused: list[int]
    retry: list[int]


def _mailbox(name: str) -> str:
    """A mailbox name as an IMAP quoted string (names with spaces; ASCII names only)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check(what: str, typ: str, data: object) -> None:
    if typ != "OK":
        raise ImapError(f"IMAP {what} failed: {typ} {data!r}")


_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


class ImapPoller:
    """Polls one mailbox into one :class:`MailIntake`."""

    def __init__(self, intake: MailIntake, settings: ImapSettings) -> None:
        self.intake = intake
        self.settings = settings

    def _connect(self) -> imaplib.IMAP4:
        s = self.settings
        where = f"IMAP {s.username}@{s.host}:{s.effective_port}"
        step = "connect"
        conn: imaplib.IMAP4 | None = None
        try:
            if s.security == "tls":
                conn = imaplib.IMAP4_SSL(
                    s.host, s.effective_port, ssl_context=s.tls_context(), timeout=s.timeout_s
                )
            else:
                conn = imaplib.IMAP4(s.host, s.effective_port, timeout=s.timeout_s)
                if s.security == "starttls":
                    step = "STARTTLS"
                    _check(step, *conn.starttls(ssl_context=s.tls_context()))
            step = "LOGIN"
            _check(step, *conn.login(s.username, s.password))
        except (imaplib.IMAP4.error, OSError, ImapError) as exc:  # SSLError is an OSError
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.shutdown()
            raise ImapError(f"{where}: {step} failed: {exc}") from exc
        return conn

    def poll(self) -> PollResult:
        """One poll: every UNSEEN message of the folder, oldest first. Raises
        :class:`ImapError` when the mailbox cannot be read (what was done stays done)."""
        result = PollResult([], [], [])
        conn = self._connect()
        try:
            _check("SELECT", *conn.select(_mailbox(self.settings.folder)))
            typ, data = conn.uid("SEARCH", "UNSEEN")
            _check("SEARCH", typ, data)
            uids = sorted(int(u) for chunk in data if chunk for u in bytes(chunk).split())
            for uid in uids:
                self._take(conn, uid, result)
            if result.handled and self.settings.done_folder is not None:
                self._move(conn, result.handled)
        except (imaplib.IMAP4.error, OSError) as exc:
            raise ImapError(f"IMAP {self.settings.host}: {exc}") from exc
        finally:
            self._logout(conn)
        if uids:
            log.info(
                "imap: %s handled, %s refused, %s left for the next poll",
                len(result.handled),
                len(result.refused),
                len(result.retry),
            )
        return result

    def _take(self, conn: imaplib.IMAP4, uid: int, result: PollResult) -> None:
        size = self._size(conn, uid)
        if size is not None and size > MAX_MESSAGE:
            log.warning("imap: message UID %s refused: %s bytes is over the limit", uid, size)
            self._flag(conn, uid, refused=True)
            result.refused.append(uid)
            return
        raw = self._fetch(conn, uid)
        if raw is None:  # gone meanwhile (expunged by another client)
            return
        outcome = self.intake.process(raw, [])
        if outcome.code == 250:
            self._flag(conn, uid, refused=False)
            result.handled.append(uid)
        elif outcome.code >= 500:
            log.warning("imap: message UID %s refused and flagged: %s", uid, outcome.text)
            self._flag(conn, uid, refused=True)
            result.refused.append(uid)
        else:
            result.retry.append(uid)

    def _size(self, conn: imaplib.IMAP4, uid: int) -> int | None:
        typ, data = conn.uid("FETCH", str(uid), "(RFC822.SIZE)")
        _check("FETCH", typ, data)
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            if isinstance(line, bytes) and re.search(rb"\bUID %d\b" % uid, line):
                found = _SIZE.search(line)
                return int(found.group(1)) if found is not None else None
        return None

    def _fetch(self, conn: imaplib.IMAP4, uid: int) -> bytes | None:
        typ, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
        _check("FETCH", typ, data)
        for item in data:
            if isinstance(item, tuple) and re.search(rb"\bUID %d\b" % uid, item[0]):
                return bytes(item[1])
        return None

    def _flag(self, conn: imaplib.IMAP4, uid: int, *, refused: bool) -> None:
        flags = r"(\Seen \Flagged)" if refused else r"(\Seen)"
        _check("STORE", *conn.uid("STORE", str(uid), "+FLAGS.SILENT", flags))

    def _move(self, conn: imaplib.IMAP4, uids: list[int]) -> None:
        assert self.settings.done_folder is not None
        target = _mailbox(self.settings.done_folder)
        uid_set = ",".join(str(u) for u in uids)
        typ, data = conn.capability()  # what the server can do once logged in
        _check("CAPABILITY", typ, data)
        capabilities = {c.upper() for line in data if line for c in bytes(line).split()}
        command = "MOVE" if b"MOVE" in capabilities else "COPY"
        typ, data = conn.uid(command, uid_set, target)
        if typ != "OK" and b"TRYCREATE" in b" ".join(d for d in data if isinstance(d, bytes)):
            _check("CREATE", *conn.create(target))  # the done folder, made on first use
            typ, data = conn.uid(command, uid_set, target)
        _check(command, typ, data)
        if command == "MOVE":
            return
        _check("STORE", *conn.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)"))
        if b"UIDPLUS" in capabilities:
            _check("EXPUNGE", *conn.uid("EXPUNGE", uid_set))
        else:
            _check("EXPUNGE", *conn.expunge())

    @staticmethod
    def _logout(conn: imaplib.IMAP4) -> None:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            conn.logout()


def poll_forever(
    poller: ImapPoller, interval_s: float = DEFAULT_INTERVAL_S, stop: threading.Event | None = None
) -> None:
    """Poll every ``interval_s`` seconds until ``stop`` is set (by default: until SIGTERM /
    SIGINT). A poll that fails is logged and the next one tries again."""
    if stop is None:
        stop = threading.Event()
        stopped = stop

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            stopped.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    s = poller.settings
    log.info("imap: polling %s@%s folder %s every %ss", s.username, s.host, s.folder, interval_s)
    while not stop.is_set():
        try:
            poller.poll()
        except ImapError as exc:
            log.warning("imap: poll failed, trying again in %ss: %s", interval_s, exc)
        stop.wait(interval_s)
