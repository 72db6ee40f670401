"""Shared fixtures."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from tests.support import RunScenario, write_recipe

from flowlane.runtime.simulate import SimResult, simulate


@pytest.fixture
def run_scenario(tmp_path: Path) -> RunScenario:
    """``run_scenario(processes, scenario, objects=..., templates=...)`` -> SimResult.

    Runs the scenario twice, straight and with a JSON round trip of every instance between
    steps, and checks both give the same result and the same trace.
    """

    def run(processes: dict[str, str], scenario: str, **kw: Any) -> SimResult:
        root = write_recipe(tmp_path / "recipe", processes, **kw)
        path = tmp_path / "scenario.yaml"
        path.write_text(textwrap.dedent(scenario))
        straight = simulate(root, path)
        tripped = simulate(root, path, roundtrip=True)
        assert (straight.ok, straight.message) == (tripped.ok, tripped.message)
        assert straight.trace == tripped.trace
        return straight

    return run
