"""Launch rules that a scenario cannot express, on every store: a ``once`` launch runs when a
process is deployed onto objects that already exist, approval is given once, and the forecast
of a periodic check with ``repeat`` counts only the objects the next check would start."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flowlane.core.errors import Refused
from flowlane.model.definition import Definition
from flowlane.model.recipe import Recipe, load_recipe, parse_process
from flowlane.model.yamlio import parse_text
from flowlane.runtime.simulate import Database, build_account
from flowlane.services.account import Account
from flowlane.store.records import TimerRecord

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "launches"
TZ = ZoneInfo("Europe/Moscow")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)


@pytest.fixture(scope="module")
def recipe() -> Recipe:
    return load_recipe(RECIPE)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def account(request: pytest.FixtureRequest, recipe: Recipe, tmp_path: Path) -> Iterator[Account]:
    """The launches recipe deployed at T0, with an owner and three delayed orders."""
    db = None
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'rules.db'}")
    elif request.param == "postgresql":
        db = Database(request.getfixturevalue("pg_database"))
    acc = build_account(recipe, T0, TZ, None, db)
    try:

        def fixtures() -> None:
            acc.create_object(
                "user",
                {"name": "Olga", "email": "olga@shop.example", "role": "owner"},
                object_id="olga",
            )
            for i in range(3):
                acc.create_object(
                    "order", {"number": f"D-{i}", "status": "delayed"}, object_id=f"d{i}"
                )

        _do(acc, fixtures)
        yield acc
    finally:
        acc.store.close()


def _do(account: Account, action: Callable[[], object]) -> None:
    def run() -> None:
        action()

    account.attempt(run)


def _deploy(account: Account, text: str) -> None:
    spec, problems = parse_process(parse_text(text, source="p.yaml"), source="p.yaml")
    assert spec is not None, problems
    _do(account, lambda: account.deploy(Definition.build(spec, source="p.yaml")))


def _started(account: Account, process: str) -> list[str]:
    return sorted(str(st.object_id) for st in account.store.instances_of(process))


def _process(key: str, launch: str) -> str:
    return f"""
key: {key}
name: {key}
object: order
launch: {launch}
blocks:
  start: {{type: start, next: wait}}
  wait: {{type: delay, for: 30d, next: done}}
  done: {{type: end}}
"""


def test_a_once_launch_runs_when_the_process_is_deployed(account: Account) -> None:
    """The durable runtime deploys onto existing objects: that is the process's start."""
    _deploy(account, _process("sweep", "{on: once, entry: \"object.status == 'delayed'\"}"))
    assert _started(account, "sweep") == ["d0", "d1", "d2"]
    # an unchanged or changed deploy later is no new start
    _deploy(account, _process("sweep", "{on: once, entry: \"object.status == 'delayed'\"}"))
    assert _started(account, "sweep") == ["d0", "d1", "d2"]


def test_a_process_is_approved_once(account: Account) -> None:
    """Approving an approved process again would run its ``once`` launch again (with
    ``repeat``, every object a second time): refused, nothing changes."""
    launch = "{on: once, repeat: true, approval: true, entry: \"object.status == 'delayed'\"}"
    _deploy(account, _process("sweep", launch))
    assert _started(account, "sweep") == []
    _do(account, lambda: account.approve("sweep", by="olga"))
    assert _started(account, "sweep") == ["d0", "d1", "d2"]
    with pytest.raises(Refused, match="sweep is approved already"):
        _do(account, lambda: account.approve("sweep", by="olga"))
    assert _started(account, "sweep") == ["d0", "d1", "d2"]
    # stopped, it keeps its approval: activating it is the way to start it again
    _do(account, lambda: account.stop_process("sweep", by="olga"))
    with pytest.raises(Refused, match="sweep is approved already"):
        _do(account, lambda: account.approve("sweep", by="olga"))
    assert account.process_info("sweep").status == "stopped"


def test_a_process_without_approval_is_not_approved(account: Account) -> None:
    launch = "{on: once, repeat: true, entry: \"object.status == 'delayed'\"}"
    _deploy(account, _process("sweep", launch))
    assert _started(account, "sweep") == ["d0", "d1", "d2"]
    with pytest.raises(Refused, match=r"sweep needs no approval \(launch.approval is false\)"):
        _do(account, lambda: account.approve("sweep", by="olga"))
    assert _started(account, "sweep") == ["d0", "d1", "d2"]
    assert not account.process_info("sweep").approved


def test_the_forecast_of_a_periodic_check_with_repeat_counts_the_next_check(
    account: Account,
) -> None:
    launch = "{on: periodic, every: 10m, repeat: true, entry: \"object.status == 'delayed'\"}"
    _deploy(account, _process("sweep", launch))
    assert account.forecast("sweep").objects == 3
    account.runner.now = T0 + timedelta(minutes=10)
    _do(account, account.runner.run)  # the check: all three enter
    assert _started(account, "sweep") == ["d0", "d1", "d2"]
    assert account.forecast("sweep").objects == 0  # the next check starts none of them

    def change() -> None:
        account.create_object("order", {"number": "D-3", "status": "delayed"}, object_id="d3")
        account.update_object("d0", {"status": "paid"})

    _do(account, change)
    assert account.forecast("sweep").objects == 1  # d3 only
    account.runner.now = T0 + timedelta(minutes=20)
    _do(account, account.runner.run)
    assert _started(account, "sweep") == ["d0", "d1", "d2", "d3"]
    assert account.forecast("sweep").objects == 0


def test_a_check_of_a_stopped_process_ends_its_chain(account: Account) -> None:
    """On PostgreSQL a stop can commit while a worker runs the check it cannot delete (the
    worker replaced the job row): that check's successor then fires on a stopped process.
    It starts nothing and schedules no further check; activating schedules them anew."""
    for key in ("renewal-reminder", "stalled-order", "vip-review"):  # only sweep's chain
        _do(account, partial(account.stop_process, key, by="olga"))
    launch = "{on: periodic, every: 10m, entry: \"object.status == 'delayed'\"}"
    _deploy(account, _process("sweep", launch))
    _do(account, lambda: account.stop_process("sweep", by="olga"))
    due = T0 + timedelta(minutes=10)

    def left_behind() -> None:  # what the race leaves: the chain's timer, process stopped
        account.store.add_timer(
            TimerRecord("periodic:sweep", None, due, 0, kind="periodic", process="sweep")
        )

    _do(account, left_behind)
    account.runner.now = due
    _do(account, account.runner.run)
    assert _started(account, "sweep") == []
    assert account.store.next_timer(T0 + timedelta(days=1)) is None
    _do(account, lambda: account.activate_process("sweep", by="olga"))
    timer = account.store.next_timer(T0 + timedelta(days=1))
    assert timer is not None and timer.due_at == due + timedelta(minutes=10)


def test_a_check_starts_only_objects_that_still_match_under_their_locks(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search and the locks are apart: an object changed in between (a request that
    committed meanwhile) is checked again once locked, and does not enter."""
    launch = "{on: periodic, every: 10m, entry: \"object.status == 'delayed'\"}"
    _deploy(account, _process("sweep", launch))
    found = account.store.newly_matching

    def stale(*args: object, **kw: object) -> list[str]:
        ids = found(*args, **kw)  # type: ignore[arg-type]
        account.store.update_object("d1", {"status": "paid"}, T0)  # "meanwhile"
        return ids

    monkeypatch.setattr(account.store, "newly_matching", stale)
    account.runner.now = T0 + timedelta(minutes=10)
    _do(account, account.runner.run)
    assert _started(account, "sweep") == ["d0", "d2"]


def test_one_event_makes_one_object_for_every_process_listening(account: Account) -> None:
    for key in ("a", "b"):
        _deploy(
            account,
            f"""
key: intake-{key}
name: intake {key}
object: order
launch: {{on: event, event: "webhook:shop"}}
blocks:
  start: {{type: start, next: done}}
  done: {{type: end}}
""",
        )
    before = set(account.store.objects_of_type("order"))
    got: list[str] = []
    _do(account, lambda: got.extend(account.fire_event("webhook", "shop", {"number": "W-1"})))
    made = set(account.store.objects_of_type("order")) - before
    assert len(got) == 2 and len(made) == 1
    assert {st.object_id for st in map(account.store.get_instance, got) if st} == made
