"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 that keeps what it receives.

    with SmtpSink() as sink:
        send_to("127.0.0.1", sink.port)
        assert sink.wait_for(1, timeout=2)
        assert sink.message_ids() == ["<i1.m6@flowlane>"]

``reject_codes`` maps a recipient address to the reply its RCPT TO gets ("550 no such user",
"451 try later"); ``reject_data`` is the reply to every DATA instead of accepting it.
``drop_connections()`` closes every client connection from the server side, like a relay that
timed out an idle client. ``SmtpSink(port=p)`` listens on a given port, e.g. to restart a
sink where a client expects it.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from email.message import Message
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["Delivery", "SmtpSink", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (aiosmtpd cannot bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Delivery:
    """One accepted DATA: the envelope and the raw bytes as received."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self._sink.reject_codes.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._sink.reject_data is not None:
            return self._sink.reject_data
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        self._sink._received(
            Delivery(str(envelope.mail_from), tuple(envelope.rcpt_tos), raw),
        )
        return "250 Message accepted for delivery"


class _TrackedSMTP(SMTP):
    """An SMTP session that tells the sink when its connection opens and closes."""

    def __init__(self, sink: SmtpSink, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sink = sink

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        is_new = self.transport is None
        super().connection_made(transport)
        if is_new:
            self._sink._opened(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._sink._closed(self)
        super().connection_lost(error)


class _Controller(Controller):
    def __init__(self, sink: SmtpSink, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sink = sink

    def factory(self) -> SMTP:
        return _TrackedSMTP(self._sink, self.handler, **self.SMTP_kwargs)


class SmtpSink:
    """A context manager running a real SMTP server on 127.0.0.1; thread-safe to read."""

    def __init__(
        self,
        port: int | None = None,
        *,
        reject_codes: dict[str, str] | None = None,
        reject_data: str | None = None,
    ) -> None:
        self.port = free_port() if port is None else port
        self.reject_codes = {k.lower(): v for k, v in (reject_codes or {}).items()}
        self.reject_data = reject_data
        self._cond = threading.Condition()
        self._deliveries: list[Delivery] = []
        self._messages: list[Message] = []
        self._sessions: set[_TrackedSMTP] = set()
        self._connections = 0
        self._controller = _Controller(
            self, handler=_Handler(self), hostname="127.0.0.1", port=self.port
        )
        self._running = False

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> SmtpSink:
        self._controller.start()
        self._running = True
        # Controller.start() opened one connection itself to see the server answer.
        with self._cond:
            self._cond.wait_for(lambda: not self._sessions, timeout=2.0)
            self._connections = 0
        return self

    def stop(self) -> None:
        if not self._running:
            return
        self.drop_connections()
        self._controller.stop()
        self._running = False

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def drop_connections(self, timeout: float = 2.0) -> int:
        """Close every open client connection from the server side; return how many."""
        with self._cond:
            sessions = list(self._sessions)
        loop = self._controller.loop

        def close_all() -> None:
            for session in sessions:
                if session.transport is not None:
                    session.transport.close()

        loop.call_soon_threadsafe(close_all)
        with self._cond:
            if not self._cond.wait_for(lambda: not self._sessions, timeout=timeout):
                raise TimeoutError("SMTP sink: connections did not close")
        return len(sessions)

    # --- called from the server thread --------------------------------------------------

    def _opened(self, session: _TrackedSMTP) -> None:
        with self._cond:
            self._sessions.add(session)
            self._connections += 1
            self._cond.notify_all()

    def _closed(self, session: _TrackedSMTP) -> None:
        with self._cond:
            self._sessions.discard(session)
            self._cond.notify_all()

    def _received(self, delivery: Delivery) -> None:
        # SMTP lines end in CRLF; parse with LF like a message read from a file.
        text = delivery.raw.replace(b"\r\n", b"\n")
        parsed = email.message_from_bytes(text, policy=email.policy.default)
        with self._cond:
            self._deliveries.append(delivery)
            self._messages.append(parsed)
            self._cond.notify_all()

    # --- reading ---------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        """The accepted messages in arrival order (a copy; parsed with policy.default)."""
        with self._cond:
            return list(self._messages)

    @property
    def deliveries(self) -> list[Delivery]:
        with self._cond:
            return list(self._deliveries)

    @property
    def connections(self) -> int:
        """Client connections accepted since start (not counting the controller's probe)."""
        with self._cond:
            return self._connections

    @property
    def open_connections(self) -> int:
        with self._cond:
            return len(self._sessions)

    def message_ids(self) -> list[str]:
        return [str(m.get("Message-ID", "")).strip() for m in self.messages]

    def count_by_message_id(self) -> Counter[str]:
        return Counter(self.message_ids())

    def wait_for(self, n: int, timeout: float = 2.0) -> bool:
        """Wait until at least ``n`` messages arrived; False if the timeout passed first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True
