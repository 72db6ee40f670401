"""Standard BPMN processes hosted by the runtime (ADR 0012 "Hosting"): a process file with
``bpmn:`` deploys a diagram; its scenarios run on the simulator in memory, with a JSON round
trip of every instance between steps, and on SQLite, writing the same trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowlane.model.recipe import load_recipe
from flowlane.model.validate import validate_recipe
from flowlane.runtime.simulate import Database, simulate

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "bpmn-review"
SCENARIOS = sorted((FIXTURE / "scenarios").glob("*.yaml"))


def test_the_fixture_validates() -> None:
    recipe = load_recipe(FIXTURE)
    assert recipe.problems == []
    assert [str(d) for d in validate_recipe(recipe) if d.severity == "error"] == []
    spec = recipe.processes["review"]
    assert spec.bpmn is not None and "review.bpmn" in spec.bpmn.documents


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_memory_roundtrip_and_sqlite(path: Path, tmp_path: Path) -> None:
    straight = simulate(FIXTURE, path)
    assert straight.ok, straight.message
    tripped = simulate(FIXTURE, path, roundtrip=True)
    assert tripped.ok, tripped.message
    assert tripped.trace == straight.trace
    durable = simulate(FIXTURE, path, db=Database(f"sqlite:///{tmp_path / 'f.db'}"))
    assert durable.ok, durable.message
    assert durable.trace == straight.trace
