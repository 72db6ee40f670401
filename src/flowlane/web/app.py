"""``create_app(container)``: the FastAPI application, with no global state.

The container holds what a request needs: the store and a way to make the account a request
works with. Every route parses input, calls one service and renders the answer; the rules
live in the services.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI

from flowlane.runtime.durable import request_account
from flowlane.services.account import Account
from flowlane.store.sql.store import SqlStore
from flowlane.web import hooks, public


@dataclass
class Container:
    """What the app serves from. ``public_url``: the address visitors reach the server at
    (links in emails are made from it); ``data``: the data folder (attachments)."""

    store: SqlStore
    public_url: str = "http://127.0.0.1:8000"
    data: Path | None = None
    make_account: Callable[[Container], Account] | None = field(default=None, repr=False)

    def account(self) -> Account:
        """A fresh account for one request: it runs what the request sets off and leaves
        due timers to the workers."""
        if self.make_account is not None:
            return self.make_account(self)
        return request_account(self.store, self.data)


def create_app(container: Container) -> FastAPI:
    app = FastAPI(title="flowlane", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.container = container
    app.include_router(hooks.router)
    app.include_router(public.router)
    return app
