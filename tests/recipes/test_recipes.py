"""Every scenario of every recipe passes, straight and with a JSON round trip of every
instance between steps; the two runs write the same trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowlane.model.recipe import load_recipe
from flowlane.model.validate import validate_recipe
from flowlane.runtime.simulate import Database, simulate

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
SCENARIOS = sorted(RECIPES.glob("*/scenarios/*.yaml"))


def test_there_are_recipe_scenarios() -> None:
    assert len(list((RECIPES / "order-processing" / "scenarios").glob("*.yaml"))) >= 8


@pytest.mark.parametrize(
    "recipe", sorted(p for p in RECIPES.iterdir() if p.is_dir()), ids=lambda p: p.name
)
def test_recipe_validates_without_errors(recipe: Path) -> None:
    loaded = load_recipe(recipe)
    errors = [str(d) for d in loaded.problems + validate_recipe(loaded) if d.severity == "error"]
    assert errors == []


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: f"{p.parents[1].name}/{p.stem}")
def test_scenario_passes_straight_and_round_tripped(path: Path) -> None:
    straight = simulate(path.parents[1], path)
    assert straight.ok, straight.message
    tripped = simulate(path.parents[1], path, roundtrip=True)
    assert tripped.ok, tripped.message
    assert tripped.trace == straight.trace


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: f"{p.parents[1].name}/{p.stem}")
def test_scenario_on_sqlite_writes_the_memory_trace(path: Path, tmp_path: Path) -> None:
    """The durable store runs every recipe scenario exactly as the memory store does."""
    memory = simulate(path.parents[1], path)
    durable = simulate(path.parents[1], path, db=Database(f"sqlite:///{tmp_path / 'f.db'}"))
    assert durable.ok, durable.message
    assert durable.trace == memory.trace


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: f"{p.parents[1].name}/{p.stem}")
def test_scenario_on_postgresql_writes_the_memory_trace(path: Path, pg_database: str) -> None:
    memory = simulate(path.parents[1], path)
    durable = simulate(path.parents[1], path, db=Database(pg_database))
    assert durable.ok, durable.message
    assert durable.trace == memory.trace
