"""The account's signing secret and HMAC signatures for what leaves flowlane and comes back.

Signed links (S4), reply addresses of task emails and inbound hook URLs carry a signature
made with the account secret: 32 random bytes generated on first use and stored in the
account's settings (``FLOWLANE_SECRET``, hex, overrides it, e.g. to share one secret between
installations). Every use signs under its own purpose, so a signature made for one purpose is
never valid for another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping

from flowlane.core.errors import ValidationError
from flowlane.store.base import Store

SECRET_SETTING = "signing_secret"

__all__ = ["account_secret", "sign", "verify"]


def account_secret(store: Store, env: Mapping[str, str] = os.environ) -> bytes:
    """The account's secret: ``FLOWLANE_SECRET`` if set, else the stored one (made once)."""
    configured = env.get("FLOWLANE_SECRET", "").strip()
    if configured:
        try:
            key = bytes.fromhex(configured)
        except ValueError:
            raise ValidationError(
                "FLOWLANE_SECRET must be hexadecimal", variable="FLOWLANE_SECRET"
            ) from None
        if len(key) < 16:
            raise ValidationError(
                "FLOWLANE_SECRET must hold at least 16 bytes (32 hex digits)",
                variable="FLOWLANE_SECRET",
            )
        return key
    stored = store.setting(SECRET_SETTING)
    if stored is None:
        with store.transaction():
            stored = store.setting_or_put(SECRET_SETTING, secrets.token_hex(32))
    return bytes.fromhex(stored)


def sign(secret: bytes, purpose: str, message: str, *, length: int = 32) -> str:
    """The URL-safe signature of ``message`` for ``purpose`` (``length`` bytes of
    HMAC-SHA256, base64url without padding)."""
    key = hmac.new(secret, purpose.encode(), hashlib.sha256).digest()
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()[:length]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verify(secret: bytes, purpose: str, message: str, signature: str, *, length: int = 32) -> bool:
    """Whether ``signature`` is ``sign(secret, purpose, message)`` (compared in constant time)."""
    return hmac.compare_digest(sign(secret, purpose, message, length=length), signature)
