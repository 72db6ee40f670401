"""Who is asking: password logins, sessions with a CSRF token, API tokens, the login throttle.

People are ``user`` objects; their ``password`` field holds an argon2 hash. Secrets are never
stored: a session id (the cookie's value) and an API token (``flowlane_<random>``) are kept as
SHA-256 hashes. Failed logins are counted in the database per email and address: after
:data:`LOGIN_MAX_FAILURES` in :data:`LOGIN_WINDOW` the next attempt is refused with
:class:`~flowlane.core.errors.TooManyRequests` (even with the right password).

Every function takes the account; :func:`login` and :func:`principal_from_*` open their own
transactions (a failed login must be counted even though the login is refused).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from flowlane.core.errors import Forbidden, NotFound, Refused, TooManyRequests, Unauthorized
from flowlane.services import permissions
from flowlane.store.auth import ApiTokenRecord, SessionRecord

if TYPE_CHECKING:
    from flowlane.services.account import Account

SESSION_TTL = timedelta(days=14)
"""How long a login session lasts."""
LOGIN_WINDOW = timedelta(minutes=15)
LOGIN_MAX_FAILURES = 5
"""Failed logins per email and address within :data:`LOGIN_WINDOW` before refusals."""
TOKEN_PREFIX = "flowlane_"
MIN_PASSWORD = 8
MAX_PASSWORD = 1000
MAX_TOKEN_NAME = 200
TOUCH_EVERY = timedelta(minutes=1)
"""A token's ``last_used_at`` is written at most this often (not on every request)."""

_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


@dataclass(frozen=True, slots=True)
class Principal:
    """The person a request acts for. ``via`` is ``token`` or ``session``; a session's
    ``csrf`` must come back in ``X-CSRF-Token`` with unsafe requests."""

    user_id: str
    role: str
    via: str
    csrf: str | None = None
    token_id: str | None = None


@dataclass(frozen=True, slots=True)
class Login:
    """A new session: ``session_id`` is the cookie's secret value (shown once)."""

    session_id: str
    csrf: str
    user_id: str
    expires_at_iso: str


@dataclass(frozen=True, slots=True)
class NewToken:
    """A new API token: ``token`` is the secret (shown once); ``record`` what is kept."""

    token: str
    record: ApiTokenRecord


def digest(secret: str) -> str:
    """The SHA-256 (hex) under which a secret is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _throttle_key(email: str, address: str) -> str:
    return digest(f"login\0{email.strip().lower()}\0{address}")


# ---- passwords -----------------------------------------------------------------------------


def check_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches the stored argon2 hash (False without a hash)."""
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def set_password(
    acc: Account, user_id: str, password: str, *, by: str | None, current: str | None = None
) -> None:
    """Set a user's password: the person (giving the ``current`` one if they have one) or
    those who manage users. Every session of the user ends."""
    rec = acc.get_object(user_id, expect_type="user")
    if by is not None and not permissions.can(acc, by, "manage_users"):
        if by != user_id:
            raise Forbidden(f"{by} may not change the password of {user_id}")
        stored = rec.data.get("password")
        if stored and not check_password(str(stored), current or ""):
            raise Forbidden("current_password: it does not match")
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Refused(f"password: {MIN_PASSWORD} to {MAX_PASSWORD} characters", field="password")
    acc.store.update_object(user_id, {"password": _HASHER.hash(password)}, acc.now)
    acc.store.delete_sessions(user_id=user_id)


# ---- sessions ------------------------------------------------------------------------------


def login(acc: Account, email: str, password: str, *, address: str) -> Login:
    """Open a session for the user with this email and password.

    Refused with :class:`Unauthorized` (one message, whatever was wrong) and counted; after
    too many failures with :class:`TooManyRequests` (``retry_after`` seconds).
    """
    key = _throttle_key(email, address)
    since = acc.now - LOGIN_WINDOW
    with acc.store.transaction():
        failures = acc.store.count_login_failures(key, since)
    if failures >= LOGIN_MAX_FAILURES:
        raise TooManyRequests(
            "too many failed logins: try again later",
            retry_after=int(LOGIN_WINDOW.total_seconds()),
        )
    user_id = acc.store.user_by_email(email.strip()) if email.strip() else None
    rec = acc.store.get_object(user_id) if user_id else None
    stored = rec.data.get("password") if rec is not None else None
    ok = check_password(str(stored) if stored else None, password)
    if not ok or rec is None:
        with acc.store.transaction():
            acc.store.add_login_failure(key, acc.now)
        raise Unauthorized("wrong email or password")
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    expires = acc.now + SESSION_TTL
    with acc.store.transaction():
        acc.store.clear_login_failures(key)
        if _HASHER.check_needs_rehash(str(stored)):
            acc.store.update_object(rec.id, {"password": _HASHER.hash(password)}, acc.now)
        acc.store.put_session(SessionRecord(digest(session_id), rec.id, csrf, acc.now, expires))
    return Login(session_id, csrf, rec.id, expires.isoformat())


def logout(acc: Account, session_id: str) -> None:
    """End the session (nothing happens for an unknown one)."""
    with acc.store.transaction():
        acc.store.delete_sessions(id_hash=digest(session_id))


def principal_from_session(acc: Account, session_id: str) -> Principal:
    """The person of a session cookie; :class:`Unauthorized` when unknown or expired."""
    found = acc.store.get_session(digest(session_id)) if session_id else None
    if found is None or found.expires_at <= acc.now:
        raise Unauthorized("the session is unknown or has expired: log in again")
    return Principal(found.user_id, _role(acc, found.user_id), "session", csrf=found.csrf)


def principal_from_token(acc: Account, token: str) -> Principal:
    """The person of an API token; :class:`Unauthorized` when unknown or revoked."""
    found = acc.store.get_api_token(token_hash=digest(token)) if token else None
    if found is None or found.revoked_at is not None:
        raise Unauthorized("the API token is unknown or revoked")
    role = _role(acc, found.user_id)
    if found.last_used_at is None or acc.now - found.last_used_at >= TOUCH_EVERY:
        with acc.store.transaction():
            acc.store.touch_api_token(found.id, acc.now)
    return Principal(found.user_id, role, "token", token_id=found.id)


def _role(acc: Account, user_id: str) -> str:
    rec = acc.store.get_object(user_id)
    if rec is None or rec.type != "user":
        raise Unauthorized(f"user {user_id} no longer exists")
    return str(rec.data.get("role") or "client")


# ---- API tokens ----------------------------------------------------------------------------


def _may_manage_tokens_of(acc: Account, user_id: str, by: str | None, what: str) -> None:
    acc.get_object(user_id, expect_type="user")
    if by is not None and by != user_id:
        permissions.require(acc, by, "manage_users", f"{what} of {user_id}")


def create_token(acc: Account, user_id: str, name: str, *, by: str | None) -> NewToken:
    """A new API token for the user (the person, or those who manage users)."""
    _may_manage_tokens_of(acc, user_id, by, "create API tokens")
    name = name.strip()
    if not name or len(name) > MAX_TOKEN_NAME:
        raise Refused(f"name: 1 to {MAX_TOKEN_NAME} characters", field="name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiTokenRecord(
        id="tok-" + secrets.token_hex(8),
        token_hash=digest(token),
        user_id=user_id,
        name=name,
        created_at=acc.now,
    )
    acc.store.put_api_token(record)
    return NewToken(token, record)


def list_tokens(acc: Account, user_id: str | None, *, by: str | None) -> list[ApiTokenRecord]:
    """The user's tokens (every user's for ``None``: those who manage users only)."""
    if user_id is None:
        permissions.require(acc, by, "manage_users", "list every API token")
        return acc.store.api_tokens()
    _may_manage_tokens_of(acc, user_id, by, "list the API tokens")
    return acc.store.api_tokens(user_id)


def revoke_token(acc: Account, token_id: str, *, by: str | None) -> ApiTokenRecord:
    """Revoke a token (its owner, or those who manage users); the token as it is now."""
    found = acc.store.get_api_token(token_id=token_id)
    if found is None or (
        by is not None and found.user_id != by and not permissions.can(acc, by, "manage_users")
    ):
        raise NotFound(f"API token {token_id!r} does not exist")
    if found.revoked_at is not None:
        raise Refused(f"API token {token_id} is revoked already")
    acc.store.revoke_api_token(token_id, acc.now)
    revoked = acc.store.get_api_token(token_id=token_id)
    assert revoked is not None
    return revoked
