"""Crash tests: worker processes killed with SIGKILL, at random moments and at named points.

1,000 instances each send an email, wait 1 s, change their object and send a second email.
Workers run as real processes (``python -m flowlane worker``) against SQLite or PostgreSQL
and a real SMTP server on loopback (aiosmtpd) that counts messages by Message-ID. After the
kills, a last worker finishes the work; then every instance must have ended exactly as an
undisturbed run ends (its object changed once, not twice), every email must have arrived,
a Message-ID twice at most once per kill (a kill between the server's acceptance and the
commit), and every timer must have fired exactly once.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.pg import ThrowawayCluster, fresh_database
from tests.smtp_sink import SmtpSink
from tests.support import start_users, write_recipe

from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable
from flowlane.store.sql import JobQueue, SqlStore
from flowlane.store.sql import tables as t

pytestmark = pytest.mark.slow

DRIP = """\
key: drip
name: drip emails
object: user
blocks:
  start: {type: start, next: hello}
  hello: {type: message, to: "=object.id", subject: "Welcome {{ object.name }}", body: "Hi",
          next: pause}
  pause: {type: delay, for: 1s, next: mark}
  mark: {type: operation, set: {name: "=object.name + ' done'"}, next: again}
  again: {type: message, to: "=object.id", subject: "Second {{ object.name }}",
          body: "Again", next: done}
  done: {type: end, outcome: positive}
"""

WORKER_ARGS = ["--lease", "1", "--poll", "0.05", "--batch", "50", "--backoff", "0.2"]


def unsigned(counts: Mapping[str, int]) -> dict[str, int]:
    """Message-ID counts with the Message-IDs' signatures taken out: ``<i1.m2@flowlane>``."""
    return {re.sub(r"\.[A-Za-z0-9_-]{16}@", "@", mid): n for mid, n in counts.items()}


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    return write_recipe(tmp_path / "recipe", {"drip": DRIP})


@dataclass
class Run:
    recipe: Path
    url: str
    sink: SmtpSink
    count: int

    def env(self, fault: str | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(FLOWLANE_SMTP_HOST="127.0.0.1", FLOWLANE_SMTP_PORT=str(self.sink.port))
        env.pop("FLOWLANE_FAULT", None)
        if fault:
            env["FLOWLANE_FAULT"] = fault
        return env

    def worker(self, name: str, fault: str | None = None) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "flowlane", "worker", str(self.recipe), "--db", self.url]
        return subprocess.Popen(
            [*cmd, "--name", name, *WORKER_ARGS],
            env=self.env(fault),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )


def _setup(recipe: Path, url: str, count: int) -> None:
    """Deploy and start ``count`` instances (their first step runs at once)."""
    loaded = load_valid_recipe(recipe)
    store = open_durable(loaded, url)
    try:
        deploy(loaded, store)
        start_users(store, count, datetime.now(UTC))
    finally:
        store.close()


def _open(run: Run) -> SqlStore:
    return open_durable(load_valid_recipe(run.recipe), run.url)


def _done(run: Run) -> bool:
    store = _open(run)
    try:
        with store.engine.connect() as c:
            running = c.execute(
                select(func.count()).select_from(t.instances).where(t.instances.c.status != "ended")
            ).scalar_one()
            unsent = c.execute(
                select(func.count()).select_from(t.outbox).where(t.outbox.c.status != "sent")
            ).scalar_one()
        return running == 0 and unsent == 0
    finally:
        store.close()


def _finish(run: Run, workers: int = 1, timeout: float = 90.0) -> None:
    procs = [run.worker(f"final-{i}") for i in range(workers)]
    try:
        deadline = time.monotonic() + timeout
        while not _done(run):
            assert time.monotonic() < deadline, "the workers did not finish in time"
            for p in procs:
                assert p.poll() is None, p.stderr.read().decode() if p.stderr else p.returncode
            time.sleep(0.2)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(timeout=30) == 0, p.stderr.read().decode() if p.stderr else ""
            if p.stderr:
                p.stderr.close()


def _check(run: Run, max_duplicates: int) -> Counter[str]:
    """Everything ended as undisturbed; returns the Message-ID counts."""
    expected_ids = {f"<i{i + 1}.m{j}@flowlane>" for i in range(run.count) for j in (2, 4)}
    assert run.sink.wait_for(len(expected_ids), timeout=10)
    counts = Counter(unsigned(run.sink.count_by_message_id()))
    assert set(counts) == expected_ids
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= max_duplicates, [m for m, n in counts.items() if n > 1]
    store = _open(run)
    try:
        states = store.instances_of("drip")
        assert len(states) == run.count
        assert {(s.status, s.outcome) for s in states} == {("ended", "positive")}
        for i in range(run.count):
            rec = store.get_object(f"u{i}")
            assert rec is not None and rec.data["name"] == f"U{i} done"
        fired = Counter(
            line["instance"] for line in store.history() if line["event"] == "timer_fired"
        )
        assert fired == Counter({s.id: 1 for s in states})
        assert JobQueue(store).pending() == {}
        assert {m.status for m in store.messages()} == {"sent"}
    finally:
        store.close()
    return counts


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    if proc.stderr:
        proc.stderr.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'faults.db'}"
    else:
        yield request.getfixturevalue("pg_database")


def test_random_kills_lose_nothing_and_do_nothing_twice(recipe: Path, db_url: str) -> None:
    """1,000 instances; a worker (two on PostgreSQL) killed with SIGKILL six times."""
    count = 1000
    _setup(recipe, db_url, count)
    workers = 2 if db_url.startswith("postgresql") else 1
    rng = random.Random(20261123)
    kills = 0
    with SmtpSink() as sink:
        run = Run(recipe, db_url, sink, count)
        procs = [run.worker(f"w{i}") for i in range(workers)]
        try:
            # Kill only once work is under way: a worker takes a second or two to start on a
            # busy machine, and kills before that would test nothing.
            deadline = time.monotonic() + 60
            while not sink.messages and time.monotonic() < deadline:
                time.sleep(0.05)
            for round_ in range(6):
                time.sleep(rng.uniform(0.3, 1.2))
                victim = rng.randrange(workers)
                _stop(procs[victim])
                kills += 1
                procs[victim] = run.worker(f"w{victim}-{round_}")
        finally:
            for p in procs:
                _stop(p)
            kills += len(procs)
        # The kills fell while work was going on: some mail went out, some is still to go.
        assert 0 < len(sink.messages) < 2 * count
        _finish(run, workers)
        counts = _check(run, max_duplicates=kills)
    assert sum(counts.values()) >= 2 * count


@pytest.mark.parametrize(
    ("fault", "duplicated"),
    [("after_claim", 0), ("before_commit", 0), ("after_send:3", 1), ("after_send:25", 1)],
)
def test_a_crash_at_a_named_point(recipe: Path, db_url: str, fault: str, duplicated: int) -> None:
    """Only a crash after the SMTP server accepted a message sends it again, once."""
    count = 20
    _setup(recipe, db_url, count)
    with SmtpSink() as sink:
        run = Run(recipe, db_url, sink, count)
        proc = run.worker("doomed", fault)
        try:
            assert proc.wait(timeout=60) == -signal.SIGKILL
        finally:
            _stop(proc)
        _finish(run)
        counts = _check(run, max_duplicates=duplicated)
    assert sum(n - 1 for n in counts.values()) == duplicated


def test_workers_reconnect_after_postgresql_restarts(recipe: Path) -> None:
    """A throwaway cluster (never the shared server) restarts while a worker runs."""
    why = ThrowawayCluster.available()
    if why is not None:
        pytest.skip(why)
    with ThrowawayCluster() as cluster, fresh_database(cluster.admin_url) as url:
        count = 300
        _setup(recipe, url, count)
        with SmtpSink() as sink:
            run = Run(recipe, url, sink, count)
            proc = run.worker("survivor")
            try:
                # Restart while it works: once it has sent its first email (a loaded machine
                # may take seconds to start the process and install its signal handlers).
                assert sink.wait_for(1, timeout=60), "the worker never started sending"
                cluster.restart()
                time.sleep(0.5)
                cluster.restart()
                if proc.poll() is not None:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"the worker died with the database: {err[-3000:]}")
            finally:
                proc.send_signal(signal.SIGTERM)
                code = proc.wait(timeout=30)
                if proc.stderr:
                    proc.stderr.close()
            assert code == 0
            _finish(run)
            _check(run, max_duplicates=2)
