"""Public pages: forms (``/forms/{key}``) and signed links (``/l/{token}``).

``GET`` shows the form (a link form: opening applies its ``on_open``); ``POST`` takes a
submission (``application/x-www-form-urlencoded``, up to :data:`MAX_BODY` bytes, else 413)
and shows the form's success text, or the form again with the visitor's values (hidden ones
as posted, so the corrected form sends them again) and an error per input (422; 429 when the
address sent too many). There is no CSRF token: a public
form is protected by its honeypot input and the rate limit, a link form by its signed token.
A link that cannot be used shows only "Oops, something went wrong" (404). The client address
of the rate limit is ``request.client.host``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from flowlane.core.errors import NotFound
from flowlane.services import forms
from flowlane.services.account import Account
from flowlane.services.links import OOPS, BadLink

MAX_BODY = 64 * 1024
"""Largest form submission accepted, in bytes (larger: 413)."""
NOT_FOUND = "This form does not exist."

router = APIRouter()
_PAGES = Environment(
    loader=PackageLoader("flowlane.web", "templates"),
    autoescape=select_autoescape(["html"], default=True),
)
T = TypeVar("T")


class _TooLarge(Exception):
    pass


def _page(name: str, status: int, **context: Any) -> HTMLResponse:
    html = _PAGES.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _message(title: str, text: str, status: int = 200) -> HTMLResponse:
    return _page("message.html", status, title=title, text=text)


def _form_page(
    view: forms.FormView,
    action: str,
    *,
    status: int = 200,
    values: Mapping[str, str] | None = None,
    result: forms.FormResult | None = None,
) -> HTMLResponse:
    errors = dict(result.errors) if result is not None else {}
    shown = {f.name for f in view.fields} | {"consent"}
    general = [text for name, text in errors.items() if name not in shown]
    return _page(
        "form.html",
        status,
        title=view.title,
        form=view,
        action=action,
        values=dict(values or {}),
        errors=errors,
        general=general,
        message=result.message if result is not None else None,
    )


async def _read_form(request: Request) -> dict[str, str]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY:
            raise _TooLarge
    text = bytes(body).decode("utf-8", errors="replace")
    data: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        data.setdefault(name, value)  # the first value of a repeated name
    return data


def _account(request: Request) -> Account:
    container = request.app.state.container
    account: Account = container.account()
    account.links.public_url = container.public_url
    return account


def _address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


async def _call(request: Request, work: Callable[[Account], T]) -> T:
    account = _account(request)
    return await run_in_threadpool(work, account)


def _too_large() -> HTMLResponse:
    return _message("Too large", f"The form is over {MAX_BODY // 1024} KB.", 413)


def _oops() -> HTMLResponse:
    return _message(OOPS, OOPS, 404)


def _answer(
    view: forms.FormView, action: str, data: Mapping[str, str], result: forms.FormResult
) -> HTMLResponse:
    if result.ok:
        return _message(view.title, result.message)
    values = {k: v for k, v in data.items() if k != view.honeypot}
    # The hidden values came with the post (the query is not in the form's action): shown
    # again as posted, so that the corrected form sends them once more.
    hidden = {name: data.get(name, "")[: forms.MAX_VALUE] for name in view.hidden}
    status = 429 if result.rate_limited else 422
    shown = replace(view, hidden=hidden)
    return _form_page(shown, action, status=status, values=values, result=result)


@router.get("/forms/{key}", response_class=HTMLResponse)
async def show_form(key: str, request: Request) -> HTMLResponse:
    query = dict(request.query_params)
    try:
        view = await _call(request, lambda a: forms.form_view(a, key, query))
    except NotFound:
        return _message("Not found", NOT_FOUND, 404)
    return _form_page(view, f"/forms/{key}", values=view.hidden)


@router.post("/forms/{key}", response_class=HTMLResponse)
async def post_form(key: str, request: Request) -> HTMLResponse:
    try:
        data = await _read_form(request)
    except _TooLarge:
        return _too_large()
    address = _address(request)
    query = dict(request.query_params)

    def work(account: Account) -> tuple[forms.FormView, forms.FormResult]:
        view = forms.form_view(account, key, query)
        return view, forms.submit_form(account, key, data, address=address)

    try:
        view, result = await _call(request, work)
    except NotFound:
        return _message("Not found", NOT_FOUND, 404)
    return _answer(view, f"/forms/{key}", data, result)


@router.get("/l/{token}", response_class=HTMLResponse)
async def open_link(token: str, request: Request) -> HTMLResponse:
    try:
        view = await _call(request, lambda a: forms.link_view(a, token))
    except (BadLink, NotFound):
        return _oops()
    return _form_page(view, f"/l/{token}")


@router.post("/l/{token}", response_class=HTMLResponse)
async def post_link(token: str, request: Request) -> HTMLResponse:
    try:
        data = await _read_form(request)
    except _TooLarge:
        return _too_large()
    address = _address(request)

    def work(account: Account) -> tuple[forms.FormView, forms.FormResult]:
        found, form, _record = account.links.check(token, account.now)
        view = forms.form_page(account, found.form, form)
        return view, forms.submit_link(account, token, data, address=address)

    try:
        view, result = await _call(request, work)
    except (BadLink, NotFound):
        return _oops()
    return _answer(view, f"/l/{token}", data, result)
