"""What every page of the web UI uses: the page environment, the request's person, rendering.

A route of the UI takes :data:`UiDep` (the logged-in person of the session cookie; a request
without a valid session is sent to ``/login``) and answers ``ui.render("ui/area/page.html",
**context)``. Service calls go through ``await ui.call(lambda acc, by: service(acc, ..., by=by))``:
one unit of work under the container's store lock, exactly as the API runs them, so the UI and
the API share every rule.

Unsafe requests (POST, PUT, PATCH, DELETE) must carry the session's CSRF token, in the
``X-CSRF-Token`` header (``flowlane.js`` adds it to every htmx request from the page's
``<meta name="csrf-token">``) or in a form field ``csrf_token`` (plain forms: the layout's
``csrf_input()``); otherwise 403.

Errors a service raises (:class:`FlowlaneError`) become, for an htmx request, a fragment
``<div class="flash error">`` with the error's HTTP status (``flowlane.js`` shows it in the
page's ``#flash`` area); for a plain request, the error page. The messages are the services'
own (English); the UI's words are translated with gettext (``{% trans %}`` / ``_()``).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from babel.dates import format_date, format_datetime
from fastapi import Depends, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from flowlane.api.container import Container
from flowlane.api.deps import SAFE_METHODS, SESSION_COOKIE, get_container, locked, run
from flowlane.api.errors import status_of
from flowlane.core.errors import FlowlaneError, Unauthorized
from flowlane.engine.context import ObjectRecord
from flowlane.services import auth
from flowlane.services.account import Account
from flowlane.web import i18n

T = TypeVar("T")

LANG_COOKIE = "flowlane_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

ENV = Environment(
    loader=PackageLoader("flowlane.web", "templates"),
    autoescape=select_autoescape(["html"], default=True),
    extensions=["jinja2.ext.i18n", "jinja2.ext.do"],
    trim_blocks=True,
    lstrip_blocks=True,
)
"""The page environment. ``gettext`` / ``ngettext`` / ``_`` come with each page's context
(the language is the request's), so ``{% trans %}`` speaks the reader's language."""


class LoginRequired(Exception):
    """No valid session: the UI sends the browser to the login page."""

    def __init__(self, next_url: str = "/") -> None:
        super().__init__(next_url)
        self.next_url = next_url


class CsrfRefused(Exception):
    """An unsafe request without the session's CSRF token."""


# ---- filters -------------------------------------------------------------------------------


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


@pass_context
def localtime(ctx: Context, value: Any, fmt: str = "medium") -> str:
    """A moment in the account's time zone, in the reader's language
    (``fmt``: short / medium / long or a Babel pattern such as ``"d MMM HH:mm"``)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return format_date(value, format="medium", locale=ctx.get("lang", "en"))
    moment = _as_datetime(value)
    if moment is None:
        return "" if value is None else str(value)
    tz: tzinfo | None = ctx.get("tz")
    return format_datetime(moment, format=fmt, tzinfo=tz, locale=ctx.get("lang", "en"))


@pass_context
def csrf_input(ctx: Context) -> Markup:
    """The hidden input a plain ``<form method="post">`` needs."""
    token = ctx.get("csrf") or ""
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, token)


ENV.filters["localtime"] = localtime
ENV.globals["csrf_input"] = csrf_input
ENV.globals["LANGUAGES"] = i18n.LANGUAGES
ENV.globals["LANGUAGE_NAMES"] = i18n.LANGUAGE_NAMES


# ---- the request's person ------------------------------------------------------------------


@dataclass
class Ui:
    """One request of a logged-in person: what a UI route needs."""

    request: Request
    container: Container
    account: Account
    principal: auth.Principal
    user: ObjectRecord
    lang: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def by(self) -> str:
        return self.principal.user_id

    @property
    def role(self) -> str:
        return self.principal.role

    @property
    def is_client(self) -> bool:
        return self.principal.role == "client"

    @property
    def htmx(self) -> bool:
        return self.request.headers.get("HX-Request") == "true"

    def gettext(self, message: str) -> str:
        return i18n.translations(self.lang).gettext(message)

    async def call(self, work: Callable[[Account, str], T]) -> T:
        """Run one service call as a unit of work for this person (``by`` = their id)."""
        by = self.by
        return await run(self.container, self.account, lambda: work(self.account, by))

    async def read(self, work: Callable[[Account], T]) -> T:
        """Run a read outside a unit of work, under the store lock."""
        return await locked(self.container, lambda: work(self.account))

    def context(self, **extra: Any) -> dict[str, Any]:
        return page_context(self.request, self.lang, self.container, self, **extra)

    def render(
        self,
        template: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        html = ENV.get_template(template).render(self.context(**context))
        return HTMLResponse(
            html, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})}
        )


def page_context(
    request: Request, lang: str, container: Container, ui: Ui | None, **extra: Any
) -> dict[str, Any]:
    tr = i18n.translations(lang)
    return {
        "request": request,
        "path": request.url.path,
        "lang": lang,
        "tz": container.store.tz,
        "gettext": tr.gettext,
        "ngettext": tr.ngettext,
        "_": tr.gettext,
        "ui": ui,
        "user": ui.user if ui is not None else None,
        "csrf": ui.principal.csrf if ui is not None else None,
        **extra,
    }


def request_language(request: Request) -> str:
    return i18n.pick_language(
        request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
    )


async def _csrf_ok(request: Request, expected: str | None) -> bool:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        kind = request.headers.get("content-type", "")
        if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # cached: the route reads the same form
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    return bool(expected and sent and hmac.compare_digest(sent.encode(), expected.encode()))


async def get_ui(request: Request, container: Annotated[Container, Depends(get_container)]) -> Ui:
    account = container.account()
    account.links.public_url = container.public_url
    session = request.cookies.get(SESSION_COOKIE)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not session:
        raise LoginRequired(here)
    try:
        principal, user = await locked(
            container,
            lambda: _person(account, session),
        )
    except Unauthorized:
        raise LoginRequired(here) from None
    if request.method not in SAFE_METHODS and not await _csrf_ok(request, principal.csrf):
        raise CsrfRefused()
    return Ui(request, container, account, principal, user, request_language(request))


def _person(account: Account, session: str) -> tuple[auth.Principal, ObjectRecord]:
    principal = auth.principal_from_session(account, session)
    user = account.store.get_object(principal.user_id)
    if user is None:  # pragma: no cover - sessions end with their user
        raise Unauthorized("the session's user is gone")
    return principal, user


UiDep = Annotated[Ui, Depends(get_ui)]


# ---- errors --------------------------------------------------------------------------------


def _is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def flash_fragment(message: str, status: int, kind: str = "error") -> HTMLResponse:
    html = Markup('<div class="flash {}" role="alert">{}</div>').format(kind, message)
    return HTMLResponse(str(html), status_code=status)


def error_page(request: Request, container: Container, message: str, status: int) -> Response:
    if _is_htmx(request):
        return flash_fragment(message, status)
    lang = request_language(request)
    html = ENV.get_template("ui/error.html").render(
        page_context(request, lang, container, None, message=message, status=status)
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def install_handlers(app: Any, container: Container) -> None:
    """Login redirects, CSRF refusals and service errors of UI routes as pages/fragments."""

    async def on_login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        target = "/login?next=" + quote(exc.next_url, safe="")
        if _is_htmx(request):
            return Response(status_code=200, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    async def on_csrf(request: Request, exc: Exception) -> Response:
        lang = request_language(request)
        text = i18n.translations(lang).gettext(
            "The page is out of date (security token missing): reload it and try again."
        )
        return error_page(request, container, text, 403)

    async def on_flowlane(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FlowlaneError)
        return error_page(request, container, str(exc), status_of(exc))

    async def on_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not _is_ui_route(request):  # the webhooks and public forms keep FastAPI's answer
            return await request_validation_exception_handler(request, exc)
        lang = request_language(request)
        text = i18n.translations(lang).gettext("The request is invalid: %(problems)s") % {
            "problems": invalid_fields(exc)
        }
        return error_page(request, container, text, 422)

    app.add_exception_handler(LoginRequired, on_login)
    app.add_exception_handler(CsrfRefused, on_csrf)
    app.add_exception_handler(FlowlaneError, on_flowlane)
    app.add_exception_handler(RequestValidationError, on_invalid)


def _is_ui_route(request: Request) -> bool:
    endpoint = request.scope.get("endpoint")
    return getattr(endpoint, "__module__", "").startswith("flowlane.web.ui.")


def invalid_fields(exc: RequestValidationError) -> str:
    """What FastAPI refused, by field: ``page: Input should be a valid integer; ...``
    (the location's last part is the field's name; the given value is never repeated)."""
    parts = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p not in ("query", "body", "path")]
        parts.append(f"{loc[-1] if loc else 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(dict.fromkeys(parts)) or "?"


# ---- browser libraries ---------------------------------------------------------------------

NODE_MODULES_ENV = "FLOWLANE_NODE_MODULES"


def node_modules() -> Path:
    """Where ``make`` installed the browser libraries (``npm install`` in the source tree);
    ``FLOWLANE_NODE_MODULES`` overrides."""
    import os

    given = os.environ.get(NODE_MODULES_ENV)
    if given:
        return Path(given)
    return Path(__file__).resolve().parents[4] / "node_modules"


VENDOR_DIRS = {
    "bpmn-js": "bpmn-js/dist",
    "htmx": "htmx.org/dist",
    "chart.js": "chart.js/dist",
}
"""URL name under ``/static/vendor/`` -> the package's ``dist`` folder in node_modules."""
VENDOR_FILES = {"sortablejs/Sortable.min.js": "sortablejs/Sortable.min.js"}
"""SortableJS ships no dist folder: its one browser file is served alone."""
