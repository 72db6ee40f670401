"""Semantic validation of processes and recipes (being written)."""

from __future__ import annotations

from flowlane.model.diagnostic import Diagnostic
from flowlane.model.recipe import Recipe


def validate_recipe(recipe: Recipe) -> list[Diagnostic]:
    return []
