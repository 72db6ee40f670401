"""What the HTTP apps serve from: the store and a way to make the account of one request."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flowlane.runtime.durable import request_account
from flowlane.services.account import Account
from flowlane.store.sql.store import SqlStore


@dataclass
class Container:
    """What the app serves from. ``public_url``: the address visitors reach the server at
    (links in emails are made from it); ``data``: the data folder (attachments);
    ``body_limits``: request body limits of the API, see :mod:`flowlane.api.limits`.

    One :class:`SqlStore` keeps one transaction at a time, so the API runs the store work of
    its requests one after another under ``lock`` (see :func:`flowlane.api.deps.run`)."""

    store: SqlStore
    public_url: str = "http://127.0.0.1:8000"
    data: Path | None = None
    make_account: Callable[[Container], Account] | None = field(default=None, repr=False)
    body_limits: tuple[tuple[str, int], ...] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def account(self) -> Account:
        """A fresh account for one request: it runs what the request sets off and leaves
        due timers to the workers."""
        if self.make_account is not None:
            return self.make_account(self)
        return request_account(self.store, self.data)
