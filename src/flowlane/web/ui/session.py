"""Log in, log out, the language switch and the home page (by role)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from flowlane.api.container import Container
from flowlane.api.deps import SESSION_COOKIE, locked
from flowlane.core.errors import TooManyRequests, Unauthorized
from flowlane.services import auth
from flowlane.web import i18n
from flowlane.web.ui.common import (
    ENV,
    LANG_COOKIE,
    UiDep,
    page_context,
    request_language,
)

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a path of this site (no ``//host`` or scheme): no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(request: Request, status: int = 200, **extra: object) -> HTMLResponse:
    container: Container = request.app.state.container
    html = ENV.get_template("ui/login.html").render(
        page_context(request, request_language(request), container, None, **extra)
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


@router.get("/login")
async def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return _login_page(request, next=_safe_next(next), email="")


@router.post("/login")
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=300)] = "",
    password: Annotated[str, Form(max_length=auth.MAX_PASSWORD)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    container: Container = request.app.state.container
    account = container.account()
    address = request.client.host if request.client is not None else "unknown"
    tr = i18n.translations(request_language(request))
    try:
        done = await locked(
            container, lambda: auth.login(account, email, password, address=address)
        )
    except Unauthorized:
        return _login_page(
            request,
            401,
            next=_safe_next(next),
            email=email,
            error=tr.gettext("Wrong email or password."),
        )
    except TooManyRequests:
        return _login_page(
            request,
            429,
            next=_safe_next(next),
            email=email,
            error=tr.gettext("Too many failed attempts: try again later."),
        )
    out = RedirectResponse(_safe_next(next), status_code=303)
    out.set_cookie(
        SESSION_COOKIE,
        done.session_id,
        max_age=int(auth.SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return out


@router.post("/logout")
async def logout(ui: UiDep) -> Response:
    session = ui.request.cookies.get(SESSION_COOKIE)
    if session:
        await locked(ui.container, lambda: auth.logout(ui.account, session))
    out = RedirectResponse("/login", status_code=303)
    out.delete_cookie(SESSION_COOKIE, path="/")
    return out


@router.get("/lang/{code}")
async def switch_language(code: str, request: Request, next: str = "/") -> Response:
    """Remember the UI language in a cookie and go back."""
    out = RedirectResponse(_safe_next(next), status_code=303)
    if code in i18n.LANGUAGES:
        out.set_cookie(LANG_COOKIE, code, max_age=365 * 24 * 3600, samesite="lax", path="/")
    return out


@router.get("/")
async def home(ui: UiDep) -> Response:
    """Clients go to their cabinet, staff to their inbox."""
    return RedirectResponse("/cabinet" if ui.is_client else "/inbox", status_code=303)


@router.get("/account")
async def my_account(ui: UiDep) -> HTMLResponse:
    """The person's own page: name, email, role, language, password."""
    return ui.render("ui/account.html", title=ui.gettext("My account"))


@router.post("/account/password")
async def change_password(
    ui: UiDep,
    current: Annotated[str, Form(max_length=auth.MAX_PASSWORD)] = "",
    new: Annotated[str, Form(max_length=auth.MAX_PASSWORD)] = "",
) -> Response:
    """Change one's password (every session ends, so log in again)."""
    await ui.call(lambda acc, by: auth.set_password(acc, by, new, by=by, current=current))
    out = RedirectResponse("/login", status_code=303)
    out.delete_cookie(SESSION_COOKIE, path="/")
    return out
