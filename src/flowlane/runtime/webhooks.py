"""Outgoing webhooks: a message block of channel ``webhook`` POSTs JSON to its URL, signed.

Every request carries

- ``X-Flowlane-Id``: the outbox id, the same on every retry (receivers drop duplicates);
- ``X-Flowlane-Timestamp``: Unix seconds when the request was made;
- ``X-Flowlane-Signature``: ``sha256=`` and the hex HMAC-SHA256 of ``"<timestamp>.<body>"``
  (the body's bytes as sent) under the webhook secret.

The secret is ``FLOWLANE_WEBHOOK_SECRET`` if set, else derived from the account secret
(:func:`flowlane.services.signing.account_secret`, purpose ``webhook``);
``flowlane webhooks secret RECIPE`` prints it. A 2xx answer means delivered; 408, 429, 5xx
and connection problems are temporary (the worker retries with backoff); any other answer
(other 4xx, redirects, which are not followed) is a permanent failure.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from flowlane.runtime.mail import DeliveryError, PermanentDeliveryError, TemporaryDeliveryError
from flowlane.services.signing import account_secret, sign
from flowlane.store.base import Store
from flowlane.store.records import MessageRecord

__all__ = [
    "SECRET_VARIABLE",
    "WebhookSender",
    "is_webhook_url",
    "payload",
    "signature",
    "verify_signature",
    "webhook_secret",
]

SECRET_VARIABLE = "FLOWLANE_WEBHOOK_SECRET"
TEMPORARY_CODES = frozenset({408, 429})
"""4xx answers worth retrying (besides every 5xx)."""
USER_AGENT = "flowlane-webhooks/1"


def webhook_secret(store: Store, env: Mapping[str, str] = os.environ) -> str:
    """The key webhooks are signed with: ``FLOWLANE_WEBHOOK_SECRET``, else one derived from
    the account secret (stable as long as the account secret is)."""
    configured = env.get(SECRET_VARIABLE, "").strip()
    if configured:
        return configured
    return sign(account_secret(store, env), "webhook", "outgoing webhooks")


def is_webhook_url(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) URL with a host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``b"<timestamp>." + body`` under ``secret``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    now: float | None = None,
    tolerance_s: float = 300.0,
) -> bool:
    """What a receiver checks: the signature (in constant time) and that the timestamp is
    within ``tolerance_s`` of ``now`` (when given)."""
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if now is not None and abs(now - stamp) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, stamp, body), header)


def payload(message: MessageRecord) -> bytes:
    """The request body: the message as compact UTF-8 JSON; ``data`` is the rendered body
    parsed as JSON when it is a JSON object, else null."""
    data: Any = None
    try:
        parsed = json.loads(message.body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        data = parsed
    doc = {
        "id": message.id,
        "process": message.process,
        "block": message.block,
        "instance": message.instance_id,
        "subject": message.subject,
        "text": message.body,
        "data": data,
        "created_at": message.created_at.isoformat(),
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as it is (an error), never followed with the signed body."""

    def redirect_request(self, *_args: Any, **_kw: Any) -> None:
        return None


class WebhookSender:
    """POSTs webhook messages; raises Temporary/PermanentDeliveryError when not delivered."""

    def __init__(
        self,
        secret: str,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secret = secret
        self.timeout_s = timeout_s
        self.clock = clock
        self._opener = urllib.request.build_opener(_NoRedirects())

    def request(self, message: MessageRecord) -> urllib.request.Request:
        """The signed request for ``message`` (its timestamp is now)."""
        if not is_webhook_url(message.to):
            raise PermanentDeliveryError(f"webhook URL {message.to!r} is not an http(s) URL")
        body = payload(message)
        stamp = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Flowlane-Id": message.id,
            "X-Flowlane-Timestamp": str(stamp),
            "X-Flowlane-Signature": signature(self.secret, stamp, body),
        }
        return urllib.request.Request(message.to, data=body, headers=headers, method="POST")

    def post(self, message: MessageRecord) -> int:
        """Deliver ``message``; the HTTP status of the receiver's 2xx answer."""
        req = self.request(message)
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                status = int(resp.status)
        except urllib.error.HTTPError as exc:
            raise _refused(message.to, exc) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise TemporaryDeliveryError(f"webhook {message.to}: {reason}") from None
        if not 200 <= status < 300:  # 1xx never ends a request; kept for safety
            raise PermanentDeliveryError(f"webhook {message.to} answered HTTP {status}")
        return status


def _refused(url: str, exc: urllib.error.HTTPError) -> DeliveryError:
    code = exc.code
    try:
        detail = exc.read(300).decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException):
        detail = ""
    finally:
        exc.close()
    text = f"webhook {url} answered HTTP {code} {exc.reason}" + (f": {detail}" if detail else "")
    if code in TEMPORARY_CODES or code >= 500:
        return TemporaryDeliveryError(text, code=code)
    return PermanentDeliveryError(text, code=code)
