"""Golden histories: every ``decide`` call of representative scenario runs, recorded under
``tests/golden/`` (state before, event, time, the objects the world held), replays to the
same commands and the same new state.

Record anew after an intended behaviour change with::

    .venv/bin/python -m tests.engine.test_golden
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from flowlane.engine import Ctx, decide
from flowlane.engine.context import ObjectRecord
from flowlane.engine.events import Decision, Event, event_from_dict, message_to_dict
from flowlane.engine.state import InstanceState, encode_value, from_dict, to_dict
from flowlane.model.definition import Definition
from flowlane.model.recipe import load_recipe
from flowlane.runtime.simulate import Simulation, build_account, load_scenario

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
RECIPE = ROOT / "recipes" / "order-processing"
CASES = sorted(GOLDEN.glob("*.json"))


def _objects(account_store: Any) -> dict[str, Any]:
    return {
        oid: {"type": rec.type, "data": encode_value(copy.deepcopy(rec.data))}
        for oid, rec in account_store.objects.items()
    }


def record(scenario_path: Path) -> dict[str, Any]:
    recipe = load_recipe(RECIPE)
    scenario = load_scenario(scenario_path)
    sim = Simulation(recipe, scenario, source=str(scenario_path))
    calls: list[dict[str, Any]] = []

    def recorder(
        d: Definition, state: InstanceState, event: Event, now: datetime, decision: Decision
    ) -> None:
        calls.append(
            {
                "process": d.key,
                "version": d.version,
                "now": now.isoformat(),
                "objects": _objects(sim.account.store),
                "state": to_dict(state),
                "event": message_to_dict(event),
                "commands": [message_to_dict(c) for c in decision.commands],
                "after": to_dict(decision.state),
            }
        )

    sim.account.runner.recorder = recorder
    result = sim.run()
    assert result.ok, result.message
    return {"recipe": RECIPE.name, "scenario": scenario_path.name, "calls": calls}


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_history_replays_to_the_same_commands(path: Path) -> None:
    golden = json.loads(path.read_text())
    recipe = load_recipe(ROOT / "recipes" / golden["recipe"])
    assert golden["calls"], "an empty golden history proves nothing"
    for n, call in enumerate(golden["calls"]):
        now = datetime.fromisoformat(call["now"])
        account = build_account(recipe, now, recipe_tz(), None)
        account.store.objects = {
            oid: ObjectRecord(oid, o["type"], from_dict_value(o["data"]))
            for oid, o in call["objects"].items()
        }
        definition = account.store.version(call["process"], call["version"])
        decision = decide(
            definition,
            from_dict(call["state"]),
            event_from_dict(call["event"]),
            Ctx(now, account.store),
        )
        commands = [message_to_dict(c) for c in decision.commands]
        assert commands == call["commands"], f"call {n}: commands differ"
        assert to_dict(decision.state) == call["after"], f"call {n}: state differs"


def recipe_tz() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Moscow")


def from_dict_value(data: Any) -> Any:
    from flowlane.engine.state import decode_value

    return decode_value(data)


def test_golden_histories_exist() -> None:
    assert len(CASES) >= 3


if __name__ == "__main__":  # pragma: no cover - the recording tool
    picks = ["02", "05", "06"]
    for scen in sorted((RECIPE / "scenarios").glob("*.yaml")):
        if scen.name[:2] in picks:
            out = GOLDEN / f"{RECIPE.name}--{scen.stem}.json"
            out.write_text(json.dumps(record(scen), indent=1, sort_keys=True, default=str) + "\n")
            print("recorded", out)
