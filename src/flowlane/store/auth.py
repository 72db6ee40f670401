"""Records of authentication: login sessions and API tokens (see ``services/auth.py``).

Secrets are never stored: a session id and an API token are kept as their SHA-256 hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A login session: ``id_hash`` is the hash of the cookie's value; ``csrf`` the token
    that unsafe requests made with the cookie must repeat in ``X-CSRF-Token``."""

    id_hash: str
    user_id: str
    csrf: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ApiTokenRecord:
    """An API token: ``id`` is public (listed, revoked by it), ``token_hash`` the hash of
    the secret ``flowlane_...`` value shown once."""

    id: str
    token_hash: str
    user_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
