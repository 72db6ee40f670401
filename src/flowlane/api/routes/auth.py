"""Log in and out, who am I, API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from flowlane.api.deps import SESSION_COOKIE, AccountDep, CallDep, ContainerDep, locked
from flowlane.api.schemas import PROBLEM_RESPONSES, ApiToken, Problem, Strict, User
from flowlane.services import auth, users

router = APIRouter(tags=["auth"], responses=PROBLEM_RESPONSES)


class LoginIn(Strict):
    email: str = Field(min_length=1, max_length=300)
    password: str = Field(min_length=1, max_length=auth.MAX_PASSWORD)


class LoginOut(BaseModel):
    csrf_token: str = Field(description="Send it as X-CSRF-Token with unsafe requests")
    expires_at: datetime
    user: User


class TokenIn(Strict):
    name: str = Field(min_length=1, max_length=auth.MAX_TOKEN_NAME)
    user_id: str | None = Field(default=None, description="Default: yourself (admins: anyone)")


class NewTokenOut(ApiToken):
    token: str = Field(description="The secret: shown this once, send as Bearer token")


@router.post("/auth/login", responses={429: {"model": Problem, "description": "Throttled"}})
async def login(
    body: LoginIn, request: Request, response: Response, container: ContainerDep, acc: AccountDep
) -> LoginOut:
    """Open a session: sets the cookie ``flowlane_session`` (HttpOnly, SameSite=Lax)."""
    address = request.client.host if request.client is not None else "unknown"
    done = await locked(
        container, lambda: auth.login(acc, body.email, body.password, address=address)
    )
    rec = await locked(container, lambda: users.get_user(acc, done.user_id, by=None))
    response.set_cookie(
        SESSION_COOKIE,
        done.session_id,
        max_age=int(auth.SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return LoginOut(
        csrf_token=done.csrf,
        expires_at=datetime.fromisoformat(done.expires_at_iso),
        user=User.of(rec),
    )


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, call: CallDep) -> Response:
    """End the session of the cookie (with a token: nothing to end)."""
    session = request.cookies.get(SESSION_COOKIE)
    if call.principal.via == "session" and session:
        await locked(call.container, lambda: auth.logout(call.account, session))
    out = Response(status_code=204)
    out.delete_cookie(SESSION_COOKIE, path="/")
    return out


@router.get("/me")
async def me(call: CallDep) -> User:
    """The person the request acts for."""
    return User.of(await call(lambda acc, by: users.get_user(acc, by, by=by)))


@router.get("/tokens")
async def list_tokens(
    call: CallDep,
    user_id: Annotated[str | None, Query(description="Whose tokens (default: yours)")] = None,
) -> list[ApiToken]:
    """API tokens (revoked ones too) of a person: your own; admins and owners: anyone's."""
    found = await call(lambda acc, by: auth.list_tokens(acc, user_id or by, by=by))
    return [ApiToken.of(r) for r in found]


@router.post("/tokens", status_code=201)
async def create_token(body: TokenIn, call: CallDep) -> NewTokenOut:
    """A new API token; its secret is in ``token`` this once."""
    made = await call(lambda acc, by: auth.create_token(acc, body.user_id or by, body.name, by=by))
    return NewTokenOut(token=made.token, **ApiToken.of(made.record).model_dump())


@router.delete("/tokens/{token_id}")
async def revoke_token(token_id: str, call: CallDep) -> ApiToken:
    """Revoke an API token (yours; admins and owners: anyone's)."""
    return ApiToken.of(await call(lambda acc, by: auth.revoke_token(acc, token_id, by=by)))
