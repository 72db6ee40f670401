"""Races between requests and workers on one database: each one found by review, each one
now serialized. Most need PostgreSQL's row locks; SQLite has one writer at a time."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.smtp_sink import SmtpSink
from tests.support import write_recipe

from flowlane.core.errors import Refused
from flowlane.model.recipe import Recipe
from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable
from flowlane.runtime.faults import Faults
from flowlane.runtime.mail import SmtpSettings
from flowlane.runtime.worker import Worker, WorkerSettings
from flowlane.services.account import Account
from flowlane.store.sql import SqlStore
from flowlane.store.sql import tables as t

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(seconds=3)

RENAME = """\
key: rename
name: rename after a pause
object: user
blocks:
  start: {type: start, next: pause}
  pause: {type: delay, for: 2s, next: mark}
  mark: {type: operation, set: {name: "=object.name + ' done'"}, next: done}
  done: {type: end, outcome: positive}
"""

GO = """\
key: go
name: set go after a pause
object: user
blocks:
  start: {type: start, next: pause}
  pause: {type: delay, for: 2s, next: mark}
  mark: {type: operation, set: {name: go}, next: done}
  done: {type: end, outcome: positive}
"""

WATCH = """\
key: watch
name: wait for go
object: user
blocks:
  start: {type: start, next: w}
  w: {type: wait_for, until: "object.name == 'go'", next: done}
  done: {type: end, outcome: positive}
"""

ASK = """\
key: ask
name: ask a manager
object: user
task: {executors: ["role:manager"]}
blocks:
  start: {type: start, next: q}
  q: {type: question, title: "Approve?", options: {yes: done, no: done}}
  done: {type: end, outcome: positive}
"""

PERIODIC = """\
key: sweep
name: sweep
object: user
launch: {on: periodic, every: 1h}
blocks:
  start: {type: start, next: done}
  done: {type: end, outcome: positive}
"""

DRIP = """\
key: drip
name: two emails
object: user
blocks:
  start: {type: start, next: one}
  one: {type: message, to: "=object.id", subject: "One", body: "1", next: two}
  two: {type: message, to: "=object.id", subject: "Two", body: "2", next: done}
  done: {type: end, outcome: positive}
"""


def unsigned(counts: Mapping[str, int]) -> dict[str, int]:
    """Message-ID counts with the Message-IDs' signatures taken out: ``<i1.m2@flowlane>``."""
    return {re.sub(r"\.[A-Za-z0-9_-]{16}@", "@", mid): n for mid, n in counts.items()}


def _recipe(root: Path, processes: dict[str, str]) -> Recipe:
    return load_valid_recipe(write_recipe(root, processes))


@pytest.fixture
def stores(tmp_path: Path, pg_database: str) -> Iterator[Callable[..., SqlStore]]:
    """``stores(processes)``: the first call deploys; every call opens another connection
    pool on the same database, as another process would."""
    opened: list[SqlStore] = []
    recipe: list[Recipe] = []

    def make(processes: dict[str, str] | None = None) -> SqlStore:
        if not recipe:
            assert processes is not None
            recipe.append(_recipe(tmp_path / "recipe", processes))
        store = open_durable(recipe[0], pg_database)
        if not opened:
            deploy(recipe[0], store)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _user(store: SqlStore, uid: str = "u0", *, start: str | None = None, **data: str) -> None:
    account = Account(store, T0)

    def go() -> None:
        account.create_object(
            "user",
            {"name": "x", "email": f"{uid}@example.com", **data},
            object_id=uid,
            launches=False,
        )
        if start:
            account.start(start, uid)

    account.attempt(go)


def _in_thread(action: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_a_request_changing_a_steps_object_waits_for_the_step(
    stores: Callable[..., SqlStore],
) -> None:
    """The worker's step computes ``name + ' done'`` from what it read: an API change of
    the same object must come before or after it, never in between (a lost update)."""
    worker_store = stores({"rename": RENAME})
    _user(worker_store, start="rename")
    api = Account(stores(), LATER)
    worker = Worker(worker_store, "A", clock=lambda: LATER)
    prefetch = worker._prefetch
    blocked: list[bool] = []

    def prefetch_then_race(jobs: list) -> None:  # type: ignore[type-arg]
        prefetch(jobs)
        thread, errors = _in_thread(
            lambda: api.attempt(
                lambda: api.update_object("u0", {"name": "Renamed", "email": "new@example.com"})
            )
        )
        thread.join(0.5)
        blocked.append(thread.is_alive())  # waits for the worker's commit
        racers.append((thread, errors))

    racers: list[tuple[threading.Thread, list[BaseException]]] = []
    worker._prefetch = prefetch_then_race  # type: ignore[method-assign]
    assert worker.run_once() == 1
    thread, errors = racers[0]
    thread.join(10)
    assert blocked == [True] and errors == []
    rec = worker_store.get_object("u0")
    assert rec is not None
    assert rec.data["name"] == "Renamed" and rec.data["email"] == "new@example.com"


def test_a_wait_started_during_a_step_that_satisfies_it_still_wakes(
    stores: Callable[..., SqlStore],
) -> None:
    """An API request starts ``wait_for name == 'go'`` while a worker's uncommitted step
    sets ``name = go``: the request read the old name, but must not wait for ever."""
    worker_store = stores({"go": GO, "watch": WATCH})
    _user(worker_store, start="go")
    api_store = stores()
    api = Account(api_store, LATER)
    worker = Worker(worker_store, "A", clock=lambda: LATER)
    prefetch = worker._prefetch
    racers: list[tuple[threading.Thread, list[BaseException]]] = []

    def prefetch_then_race(jobs: list) -> None:  # type: ignore[type-arg]
        prefetch(jobs)
        racers.append(_in_thread(lambda: api.attempt(lambda: api.start("watch", "u0") and None)))
        racers[0][0].join(0.5)

    worker._prefetch = prefetch_then_race  # type: ignore[method-assign]
    assert worker.run_once() == 1
    thread, errors = racers[0]
    thread.join(10)
    assert errors == []
    states = {s.process: (s.status, s.outcome) for s in api_store.instances_of()}
    assert states == {"go": ("ended", "positive"), "watch": ("ended", "positive")}


def test_a_claim_made_meanwhile_is_seen(stores: Callable[..., SqlStore]) -> None:
    store = stores({"ask": ASK})
    account = Account(store, T0)

    def setup() -> None:
        for uid, role in (("u0", "client"), ("alice", "manager"), ("bob", "manager")):
            account.create_object(
                "user", {"name": uid, "role": role}, object_id=uid, launches=False
            )
        account.start("ask", "u0")

    account.attempt(setup)
    other = Account(stores(), T0)
    alice = Account(store, T0)

    def claim_after_bob() -> None:
        task = alice.open_task("q", "u0")  # read before bob's claim commits
        other.attempt(lambda: other.claim(other.open_task("q", "u0"), by="bob"))
        alice.claim(task, by="alice")

    with pytest.raises(Refused, match="already assigned to bob"):
        alice.attempt(claim_after_bob)
    (task,) = store.find_tasks(block="q")
    assert task.assignee == "bob"
    assert [h["by"] for h in task.history if h["what"] == "claimed"] == ["bob"]


def test_migrate_skips_an_instance_a_worker_ended_meanwhile(
    stores: Callable[..., SqlStore], tmp_path: Path
) -> None:
    store = stores({"rename": RENAME})
    _user(store, start="rename")
    changed = _recipe(tmp_path / "v2", {"rename": RENAME.replace("' done'", "' v2'")})
    deploy(changed, store)
    worker = Worker(stores(), "A", clock=lambda: LATER)
    admin = Account(store, LATER)
    prefetch = store.prefetch

    def worker_first(**kw: object) -> None:
        if kw.get("instance_ids") and not ran:
            ran.append(worker.run_once())  # the worker's batch commits before the locks
        prefetch(**kw)  # type: ignore[arg-type]

    ran: list[int] = []
    store.prefetch = worker_first  # type: ignore[method-assign]
    moved: list[str] = []
    admin.attempt(lambda: moved.extend(admin.migrate("rename", 2, {}, by=None)))
    assert ran == [1] and moved == []
    (state,) = store.instances_of("rename")
    assert (state.status, state.version) == ("ended", 1)


def test_deploying_again_keeps_one_periodic_chain(tmp_path: Path) -> None:
    """Each ``flowlane deploy`` of an unchanged recipe used to add a chain of checks."""
    recipe = _recipe(tmp_path / "recipe", {"sweep": PERIODIC})
    store = open_durable(recipe, f"sqlite:///{tmp_path / 'p.db'}")
    try:
        for _ in range(3):
            assert [d.version for d in deploy(recipe, store)] == [1]
        changed = _recipe(tmp_path / "v2", {"sweep": PERIODIC.replace("every: 1h", "every: 2h")})
        assert [d.version for d in deploy(changed, store)] == [2]
        with store.engine.connect() as c:
            rows = c.execute(select(t.jobs.c.id).where(t.jobs.c.kind == "periodic")).all()
        assert [row[0] for row in rows] == ["periodic:sweep"]
    finally:
        store.close()


def test_a_worker_whose_lease_ran_out_does_not_send_the_rest(tmp_path: Path) -> None:
    """Only the email in flight when the lease ran out may go twice (SQLite, fake clock)."""
    recipe = _recipe(tmp_path / "recipe", {"drip": DRIP})
    url = f"sqlite:///{tmp_path / 'lease.db'}"
    store = open_durable(recipe, url)
    deploy(recipe, store)
    _user(store, start="drip")
    now = [T0]
    with SmtpSink() as sink:
        smtp = SmtpSettings(port=sink.port, timeout_s=5.0)
        late = Worker(store, "B", WorkerSettings(lease_s=30), smtp=smtp, clock=lambda: now[0])

        class SlowRelay(Faults):
            def hit(self, point: str) -> None:
                if point == "after_send" and now[0] == T0:
                    now[0] = T0 + timedelta(seconds=31)  # the first hand-over took 31 s
                    assert late.run_once() == 2  # B took over both emails and sent them

        first = Worker(
            store,
            "A",
            WorkerSettings(lease_s=30),
            smtp=smtp,
            clock=lambda: now[0],
            faults=SlowRelay(),
        )
        assert first.run_once() == 2
        assert sink.wait_for(3, timeout=5)
        counts = sink.count_by_message_id()
        first.close()
        late.close()
    store.close()
    assert unsigned(counts) == {"<i1.m2@flowlane>": 2, "<i1.m3@flowlane>": 1}


# ---- found by the second review: lock order, periodic chains ---------------------------------

FORK_ASK = """\
key: race
name: a question racing a delay
object: user
task: {executors: ["role:manager"]}
blocks:
  start: {type: start, next: split}
  split: {type: fork, next: [q, pause]}
  q: {type: question, title: "Approve?", options: {yes: done, no: done}}
  pause: {type: delay, for: 2s, next: done}
  done: {type: end, outcome: positive}
"""

WAIT_OR_TIMEOUT = """\
key: waitt
name: wait for go, at most 2 s
object: user
blocks:
  start: {type: start, next: w}
  w: {type: wait_for, until: "object.name == 'go'", timeout: 2s, next: done, on_timeout: late}
  late: {type: end, outcome: negative}
  done: {type: end, outcome: positive}
"""


def _race_with_worker(
    worker: Worker, request: Callable[[], None]
) -> tuple[bool, list[BaseException]]:
    """Run ``request`` in a thread once the worker's batch holds its locks; whether it had
    to wait for the worker, and what it raised."""
    prefetch = worker._prefetch
    racers: list[tuple[threading.Thread, list[BaseException]]] = []
    waited: list[bool] = []

    def prefetch_then_race(jobs: list) -> None:  # type: ignore[type-arg]
        prefetch(jobs)
        racers.append(_in_thread(request))
        racers[0][0].join(0.5)
        waited.append(racers[0][0].is_alive())

    worker._prefetch = prefetch_then_race  # type: ignore[method-assign]
    assert worker.run_once() == 1
    thread, errors = racers[0]
    thread.join(10)
    assert not thread.is_alive()
    return waited[0], errors


def test_an_answer_racing_the_step_that_ends_its_instance_waits_and_is_refused(
    stores: Callable[..., SqlStore],
) -> None:
    """Requests lock an instance before its tasks, as steps do: no deadlock."""
    worker_store = stores({"race": FORK_ASK})
    account = Account(worker_store, T0)

    def setup() -> None:
        account.create_object("user", {"name": "u0"}, object_id="u0", launches=False)
        account.create_object(
            "user", {"name": "alice", "role": "manager"}, object_id="alice", launches=False
        )
        account.start("race", "u0")

    account.attempt(setup)
    api_store = stores()
    api = Account(api_store, LATER)
    (task,) = api_store.find_tasks(block="q")
    worker = Worker(worker_store, "A", clock=lambda: LATER)
    waited, errors = _race_with_worker(
        worker, lambda: api.attempt(lambda: api.answer(task, option="yes", fields={}, by="alice"))
    )
    assert waited
    assert [str(e) for e in errors] == [f"task {task.id} is cancelled already"]
    (state,) = worker_store.instances_of("race")
    assert state.status == "ended"


def test_an_object_change_racing_a_timeout_is_run_again_if_chosen_as_deadlock_victim(
    stores: Callable[..., SqlStore],
) -> None:
    """The worker locks instance then object; a request changing the object locks it, then
    the instance waiting on it. PostgreSQL breaks such a deadlock by aborting one of them;
    the request is run again and both end up applied."""
    worker_store = stores({"waitt": WAIT_OR_TIMEOUT})
    _user(worker_store, start="waitt")
    api_store = stores()
    api = Account(api_store, LATER)
    worker = Worker(worker_store, "A", clock=lambda: LATER)
    waited, errors = _race_with_worker(
        worker, lambda: api.attempt(lambda: api.update_object("u0", {"name": "go"}))
    )
    assert waited and errors == []
    (state,) = worker_store.instances_of("waitt")
    assert (state.status, state.outcome) == ("ended", "negative")  # the timeout came first
    rec = api_store.get_object("u0")
    assert rec is not None and rec.data["name"] == "go"


def test_a_deploy_restarting_a_periodic_chain_while_a_worker_fires_it(
    stores: Callable[..., SqlStore], tmp_path: Path
) -> None:
    worker_store = stores({"sweep": PERIODIC})
    _user(worker_store)
    later = datetime.now(UTC) + timedelta(hours=2)
    worker = Worker(worker_store, "A", clock=lambda: later)
    changed = _recipe(tmp_path / "v2", {"sweep": PERIODIC.replace("every: 1h", "every: 2h")})
    admin_store = stores()
    deployed: list[int] = []
    _waited, errors = _race_with_worker(
        worker, lambda: deployed.extend(d.version for d in deploy(changed, admin_store))
    )
    assert errors == [] and deployed == [2]
    with worker_store.engine.connect() as c:
        rows = c.execute(select(t.jobs.c.id).where(t.jobs.c.kind == "periodic")).all()
    assert [row[0] for row in rows] == ["periodic:sweep"]


def test_a_version_that_is_no_longer_periodic_stops_the_checks(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path / "v1", {"sweep": PERIODIC})
    store = open_durable(recipe, f"sqlite:///{tmp_path / 'stop.db'}")
    try:
        deploy(recipe, store)
        _user(store, "u0")
        manual = PERIODIC.replace("launch: {on: periodic, every: 1h}", "launch: {on: manual}")
        assert [d.version for d in deploy(_recipe(tmp_path / "v2", {"sweep": manual}), store)] == [
            2
        ]
        later = datetime.now(UTC) + timedelta(hours=2)
        assert Worker(store, "A", clock=lambda: later).run_once() == 0
        assert store.instances_of() == []
    finally:
        store.close()
