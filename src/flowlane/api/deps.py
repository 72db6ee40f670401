"""What routes depend on: the container, the request's account, the principal, ``run``.

* :data:`PrincipalDep` — the person the request acts for, from ``Authorization: Bearer
  <token>`` or the session cookie ``flowlane_session``; 401 without valid credentials. With
  cookie auth, unsafe methods (POST, PUT, PATCH, DELETE) need ``X-CSRF-Token`` equal to the
  session's CSRF token (403 otherwise).
* :data:`AccountDep` — ``container.account()``, one per request.
* :func:`run` — run one service call as a unit of work (``account.attempt``) in a worker
  thread, under the container's store lock; its value is returned. Routes pass
  ``by=principal.user_id`` to services, never ``None``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from flowlane.api.container import Container
from flowlane.core.errors import Forbidden, Unauthorized
from flowlane.services import auth
from flowlane.services.account import Account

T = TypeVar("T")

SESSION_COOKIE = "flowlane_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer_scheme = HTTPBearer(auto_error=False, description="An API token: flowlane_...")
cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="The session cookie set by POST /auth/login (send X-CSRF-Token too)",
)


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def get_account(container: ContainerDep) -> Account:
    account = container.account()
    account.links.public_url = container.public_url
    return account


AccountDep = Annotated[Account, Depends(get_account)]


async def locked(container: Container, work: Callable[[], T]) -> T:
    """``work()`` in a worker thread under the container's store lock."""

    def go() -> T:
        with container.lock:
            return work()

    return await run_in_threadpool(go)


async def run(container: Container, account: Account, call: Callable[[], T]) -> T:
    """Run one service call as a unit of work (all or nothing) and return its value."""
    box: list[T] = []

    def action() -> None:
        box[:] = [call()]  # a retried attempt replaces, never adds

    await locked(container, lambda: account.attempt(action))
    return box[0]


async def get_principal(
    request: Request,
    container: ContainerDep,
    account: AccountDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    session: Annotated[str | None, Depends(cookie_scheme)],
) -> auth.Principal:
    if bearer is not None and bearer.credentials:
        token = bearer.credentials
        return await locked(container, lambda: auth.principal_from_token(account, token))
    if session:
        found = await locked(container, lambda: auth.principal_from_session(account, session))
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not found.csrf or not hmac.compare_digest(sent.encode(), found.csrf.encode()):
                raise Forbidden(
                    f"{CSRF_HEADER}: missing or wrong (send the token POST /auth/login gave)",
                    header=CSRF_HEADER,
                )
        return found
    raise Unauthorized("log in, or send Authorization: Bearer <API token>")


PrincipalDep = Annotated[auth.Principal, Depends(get_principal)]


class Call:
    """A route's handle on the services: ``await call(lambda acc, by: service(acc, ..., by=by))``
    runs the service as one unit of work for the principal (``by`` is its user id)."""

    def __init__(self, container: Container, account: Account, principal: auth.Principal):
        self.container = container
        self.account = account
        self.principal = principal

    @property
    def by(self) -> str:
        return self.principal.user_id

    async def __call__(self, work: Callable[[Account, str], T]) -> T:
        by = self.principal.user_id
        return await run(self.container, self.account, lambda: work(self.account, by))


def get_call(container: ContainerDep, account: AccountDep, principal: PrincipalDep) -> Call:
    return Call(container, account, principal)


CallDep = Annotated[Call, Depends(get_call)]
