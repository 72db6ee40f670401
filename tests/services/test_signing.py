"""The account secret is made once and signatures are bound to their purpose."""

from __future__ import annotations

import pytest

from flowlane.core.errors import ValidationError
from flowlane.objects.build import build_schema
from flowlane.services.signing import account_secret, sign, verify
from flowlane.store.memory import MemoryStore


def test_secret_is_made_once_and_kept() -> None:
    store = MemoryStore(schema=build_schema(None))
    first = account_secret(store, env={})
    assert len(first) == 32
    assert account_secret(store, env={}) == first


def test_configured_secret_wins_and_is_checked() -> None:
    store = MemoryStore(schema=build_schema(None))
    assert account_secret(store, env={"FLOWLANE_SECRET": "ab" * 16}) == bytes.fromhex("ab" * 16)
    assert store.setting("signing_secret") is None
    with pytest.raises(ValidationError, match="FLOWLANE_SECRET must be hexadecimal"):
        account_secret(store, env={"FLOWLANE_SECRET": "not hex"})
    with pytest.raises(ValidationError, match="at least 16 bytes"):
        account_secret(store, env={"FLOWLANE_SECRET": "abcd"})


def test_signatures_depend_on_purpose_message_and_secret() -> None:
    secret = b"k" * 32
    signature = sign(secret, "link", "review-1")
    assert verify(secret, "link", "review-1", signature)
    assert not verify(secret, "reply", "review-1", signature)
    assert not verify(secret, "link", "review-2", signature)
    assert not verify(b"j" * 32, "link", "review-1", signature)
    assert not verify(secret, "link", "review-1", signature[:-1] + "A")
    assert len(sign(secret, "reply", "t", length=12)) == 16
