"""Passwords are write-only: stored as argon2 hashes, never shown back."""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher

from flowlane.objects import ObjectType

_HASHER = PasswordHasher()


def hash_passwords(otype: ObjectType, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every write-only field's plain value replaced by its argon2 hash."""
    out = dict(data)
    for name, value in data.items():
        spec = otype.fields.get(name)
        if spec is not None and spec.write_only and isinstance(value, str) and value:
            out[name] = _HASHER.hash(value)
    return out
