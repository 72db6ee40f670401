"""The durable worker in-process: claims, leases, group commit, retries and SMTP delivery.

Every test drives :class:`~flowlane.runtime.worker.Worker` (or the
:class:`~flowlane.store.sql.JobQueue` under it) with a fake clock, never the wall clock and
never a sleep, on SQLite and on PostgreSQL, against a real SMTP server on loopback
(:class:`tests.smtp_sink.SmtpSink`). The recipe is the drip process of the crash tests: an
email, a 2 s delay, a change of the object's name, a second email, the end.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from tests import support
from tests.smtp_sink import SmtpSink
from tests.support import write_recipe
from typer.testing import CliRunner

from flowlane.cli.main import app
from flowlane.core.errors import NotFound
from flowlane.model.recipe import Recipe
from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable
from flowlane.runtime.faults import Faults
from flowlane.runtime.mail import SmtpSettings, TemporaryDeliveryError
from flowlane.runtime.worker import Worker, WorkerSettings
from flowlane.services.account import Account
from flowlane.store.records import Job, TimerRecord
from flowlane.store.sql import JobQueue, SqlStore
from flowlane.store.sql import tables as t
from flowlane.store.sql.store import TIMER_KINDS

DRIP = """\
key: drip
name: drip emails
object: user
blocks:
  start: {type: start, next: hello}
  hello: {type: message, to: "=object.id", subject: "Welcome {{ object.name }}", body: "Hi", next: pause}
  pause: {type: delay, for: 2s, next: mark}
  mark: {type: operation, set: {name: "=object.name + ' done'"}, next: again}
  again: {type: message, to: "=object.id", subject: "Second {{ object.name }}", body: "Again", next: done}
  done: {type: end, outcome: positive}
"""  # noqa: E501

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=ZoneInfo("America/New_York"))
"""The fake clock starts here; neither UTC nor the account's zone (Europe/Moscow)."""
ALL_KINDS = (*TIMER_KINDS, "deliver")


# ---- fixtures and helpers -------------------------------------------------------------------


class Clock:
    """The fake clock a worker reads: set by hand, never moves by itself."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> datetime:
        """Set the clock to ``T0 + seconds``."""
        self.now = T0 + timedelta(seconds=seconds)
        return self.now


class OnPoint(Faults):
    """Runs ``action`` the first time the worker passes ``point`` (instead of a crash)."""

    def __init__(self, point: str, action: Callable[[], None]) -> None:
        super().__init__()
        self.point = point
        self.action = action
        self.hits = 0

    def hit(self, point: str) -> None:
        if point == self.point:
            self.hits += 1
            if self.hits == 1:
                self.action()


def unsigned(counts: Mapping[str, int]) -> dict[str, int]:
    """Message-ID counts with the Message-IDs' signatures taken out: ``<i1.m2@flowlane>``."""
    return {re.sub(r"\.[A-Za-z0-9_-]{16}@", "@", mid): n for mid, n in counts.items()}


@pytest.fixture
def recipe(tmp_path: Path) -> Recipe:
    return load_valid_recipe(write_recipe(tmp_path / "recipe", {"drip": DRIP}))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/f.db"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
def store(recipe: Recipe, db_url: str) -> Iterator[SqlStore]:
    opened = open_durable(recipe, db_url)
    try:
        deploy(recipe, opened)
        yield opened
    finally:
        opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
def workers(store: SqlStore, clock: Clock) -> Iterator[Callable[..., Worker]]:
    """``workers(name, port=..., faults=..., **settings)``: a worker on the fake clock."""
    made: list[Worker] = []

    def make(
        name: str = "w1", *, port: int | None = None, faults: Faults | None = None, **kw: Any
    ) -> Worker:
        smtp = None if port is None else SmtpSettings(port=port, timeout_s=5.0)
        worker = Worker(
            store,
            name,
            WorkerSettings(**kw),
            smtp=smtp,
            clock=clock,
            faults=faults or Faults(),
        )
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.close()


def start_users(store: SqlStore, count: int) -> list[str]:
    """Users u0… with an instance of drip each, started at T0; the instance ids in order."""
    return support.start_users(store, count, T0)


def drain(worker: Worker) -> int:
    """Run batches until nothing is claimable at the current clock; the jobs claimed."""
    total = 0
    for _ in range(50):
        claimed = worker.run_once()
        if claimed == 0:
            return total
        total += claimed
    raise AssertionError("the worker never came to rest")


def run_for(worker: Worker, clock: Clock, seconds: float, tick: float = 0.5) -> None:
    """Drain, move the clock on by ``tick``, drain again… for ``seconds`` of fake time."""
    end = clock.now + timedelta(seconds=seconds)
    while True:
        drain(worker)
        if clock.now >= end:
            return
        clock.now = min(clock.now + timedelta(seconds=tick), end)


def job_rows(store: SqlStore) -> dict[str, Any]:
    with store.engine.connect() as c:
        return {r.id: r for r in c.execute(select(t.jobs)).all()}


def outbox_rows(store: SqlStore) -> dict[str, Any]:
    with store.engine.connect() as c:
        return {r.id: r for r in c.execute(select(t.outbox)).all()}


def states(store: SqlStore) -> dict[str, tuple[str, str | None]]:
    return {s.id: (s.status, s.outcome) for s in store.instances_of("drip")}


def name_of(store: SqlStore, object_id: str) -> str:
    rec = store.get_object(object_id)
    assert rec is not None
    return str(rec.data["name"])


def spy_claims(monkeypatch: pytest.MonkeyPatch, worker: Worker) -> list[list[Job]]:
    """Every batch the worker claims, as returned by the queue."""
    batches: list[list[Job]] = []
    real = worker.queue.claim

    def claim(*args: Any, **kwargs: Any) -> list[Job]:
        jobs = real(*args, **kwargs)
        batches.append(jobs)
        return jobs

    monkeypatch.setattr(worker.queue, "claim", claim)
    return batches


def fail_for(monkeypatch: pytest.MonkeyPatch, worker: Worker, failing: set[str]) -> None:
    """Make the worker's steps raise for the instances in ``failing`` (mutable)."""
    real = worker.account.runner.fire

    def fire(timer: TimerRecord) -> None:
        if timer.instance_id in failing:
            raise RuntimeError(f"boom in {timer.instance_id}")
        real(timer)

    monkeypatch.setattr(worker.account.runner, "fire", fire)


# ---- the happy path ---------------------------------------------------------------------------


def test_ten_instances_run_to_the_end_and_every_email_arrives_once(
    store: SqlStore, clock: Clock, sink: SmtpSink, workers: Callable[..., Worker]
) -> None:
    ids = start_users(store, 10)
    worker = workers(port=sink.port)
    assert drain(worker) == 10  # the ten welcome emails; the timers are not due
    assert len(sink.messages) == 10
    clock.at(2)
    assert drain(worker) == 20  # ten timers, then the ten second emails they queued

    assert states(store) == {iid: ("ended", "positive") for iid in ids}
    for i in range(10):
        assert name_of(store, f"u{i}") == f"U{i} done"
    messages = store.messages()
    assert len(messages) == 20
    assert {m.status for m in messages} == {"sent"}
    for m in messages:
        assert re.fullmatch(rf"{m.instance_id}\.m\d+", m.id), m.id
    assert sink.wait_for(20, timeout=2)
    assert unsigned(sink.count_by_message_id()) == {f"<{m.id}@flowlane>": 1 for m in messages}
    to = {str(msg["X-Flowlane-Outbox"]): str(msg["To"]) for msg in sink.messages}
    for i, iid in enumerate(ids):
        for subject in (f"Welcome U{i}", f"Second U{i} done"):
            (m,) = [m for m in messages if m.instance_id == iid and m.subject == subject]
            assert to[m.id] == f"u{i}@example.com"
    rows = outbox_rows(store)
    assert {(r.status, r.attempts) for r in rows.values()} == {("sent", 1)}
    assert {r.sent_at for r in rows.values()} == {T0, T0 + timedelta(seconds=2)}
    assert JobQueue(store).pending() == {}
    assert JobQueue(store).failed() == []


def test_a_timer_is_claimed_at_its_due_time_not_before(
    store: SqlStore, clock: Clock, sink: SmtpSink, workers: Callable[..., Worker]
) -> None:
    ids = start_users(store, 3)
    worker = workers(port=sink.port)
    assert worker.run_once() == 3  # the welcome emails
    assert worker.run_once() == 0
    clock.at(1.999)
    assert worker.run_once() == 0
    assert {s[0] for s in states(store).values()} == {"running"}
    assert JobQueue(store).pending() == {"ready": 3}
    clock.at(2)
    assert worker.run_once() == 3  # the three timers, exactly at their due time
    assert states(store) == {iid: ("ended", "positive") for iid in ids}
    second = [m for m in store.messages() if m.subject.startswith("Second")]
    assert [m.created_at for m in second] == [T0 + timedelta(seconds=2)] * 3
    assert worker.run_once() == 3 and worker.run_once() == 0
    assert JobQueue(store).pending() == {}


def test_a_late_worker_runs_steps_at_their_due_time(
    store: SqlStore, clock: Clock, workers: Callable[..., Worker]
) -> None:
    (iid,) = start_users(store, 1)
    worker = workers()  # no SMTP: only the timer
    clock.at(3 * 3600)
    assert worker.run_once() == 1
    fired = [h for h in store.history(iid) if h["event"] == "timer_fired"]
    assert [datetime.fromisoformat(h["time"]) for h in fired] == [T0 + timedelta(seconds=2)]
    (second,) = [m for m in store.messages() if m.subject == "Second U0 done"]
    assert second.created_at == T0 + timedelta(seconds=2)


# ---- leases ----------------------------------------------------------------------------------


def test_jobs_of_a_dead_worker_pass_to_another_when_its_lease_runs_out(
    store: SqlStore,
    clock: Clock,
    sink: SmtpSink,
    workers: Callable[..., Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = start_users(store, 3)
    clock.at(3)
    queue_a = JobQueue(store)
    held = queue_a.claim(clock(), "A", lease_s=10, limit=100, kinds=ALL_KINDS)
    assert len(held) == 6  # three welcome emails and three timers
    assert {j.attempts for j in held} == {1}
    # Worker A dies here: it never sends, never steps, never finishes.

    a_finished: list[bool] = []

    def a_returns() -> None:
        a_finished.extend(queue_a.finish(j, "A") for j in held)

    b = workers("B", port=sink.port, lease_s=10, faults=OnPoint("after_claim", a_returns))
    batches = spy_claims(monkeypatch, b)
    clock.at(3 + 5)
    assert b.run_once() == 0  # A's lease still runs
    assert sink.messages == []
    clock.at(3 + 11)
    assert b.run_once() == 6
    assert {j.id for j in batches[-1]} == {j.id for j in held}
    assert {j.attempts for j in batches[-1]} == {2}
    # A comes back while B holds the jobs: it may not finish them.
    assert a_finished == [False] * 6
    assert drain(b) == 3  # the second emails
    assert [queue_a.finish(j, "A") for j in held] == [False] * 6

    assert states(store) == {iid: ("ended", "positive") for iid in ids}
    assert [name_of(store, f"u{i}") for i in range(3)] == ["U0 done", "U1 done", "U2 done"]
    assert sink.wait_for(6, timeout=2)
    assert unsigned(sink.count_by_message_id()) == {
        f"<{m.id}@flowlane>": 1 for m in store.messages()
    }
    assert JobQueue(store).pending() == {}


def test_a_job_cancelled_while_claimed_is_skipped(
    recipe: Recipe, db_url: str, store: SqlStore, clock: Clock, workers: Callable[..., Worker]
) -> None:
    ids = start_users(store, 3)
    other = open_durable(recipe, db_url)  # another process's connection to the database

    def cancel_u1() -> None:
        with other.transaction():
            Account(other, clock()).cancel("drip", "u1", by=None)

    try:
        worker = workers(faults=OnPoint("after_claim", cancel_u1))
        clock.at(2)
        assert worker.run_once() == 3  # all three timers claimed, then u1 cancelled
    finally:
        other.close()
    assert states(store) == {
        ids[0]: ("ended", "positive"),
        ids[1]: ("cancelled", "cancelled"),
        ids[2]: ("ended", "positive"),
    }
    assert [name_of(store, f"u{i}") for i in range(3)] == ["U0 done", "U1", "U2 done"]
    assert not [h for h in store.history(ids[1]) if h["event"] == "timer_fired"]
    assert [m.subject for m in store.messages() if m.instance_id == ids[1]] == ["Welcome U1"]
    rows = job_rows(store)
    assert {(r.kind, r.status) for r in rows.values()} == {("deliver", "ready")}
    assert len(rows) == 5  # three welcome emails, two second ones
    assert store.incidents() == []
    assert worker.run_once() == 0


# ---- failing steps --------------------------------------------------------------------------


def test_a_failing_step_is_retried_with_backoff_then_fails_and_can_be_retried(
    store: SqlStore,
    clock: Clock,
    workers: Callable[..., Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = start_users(store, 3)
    worker = workers(max_attempts=3, backoff_s=2.0)  # no SMTP: the emails stay queued
    failing = {ids[1]}
    fail_for(monkeypatch, worker, failing)
    queue = JobQueue(store)

    clock.at(2)
    assert worker.run_once() == 3
    # group commit: the two other steps of the batch are kept
    assert states(store) == {
        ids[0]: ("ended", "positive"),
        ids[1]: ("running", None),
        ids[2]: ("ended", "positive"),
    }
    assert [name_of(store, f"u{i}") for i in range(3)] == ["U0 done", "U1", "U2 done"]
    (job_id,) = [r.id for r in job_rows(store).values() if r.kind == "timer"]
    row = job_rows(store)[job_id]
    assert (row.instance_id, row.status, row.locked_by, row.attempts) == (
        ids[1],
        "locked",
        None,
        1,
    )
    assert row.locked_until == T0 + timedelta(seconds=4)  # now + 2 s
    assert row.last_error == f"RuntimeError: boom in {ids[1]}"

    clock.at(3.9)
    assert worker.run_once() == 0  # backing off
    clock.at(4.5)
    assert worker.run_once() == 1  # second attempt fails: the wait doubles
    row = job_rows(store)[job_id]
    assert row.attempts == 2
    assert row.locked_until == T0 + timedelta(seconds=8.5)
    clock.at(8.4)
    assert worker.run_once() == 0
    assert store.incidents() == []
    clock.at(9)
    assert worker.run_once() == 1  # third and last attempt

    (failed,) = queue.failed()
    assert (failed.id, failed.kind, failed.instance_id) == (job_id, "timer", ids[1])
    assert (failed.status, failed.attempts) == ("failed", 3)
    assert failed.last_error == f"RuntimeError: boom in {ids[1]}"
    (incident,) = store.incidents()
    assert incident.instance_id == ids[1]
    assert f"job {job_id} failed 3 times" in incident.message
    assert "boom" in incident.message
    clock.at(86400)
    assert worker.run_once() == 0  # a failed job waits for a person
    assert states(store)[ids[1]] == ("running", None)

    with pytest.raises(NotFound):
        queue.retry("no-such-job")
    ready = next(r.id for r in job_rows(store).values() if r.kind == "deliver")
    with pytest.raises(NotFound):
        queue.retry(ready)  # only failed jobs are retried

    failing.clear()
    assert [i.instance_id for i in store.incidents(open_only=True)] == [ids[1]]
    queue.retry(job_id)
    assert store.incidents(open_only=True) == []  # the retry resolves the job's incident
    row = job_rows(store)[job_id]
    assert (row.status, row.attempts, row.locked_by) == ("ready", 0, None)
    assert worker.run_once() == 1
    assert states(store)[ids[1]] == ("ended", "positive")
    assert name_of(store, "u1") == "U1 done"
    assert queue.failed() == []
    (second,) = [m for m in store.messages() if m.subject == "Second U1 done"]
    assert second.created_at == T0 + timedelta(seconds=2)  # run at its due time, however late
    assert queue.pending() == {"ready": 6}  # only the six emails, no SMTP here


# ---- SMTP -------------------------------------------------------------------------------------


def test_a_refused_recipient_fails_the_email_for_good(
    store: SqlStore, clock: Clock, workers: Callable[..., Worker]
) -> None:
    ids = start_users(store, 2)
    with SmtpSink(reject_codes={"u1@example.com": "550 5.1.1 no such user"}) as sink:
        worker = workers(port=sink.port, max_attempts=3)
        assert worker.run_once() == 2
        rows = outbox_rows(store)
        ok, refused = (f"{iid}.m2" for iid in ids)
        assert rows[ok].status == "sent"
        assert (rows[refused].status, rows[refused].attempts) == ("failed", 1)
        assert "550" in rows[refused].last_error and "no such user" in rows[refused].last_error
        assert f"deliver:{refused}" not in job_rows(store)  # gone: no retry
        run_for(worker, clock, 30)
        worker.close()
        assert unsigned(sink.count_by_message_id()) == {
            f"<{m.id}@flowlane>": 1 for m in store.messages() if m.instance_id == ids[0]
        }
    assert states(store) == {iid: ("ended", "positive") for iid in ids}
    statuses = {m.id: m.status for m in store.messages()}
    assert statuses == {
        f"{ids[0]}.m2": "sent",
        f"{ids[0]}.m4": "sent",
        f"{ids[1]}.m2": "failed",
        f"{ids[1]}.m4": "failed",
    }
    assert {outbox_rows(store)[f"{ids[1]}.m4"].attempts} == {1}
    assert JobQueue(store).pending() == {}


def test_a_temporary_refusal_is_retried_until_the_server_accepts(
    store: SqlStore, clock: Clock, sink: SmtpSink, workers: Callable[..., Worker]
) -> None:
    (iid,) = start_users(store, 1)
    sink.reject_codes["u0@example.com"] = "451 4.3.0 try later"
    worker = workers(port=sink.port, max_attempts=5, backoff_s=2.0)
    queue = JobQueue(store)
    job_id = f"deliver:{iid}.m2"

    assert worker.run_once() == 1
    row = job_rows(store)[job_id]
    assert (row.status, row.locked_by, row.attempts) == ("locked", None, 1)
    assert row.locked_until == T0 + timedelta(seconds=2)
    assert "451" in row.last_error and "try later" in row.last_error
    assert outbox_rows(store)[f"{iid}.m2"].status == "queued"
    early = T0 + timedelta(seconds=1.9)
    assert queue.claim(early, "probe", lease_s=5, limit=9, kinds=ALL_KINDS) == []

    clock.at(2.5)
    assert drain(worker) == 3  # the retry (refused again), the timer, the second email
    row = job_rows(store)[job_id]
    assert row.attempts == 2
    assert row.locked_until == T0 + timedelta(seconds=6.5)  # 2.5 s + 4 s
    assert sink.messages == []

    sink.reject_codes.clear()  # the server takes mail again
    run_for(worker, clock, 10)
    assert sink.wait_for(2, timeout=2)
    assert unsigned(sink.count_by_message_id()) == {
        f"<{iid}.m2@flowlane>": 1,
        f"<{iid}.m4@flowlane>": 1,
    }
    assert {m.status for m in store.messages()} == {"sent"}
    assert queue.pending() == {}
    assert states(store) == {iid: ("ended", "positive")}


def test_temporary_refusals_fail_the_email_after_max_attempts(
    store: SqlStore, clock: Clock, sink: SmtpSink, workers: Callable[..., Worker]
) -> None:
    (iid,) = start_users(store, 1)
    sink.reject_codes["u0@example.com"] = "451 4.3.0 try later"
    worker = workers(port=sink.port, max_attempts=3, backoff_s=2.0)
    queue = JobQueue(store)
    run_for(worker, clock, 60)

    assert sink.messages == []
    assert states(store) == {iid: ("ended", "positive")}
    rows = outbox_rows(store)
    assert {r.status for r in rows.values()} == {"failed"}
    assert all("451" in r.last_error for r in rows.values())
    failed = queue.failed()
    assert {j.id for j in failed} == {f"deliver:{iid}.m2", f"deliver:{iid}.m4"}
    assert {(j.kind, j.attempts) for j in failed} == {("deliver", 3)}
    assert queue.pending() == {"failed": 2}

    # a person retries once the server is fixed: the email goes out after all
    sink.reject_codes.clear()
    queue.retry(f"deliver:{iid}.m2")
    assert drain(worker) == 1
    assert unsigned(sink.count_by_message_id()) == {f"<{iid}.m2@flowlane>": 1}
    assert {m.id: m.status for m in store.messages()} == {
        f"{iid}.m2": "sent",
        f"{iid}.m4": "failed",
    }
    assert queue.pending() == {"failed": 1}


def test_a_late_temporary_failure_does_not_undo_another_workers_delivery(
    store: SqlStore,
    clock: Clock,
    sink: SmtpSink,
    workers: Callable[..., Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A's send hangs past its lease, B sends the email, then A's send fails: still sent."""
    (iid,) = start_users(store, 1)
    a = workers("A", port=sink.port, lease_s=10, max_attempts=1)
    b = workers("B", port=sink.port, lease_s=10, max_attempts=1)
    assert a.sender is not None

    def hanging_send(_msg: Any) -> None:
        clock.at(11)
        assert b.run_once() == 2  # A's delivery (lease passed) and the due timer
        raise TemporaryDeliveryError("SMTP 127.0.0.1: timed out")

    monkeypatch.setattr(a.sender, "send", hanging_send)
    assert a.run_once() == 1
    assert unsigned(sink.count_by_message_id()) == {f"<{iid}.m2@flowlane>": 1}
    row = outbox_rows(store)[f"{iid}.m2"]
    assert (row.status, row.last_error) == ("sent", None)
    assert JobQueue(store).failed() == []
    assert store.incidents() == []


def test_a_worker_without_smtp_leaves_deliveries_alone(
    store: SqlStore, clock: Clock, sink: SmtpSink, workers: Callable[..., Worker]
) -> None:
    ids = start_users(store, 3)
    worker = workers("no-mail")
    assert worker.run_once() == 0  # the emails are due, the timers not yet
    clock.at(2)
    assert drain(worker) == 3  # the timers only
    assert states(store) == {iid: ("ended", "positive") for iid in ids}
    clock.at(86400)
    assert worker.run_once() == 0
    rows = job_rows(store)
    assert len(rows) == 6
    assert {(r.kind, r.status, r.attempts, r.locked_by) for r in rows.values()} == {
        ("deliver", "ready", 0, None)
    }
    assert {m.status for m in store.messages()} == {"queued"}
    mailer = workers("mailer", port=sink.port)
    assert drain(mailer) == 6
    assert sink.wait_for(6, timeout=2)
    assert {m.status for m in store.messages()} == {"sent"}


# ---- concurrent claims (PostgreSQL) --------------------------------------------------------


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_concurrent_claims_take_disjoint_jobs(recipe: Recipe, db_url: str, store: SqlStore) -> None:
    start_users(store, 5)
    now = T0 + timedelta(seconds=3)  # five emails and five timers are due
    store2 = open_durable(recipe, db_url)
    try:
        with ThreadPoolExecutor(1) as pool, store.transaction():
            first = JobQueue(store).claim(now, "one", lease_s=30, limit=4, kinds=ALL_KINDS)
            # the first transaction holds its rows locked; the second must skip, not wait
            second = pool.submit(
                JobQueue(store2).claim, now, "two", lease_s=30, limit=100, kinds=ALL_KINDS
            ).result(timeout=10)
        third = JobQueue(store2).claim(now, "three", lease_s=30, limit=100, kinds=ALL_KINDS)
    finally:
        store2.close()
    ids1, ids2 = {j.id for j in first}, {j.id for j in second}
    assert len(first) == 4 and len(second) == 6
    assert not ids1 & ids2
    assert third == []
    rows = job_rows(store)
    assert ids1 | ids2 == set(rows)
    assert {r.id: r.locked_by for r in rows.values()} == {
        **{i: "one" for i in ids1},
        **{i: "two" for i in ids2},
    }
    assert {r.attempts for r in rows.values()} == {1}


# ---- the command line -----------------------------------------------------------------------


def test_jobs_list_and_retry_on_the_command_line(
    recipe: Recipe, db_url: str, store: SqlStore
) -> None:
    (iid,) = start_users(store, 1)
    queue = JobQueue(store)
    (job,) = queue.claim(T0 + timedelta(seconds=2), "w1", lease_s=30, limit=9, kinds=TIMER_KINDS)
    with store.transaction():
        queue.fail(job, "w1", "RuntimeError: boom", retry_at=None)
    cli = CliRunner()
    folder = str(recipe.root)

    listed = cli.invoke(app, ["jobs", "list", folder, "--db", db_url])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert "failed: 1" in lines and "ready: 1" in lines
    assert f"failed {job.id} (timer, 1 attempts): RuntimeError: boom" in lines

    retried = cli.invoke(app, ["jobs", "retry", job.id, folder, "--db", db_url])
    assert retried.exit_code == 0, retried.output
    assert f"job {job.id} is ready again" in retried.output
    assert queue.pending() == {"ready": 2}
    listed = cli.invoke(app, ["jobs", "list", folder, "--db", db_url])
    assert listed.output.splitlines() == ["ready: 2"]

    for unknown in ("no-such-job", job.id):  # never existed; not failed any more
        refused = cli.invoke(app, ["jobs", "retry", unknown, folder, "--db", db_url])
        assert refused.exit_code == 1
        assert "error:" in refused.output and unknown in refused.output
    assert states(store) == {iid: ("running", None)}


# ---- stopping --------------------------------------------------------------------------------


def test_a_stopping_worker_finishes_the_step_under_way_and_gives_back_the_rest(
    store: SqlStore, clock: Clock, workers: Callable[..., Worker], sink: SmtpSink
) -> None:
    """SIGTERM sets ``stopping``: the current step commits, the other claimed jobs are
    released at once (ready, the claim not counted as an attempt) for another worker."""
    start_users(store, 3)
    worker = workers(port=sink.port)
    assert drain(worker) == 3  # the welcome emails
    clock.at(3)
    fire = worker.account.runner.fire

    def fire_then_stop(timer: TimerRecord) -> None:
        fire(timer)
        worker.stopping = True

    worker.account.runner.fire = fire_then_stop  # type: ignore[method-assign]
    assert worker.run_once() == 3
    ended = [s for s in store.instances_of("drip") if s.status == "ended"]
    assert len(ended) == 1
    rows = job_rows(store)
    timers = [r for r in rows.values() if r.kind == "timer"]
    assert sorted((r.status, r.attempts, r.locked_by) for r in timers) == [
        ("ready", 0, None),
        ("ready", 0, None),
    ]
    # The email the finished step queued waits, unclaimed, for the next worker.
    (mail,) = [r for r in rows.values() if r.kind == "deliver"]
    assert (mail.status, mail.attempts) == ("ready", 0)

    other = workers("w2", port=sink.port)
    assert drain(other) == 2 + 3  # the two timers, then three second emails
    assert {s.status for s in store.instances_of("drip")} == {"ended"}
    assert sink.wait_for(6, timeout=5)
    assert sorted(sink.count_by_message_id().values()) == [1] * 6


def test_a_job_that_keeps_killing_its_worker_fails_instead_of_being_claimed_for_ever(
    store: SqlStore, clock: Clock, workers: Callable[..., Worker]
) -> None:
    """Fifteen claims of a job with no outcome (its workers died running it; here the
    count is set directly) and the next claim fails it with an incident, untouched."""
    (iid,) = start_users(store, 1)
    (timer,) = [r for r in job_rows(store).values() if r.kind == "timer"]
    with store.engine.begin() as c:
        c.execute(t.jobs.update().where(t.jobs.c.id == timer.id).values(attempts=15))
    worker = workers(max_attempts=5)
    clock.at(3)
    worker.run_once()
    row = job_rows(store)[timer.id]
    assert (row.status, row.attempts) == ("failed", 16)
    assert "without an outcome" in row.last_error
    (incident,) = store.incidents(open_only=True)
    assert incident.instance_id == iid and "kills its worker" in incident.message
    assert states(store)[iid] == ("running", None)
