"""Signed links to forms (SCENARIOS.md S4): made in message templates, checked when opened.

``{{ form_link('review-sales') }}`` in a message renders ``<public_url>/l/<token>``. The token
carries the object id, the form key (the variant) and the time it was issued, and a
signature (:func:`flowlane.services.signing.sign`, purpose ``link``) with the account
secret; it holds no expiry: the form's ``link.expires`` counts from the issue time, so a
changed setting applies to links already sent. A single-use link is noted in ``used_links``
(a hash of the token) in the transaction that takes its submission.

Whatever is wrong with a link (a bad signature, another account's secret, a form key
changed, an object deleted or of another type, expired, already used) raises
:class:`BadLink`, whose message is only :data:`OOPS`; the reason goes to the log.

The engine stays pure: :class:`Links` is handed to the runner as a plain callable
(:data:`flowlane.engine.context.LinkMaker`); HMAC is deterministic and the issue time is the
step's ``now``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

from flowlane.core.errors import Refused, ValidationError
from flowlane.engine.context import ObjectRecord
from flowlane.model.form import FormSpec, duration_of
from flowlane.services.signing import account_secret, sign, verify
from flowlane.store.base import Store

OOPS = "Oops, something went wrong"
"""All a visitor learns about a link that cannot be used."""
PURPOSE = "link"
PUBLIC_URL_ENV = "FLOWLANE_PUBLIC_URL"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
MAX_TOKEN = 1000
"""Longer tokens are refused before any work."""

log = logging.getLogger("flowlane.links")

__all__ = [
    "OOPS",
    "BadLink",
    "LinkToken",
    "Links",
    "decode_token",
    "encode_token",
    "public_url_from_env",
    "token_hash",
]


class BadLink(Refused):
    """A signed link that cannot be used. ``str()`` is always :data:`OOPS`; ``reason`` says
    why, for the server log only."""

    code = "bad_link"

    def __init__(self, reason: str) -> None:
        super().__init__(OOPS)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LinkToken:
    object_id: str
    form: str
    issued_at: datetime


def public_url_from_env(env: Mapping[str, str] = os.environ) -> str:
    """Where visitors reach the server (``FLOWLANE_PUBLIC_URL``), without a trailing slash."""
    return (env.get(PUBLIC_URL_ENV, "").strip() or DEFAULT_PUBLIC_URL).rstrip("/")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def encode_token(secret: bytes, object_id: str, form: str, issued_at: datetime) -> str:
    """``<payload>.<signature>``: payload = base64url of ``[object_id, form, unix seconds]``."""
    stamp = int(issued_at.timestamp())
    payload = _b64(json.dumps([object_id, form, stamp], separators=(",", ":")).encode())
    return f"{payload}.{sign(secret, PURPOSE, payload)}"


def decode_token(secret: bytes, token: str) -> LinkToken:
    """The signed content of ``token``, or :class:`BadLink`."""
    if len(token) > MAX_TOKEN:
        raise BadLink("token too long")
    payload, dot, signature = token.partition(".")
    if not dot or not verify(secret, PURPOSE, payload, signature):
        raise BadLink("bad signature (tampered, or signed with another secret)")
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        object_id, form, stamp = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:  # signed but not ours: never
        raise BadLink(f"malformed payload: {exc}") from None
    if not (isinstance(object_id, str) and isinstance(form, str) and isinstance(stamp, int)):
        raise BadLink("malformed payload")
    return LinkToken(object_id, form, datetime.fromtimestamp(stamp, UTC))


def token_hash(token: str) -> str:
    """What ``used_links`` keeps of a token (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Links:
    """Makes and checks an account's signed links; ``public_url`` starts every link."""

    store: Store
    public_url: str = field(default_factory=public_url_from_env)
    env: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)
    _secret: bytes | None = field(default=None, repr=False)

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = account_secret(self.store, self.env)
        return self._secret

    def make(self, object_id: str, form: str, issued_at: datetime) -> str:
        """The link to update form ``form`` for ``object_id`` (a :data:`LinkMaker`)."""
        spec = self.store.forms.get(form)
        if spec is None:
            raise ValidationError(f"form_link: form {form!r} does not exist")
        if spec.mode != "update":
            raise ValidationError(f"form_link: form {form!r} is not a link form (mode: update)")
        token = encode_token(self.secret, object_id, form, issued_at)
        return f"{self.public_url.rstrip('/')}/l/{token}"

    def task_url(self, task_id: str) -> str:
        """The page of a task (``{{ task_link }}``, a :data:`TaskLinkMaker`); whoever opens
        it logs in and sees it only if they may."""
        return f"{self.public_url.rstrip('/')}/tasks/{quote(task_id, safe='')}"

    def check(self, token: str, now: datetime) -> tuple[LinkToken, FormSpec, ObjectRecord]:
        """The link's content, its form and object, or :class:`BadLink` (logged)."""
        try:
            return self._check(token, now)
        except BadLink as exc:
            log.warning("signed link refused: %s", exc.reason)
            raise

    def _check(self, token: str, now: datetime) -> tuple[LinkToken, FormSpec, ObjectRecord]:
        found = decode_token(self.secret, token)
        form = self.store.forms.get(found.form)
        if form is None or form.mode != "update" or form.type is None:
            raise BadLink(f"form {found.form!r} does not exist or is not a link form")
        record = self.store.get_object(found.object_id)
        if record is None:
            raise BadLink(f"object {found.object_id!r} does not exist")
        if record.type != form.type:
            raise BadLink(f"object {record.id!r} is a {record.type}, the form is for {form.type}")
        settings = form.link_settings
        if now > found.issued_at + duration_of(settings.expires):
            raise BadLink(f"expired (issued {found.issued_at.isoformat()})")
        if settings.single_use and self.store.link_used(token_hash(token)):
            raise BadLink("already used")
        return found, form, record
