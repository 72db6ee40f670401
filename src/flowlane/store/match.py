"""Conditions on objects evaluated in Python: the reference meaning of a segment."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flowlane.engine.context import Overlay, World
from flowlane.expr import compile_expression


def matcher(world: World, where: str | None, scope: Mapping[str, Any]) -> Callable[[str], bool]:
    """A test of condition ``where`` on one object id, the other names taken from ``scope``."""
    if where is None or not where.strip():
        return lambda _oid: True
    condition = compile_expression(where)
    overlay = Overlay(world)

    def test(oid: str) -> bool:
        names = dict(scope)
        names["object"] = overlay.proxy(oid)
        return condition.test(names)

    return test
