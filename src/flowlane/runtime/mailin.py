"""``flowlane mail-in``: an SMTP server that takes inbound email for the account.

Point the MX of the reply domain (``FLOWLANE_MAIL_DOMAIN``) or a forwarding rule of the
mailbox that receives purchase notifications at it. Every message is handled by
:func:`flowlane.services.inbound.receive_email` in one transaction, once per Message-ID:

* a reply to a task's email (to ``reply+<task id>.<user id>.<signature>@…``) becomes a
  comment of that user on the task, with its attachments; a forged address (RCPT TO), a
  sender who is not that user, or one who may not comment gets ``550`` (a fixed text: the
  reason goes to the log only) and nothing changes;
* a delivery status notification about one of our sent emails (its signed Message-ID)
  marks that email bounced;
* anything else fires the ``email`` event (processes launched on ``email`` start).

A failure that may pass (the database is away) answers ``451``, so the sending server tries
again later. Messages are handled one at a time, off the SMTP event loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from flowlane.core.errors import FlowlaneError
from flowlane.runtime.durable import request_account
from flowlane.services.account import Account
from flowlane.services.inbound import (
    NOT_ACCEPTED,
    EmailOutcome,
    is_reply_address,
    receive_email,
    reply_target,
)
from flowlane.services.signing import account_secret
from flowlane.store.sql.store import SqlStore

log = logging.getLogger("flowlane.mailin")

MAX_MESSAGE = 25 * 1024 * 1024
"""Largest email accepted, in bytes (the SMTP SIZE limit)."""

__all__ = ["InboundMailHandler", "MailInServer", "MailIntake", "serve"]


class MailIntake:
    """One raw message in, whatever brought it (the SMTP server here, the IMAP poller of
    :mod:`flowlane.runtime.imapin`): :meth:`process` hands it to ``receive_email``."""

    def __init__(
        self,
        store: SqlStore,
        *,
        data: Path | str | None = None,
        make_account: Callable[[], Account] | None = None,
    ) -> None:
        self.store = store
        self.data = data
        self._make_account = make_account
        self._secret: bytes | None = None

    def account(self) -> Account:
        if self._make_account is not None:
            return self._make_account()
        return request_account(self.store, self.data)

    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = account_secret(self.store)
        return self._secret

    def process(self, raw: bytes, rcpt_tos: list[str]) -> EmailOutcome:
        """Handle one message; never raises. The outcome's code says what became of it:
        250 handled (or seen before), 550 refused for good, 451 a failure that may pass."""
        # SMTP and IMAP lines end in CRLF; parse with LF like a message read from a file.
        raw = raw.replace(b"\r\n", b"\n")
        try:
            outcome = receive_email(self.account(), raw, rcpt_tos, self.secret())
        except FlowlaneError as exc:  # a bad message, not a passing trouble
            log.warning("mail-in: message refused: %s", exc)
            return EmailOutcome(550, NOT_ACCEPTED, {"kind": "refused", "reason": str(exc)})
        except Exception:
            log.exception("mail-in: message not handled; the sender will retry")
            return EmailOutcome(451, "4.3.0 Temporary failure, try again later")
        log.info("mail-in: %s %s", outcome.code, outcome.result)
        return outcome


class InboundMailHandler(MailIntake):
    """The aiosmtpd handler: RCPT checks reply addresses, DATA handles the message."""

    def __init__(
        self,
        store: SqlStore,
        *,
        data: Path | str | None = None,
        make_account: Callable[[], Account] | None = None,
    ) -> None:
        super().__init__(store, data=data, make_account=make_account)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mail-in")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if is_reply_address(address):
            loop = asyncio.get_running_loop()
            try:
                secret = await loop.run_in_executor(self._pool, self.secret)
            except Exception:
                log.exception("mail-in: the account secret could not be read")
                return "451 4.3.0 Temporary failure, try again later"
            if reply_target(secret, address) is None:
                return "550 5.1.1 No such recipient"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw or "").encode("utf-8", "surrogateescape")
        rcpt = list(envelope.rcpt_tos)
        loop = asyncio.get_running_loop()
        outcome = await loop.run_in_executor(self._pool, self.process, raw, rcpt)
        return outcome.reply


class MailInServer:
    """The SMTP server in a thread of its own: ``start()``, ``stop()``, or ``with``."""

    def __init__(self, handler: InboundMailHandler, host: str = "127.0.0.1", port: int = 2525):
        self.handler = handler
        self.host = host
        self.port = port
        self._controller = Controller(
            handler,
            hostname=host,
            port=port,
            data_size_limit=MAX_MESSAGE,
            ready_timeout=10.0,
        )

    def start(self) -> MailInServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
        self.handler.close()

    def __enter__(self) -> MailInServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve(store: SqlStore, host: str, port: int, *, data: Path | str | None = None) -> None:
    """Run the server until SIGTERM / SIGINT."""
    stopped = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with MailInServer(InboundMailHandler(store, data=data), host, port):
        log.info("mail-in: listening on %s:%s", host, port)
        stopped.wait()
