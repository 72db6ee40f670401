"""Durable benchmark: W1–W3 through the SQL store, and a million scheduled timers.

Run with ``make bench`` (or ``.venv/bin/python bench/durable.py [--quick] [--only sqlite]
[--timers N]``). The flows are W1–W3 of ``bench/flows.py`` plus a delay flow (start → delay
1 h → end); they are written as a recipe folder into a temp dir and deployed with
:func:`flowlane.runtime.durable.deploy`. PostgreSQL is the shared server of ``tests/pg.py``
(``127.0.0.1:5432``), a fresh database per run; when it does not answer, its rows are
skipped and the reason printed. SQLite is a fresh file per run in the temp dir.

Throughput (W1, W2, W3; SQLite and PostgreSQL; 1 and 2 workers)
    Each worker is a process of its own (``multiprocessing``, 'spawn'), opening the store
    with :func:`~flowlane.runtime.durable.open_durable` as ``flowlane worker`` does. It starts
    instances in batches of B (``--batch``, default 500) per transaction (group commit:
    ``with store.transaction(): for …: account.start(…)``), one new ``order`` object per
    instance, the objects created beforehand, outside the timing. Each batch first reads its
    objects (locked on PostgreSQL) in one query with ``SqlStore.prefetch``, as
    ``Account.mass_start`` and the workers' batches do. W3 starts a batch (each
    instance stops at its question) in one transaction, then answers the batch's open tasks
    (``find_tasks`` by instance, ``account.answer(task, option="yes")``) in another: a W3
    instance counts once answered and ended. After a warm-up batch, the workers run
    ``rounds`` timed rounds, released together by a barrier and sized from the warm-up rate
    so that a run takes about ``--seconds``; a round's rate is all instances of the round
    divided by the wall time of the slowest worker, and the table shows the median round.
    Afterwards every instance in the database is checked (status ``ended``, outcome
    ``positive``, W2's three counters set, no open task left): only correct runs count. Two
    workers on one SQLite file share its single writer (``BEGIN IMMEDIATE``): no speedup is
    to be expected there, and none is claimed.

Timers (``--timers N``, default 1,000,000, of which 1 % fall due at the same moment T)
    The engine runs once, for a template instance of the delay flow started at T − 1 h: its
    instance row (state JSON) and its timer job row (due T, id ``<instance>.j<n>``) are then
    cloned N times with new ids (the instance id replaced in the state, the job id and the
    row ids) and increasing ``seq``, straight into ``instances`` and ``jobs``: chunked
    ``executemany`` on SQLite, ``COPY`` on PostgreSQL (followed by ``ANALYZE``, which
    autovacuum would soon do too). Every 100th clone is due at T, the others 30 days and more
    later. The engine is not run a million times.

    A :class:`~flowlane.runtime.worker.Worker` with default settings (batch 200, poll 0.2 s)
    then runs in a child process. Its clock is the real wall clock shifted so that it reads
    T two seconds after the child is ready: time passes at the real rate and the worker
    polls (idle claims against all N waiting jobs) before T, so "late" is real lateness,
    poll interval included. Measured: how late the first timer fires (the wall time of the
    first claim that returned jobs, and of its commit, minus T), the firing rate (due timers
    / time from that first claim to the last commit), and the worker's peak RSS (``VmHWM``
    of ``/proc/self/status``). The same run with ``N / 100`` waiting instances besides the
    due ones (10,000 for the default) gives the RSS to compare with: "independent of the
    number of waiting instances" is met when the peak with N waiting is at most 10 % (or
    10 MB, whichever is more) above it. Afterwards the due instances must have ended and
    every other one still wait on its timer.

Goals (on this 2-core machine): ≥ 10,000 W1 instances/s on SQLite (1 worker), ≥ 5,000/s on
PostgreSQL with 2 workers; a due timer fires ≤ 1 s late (its step committed) with N
scheduled; worker RSS independent of the number of waiting instances. The other rows are
reported without a goal. ``--quick`` is a smoke run: short rounds, 20,000 timers.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import queue
import sqlite3
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text

import flows
import report
from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable
from flowlane.runtime.worker import Worker, WorkerSettings
from flowlane.services.account import Account
from flowlane.store.sql import make_engine, open_store
from flowlane.store.sql import tables as t

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for tests.pg, as pytest's pythonpath = ["."] does
from tests.pg import (  # noqa: E402
    SHARED_ADMIN_URL,
    libpq_url,
    shared_server_available,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
T_DUE = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
"""The moment the due timers fall due (the workers' shifted clock reaches it 2 s after start)."""

DELAY_FLOW = """
key: delay
name: wait an hour
object: order
blocks:
  start: {type: start, next: pause}
  pause: {type: delay, for: 1h, next: done}
  done: {type: end, outcome: positive}
"""

FLOWS = {"w1": flows.FLOWLANE_W1, "w2": flows.FLOWLANE_W2, "w3": flows.FLOWLANE_W3}
WORKLOADS = ("W1", "W2", "W3")
BACKENDS = ("sqlite", "postgresql")
W1_GOALS = {("sqlite", 1): 10_000.0, ("postgresql", 2): 5_000.0}
LATE_GOAL_S = 1.0
TIMEOUT_S = 900.0
"""Upper bound for any one wait on a child process."""


class BenchError(RuntimeError):
    """A run went wrong (a child failed, or instances did not end as the flow says)."""


def check(ok: bool, what: str) -> None:
    if not ok:
        raise BenchError(what)


@dataclass(frozen=True)
class Settings:
    quick: bool
    batch: int
    rounds: int
    seconds: float
    warm: int
    timers: int
    due: int


# ---- recipe and databases --------------------------------------------------------------


def write_recipe(root: Path) -> Path:
    """The bench recipe: W1–W3 and the delay flow, no objects.yaml (built-in types)."""
    recipe = root / "recipe"
    (recipe / "processes").mkdir(parents=True)
    (recipe / "templates").mkdir()
    (recipe / "recipe.yaml").write_text("key: bench\nname: flowlane durable benchmark\n")
    for key, source in {**FLOWS, "delay": DELAY_FLOW}.items():
        (recipe / "processes" / f"{key}.yaml").write_text(source.lstrip())
    load_valid_recipe(recipe)  # refuse early, with every error
    return recipe


def prepare(recipe_dir: Path, url: str) -> None:
    """Create the schema, deploy the recipe, and add the user W3's question goes to."""
    recipe = load_valid_recipe(recipe_dir)
    assert recipe.schema is not None
    store = open_store(url, recipe.schema, reset=True)
    try:
        deploy(recipe, store)
        account = Account(store, NOW)
        with store.transaction():
            account.create_object(
                "user", {"name": "Boris", "role": "manager"}, object_id="boris", launches=False
            )
    finally:
        store.close()


# ---- child processes ---------------------------------------------------------------------


def rss_kib(field: str = "VmRSS") -> int:
    """``VmRSS`` (or ``VmHWM``, the peak) of this process in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child_main(target: Callable[..., None], results: Any, tag: int, args: tuple[Any, ...]) -> None:
    """Run ``target`` in a child; any failure goes back to the parent as text."""
    try:
        target(*args)
    except BaseException:
        results.put(("error", tag, traceback.format_exc()))


def receive(results: Any, what: str, procs: list[Any]) -> tuple[Any, ...]:
    """The next message of the children; a child that died or failed is an error."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            msg = results.get(timeout=0.5)
            break
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise BenchError(f"a child process died ({what}): exit code {dead[0]}") from None
            if time.monotonic() > deadline:
                raise BenchError(f"no answer from the children ({what})") from None
    if msg[0] == "error":
        raise BenchError(f"child {msg[1]} failed ({what}):\n{msg[2]}")
    return tuple(msg)


# ---- throughput: the worker side ---------------------------------------------------------


class Starter:
    """One worker process's side of W1–W3: objects made ahead, instances started in batches."""

    def __init__(self, recipe_dir: str, url: str, tag: int, batch: int) -> None:
        self.store = open_durable(load_valid_recipe(recipe_dir), url)
        self.account = Account(self.store, NOW)
        self.tag, self.batch, self.made = tag, batch, 0

    def objects(self, n: int) -> list[str]:
        ids = [f"k{self.tag}-o{self.made + i}" for i in range(n)]
        self.made += n
        for lo in range(0, n, 1000):
            with self.store.transaction():
                for oid in ids[lo : lo + 1000]:
                    self.account.create_object(
                        "order", {"number": oid, "status": "new"}, object_id=oid, launches=False
                    )
        return ids

    def run(self, workload: str, object_ids: list[str]) -> None:
        key = workload.lower()
        account, store = self.account, self.store
        for lo in range(0, len(object_ids), self.batch):
            chunk = object_ids[lo : lo + self.batch]
            with store.transaction():
                store.prefetch(object_ids=chunk, lock_objects=True)  # as a mass start does
                started = [account.start(key, oid) for oid in chunk]
            if key != "w3":
                continue
            with store.transaction():
                store.prefetch(instance_ids=started)
                tasks = store.find_tasks(open_only=True, instance_ids=set(started))
                check(len(tasks) == len(chunk), f"W3: {len(tasks)} open tasks for {len(chunk)}")
                for task in tasks:
                    account.answer(task, option="yes", fields={}, by=None)


def starter_process(
    recipe_dir: str,
    url: str,
    tag: int,
    batch: int,
    workload: str,
    barrier: Barrier,
    commands: Any,
    results: Any,
) -> None:
    """Per command ``n``: make n objects, wait at the barrier, start n instances, report."""
    starter = Starter(recipe_dir, url, tag, batch)
    try:
        while (n := commands.get(timeout=TIMEOUT_S)) is not None:
            ids = starter.objects(n)
            barrier.wait(timeout=TIMEOUT_S)
            t0 = time.perf_counter()
            starter.run(workload, ids)
            results.put(("done", tag, time.perf_counter() - t0))
    finally:
        starter.store.close()


# ---- throughput: the parent side ---------------------------------------------------------


@dataclass
class Throughput:
    workload: str
    backend: str
    workers: int
    rounds: list[float]  # instances/s of each round
    per_round: int  # instances per round, all workers together

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)


class Pool:
    """K starter processes on one database, driven round by round."""

    def __init__(self, ctx: Any, recipe_dir: Path, url: str, k: int, s: Settings, w: str):
        self.k = k
        self.results = ctx.Queue()
        self.commands = [ctx.Queue() for _ in range(k)]
        self.barrier = ctx.Barrier(k)  # kept: the children unpickle it after start()
        self.procs = [
            ctx.Process(
                target=child_main,
                args=(
                    starter_process,
                    self.results,
                    i,
                    (
                        str(recipe_dir),
                        url,
                        i,
                        s.batch,
                        w,
                        self.barrier,
                        self.commands[i],
                        self.results,
                    ),
                ),
                daemon=True,
            )
            for i in range(k)
        ]
        for p in self.procs:
            p.start()

    def round(self, n: int) -> float:
        """Each worker starts ``n`` instances; the wall time of the slowest, in seconds."""
        for q in self.commands:
            q.put(n)
        return max(float(receive(self.results, "round", self.procs)[2]) for _ in range(self.k))

    def close(self) -> None:
        for q in self.commands:
            q.put(None)
        for p in self.procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join()


def throughput(
    ctx: Any, recipe_dir: Path, backend: str, workload: str, k: int, s: Settings, tmp: Path
) -> Throughput:
    with report.database(backend, tmp, f"{workload}-{k}") as url:
        prepare(recipe_dir, url)
        pool = Pool(ctx, recipe_dir, url, k, s, workload)
        try:
            warm_s = pool.round(s.warm)
            estimate = k * s.warm / warm_s
            n = round(estimate * s.seconds / s.rounds / k)
            n = max(min(n, 100 * s.batch), 50)
            rates = [k * n / pool.round(n) for _ in range(s.rounds)]
        finally:
            pool.close()
        verify_instances(url, workload.lower(), k * (s.warm + s.rounds * n))
    return Throughput(workload, backend, k, rates, k * n)


def verify_instances(url: str, key: str, expected: int) -> None:
    """Every instance of ``key`` ended as the flow says; no task left open."""
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            rows = c.execute(
                select(t.instances.c.status, t.instances.c.state).where(
                    t.instances.c.process == key
                )
            ).all()
            still_open = c.execute(
                select(func.count()).select_from(t.tasks).where(t.tasks.c.closed.is_(False))
            ).scalar_one()
    finally:
        engine.dispose()
    check(len(rows) == expected, f"{key}: {len(rows)} instances stored, {expected} started")
    ended = [r.state for r in rows if r.status == "ended"]
    check(len(ended) == expected, f"{key}: {expected - len(ended)} instances did not end")
    if key == "w2":
        good = sum(1 for s in ended if s.get("c") == {"a": 1, "b": 1, "c": 1})
    else:
        good = sum(1 for s in ended if s.get("oc") == "positive")
    check(good == expected, f"{key}: {expected - good} instances ended wrongly")
    check(still_open == 0, f"{key}: {still_open} tasks left open")


# ---- timers: bulk scheduling -------------------------------------------------------------

SQLITE_TS = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a UTC timestamp in SQLite
INSTANCE_COLS = ("id", "process", "version", "object_id", "status", "state", "updated_at", "seq")
JOB_COLS = ("id", "kind", "instance_id", "payload", "due_at", "seq", "status", "attempts")


@dataclass
class Template:
    """The rows the engine wrote for one waiting instance of the delay flow."""

    instance_id: str
    job_id: str
    process: str
    version: int
    object_id: str
    state_parts: list[str]  # the state's JSON text split where the instance id goes
    updated_at: datetime
    job_kind: str
    payload: str
    due_at: datetime
    seq: int

    def state(self, iid: str) -> str:
        return iid.join(self.state_parts)

    def job(self, iid: str) -> str:
        return iid + self.job_id[len(self.instance_id) :]


def make_template(recipe_dir: Path, url: str) -> Template:
    """Run the engine once: a delay instance started at T − 1 h, waiting on a timer due T."""
    recipe = load_valid_recipe(recipe_dir)
    assert recipe.schema is not None
    store = open_store(url, recipe.schema)
    try:
        account = Account(store, T_DUE - timedelta(hours=1))
        with store.transaction():
            account.create_object("order", {"number": "T-1", "status": "new"}, object_id="o1")
            iid = account.start("delay", "o1")
        with store.engine.begin() as c:
            inst = c.execute(select(t.instances).where(t.instances.c.id == iid)).one()
            job = c.execute(select(t.jobs).where(t.jobs.c.instance_id == iid)).one()
            for table in (t.jobs, t.history):
                c.execute(table.delete().where(table.c.instance_id == iid))
            c.execute(t.instances.delete().where(t.instances.c.id == iid))
            top = c.execute(select(func.max(t.jobs.c.seq))).scalar_one() or 0
    finally:
        store.close()
    check(job.kind == "timer" and job.due_at == T_DUE, f"template timer: {job}")
    check(job.id.startswith(iid + "."), f"timer id {job.id} does not derive from {iid}")
    state_text = json.dumps(inst.state, separators=(",", ":"))
    marked = state_text.replace(f'"{iid}"', '"\0"').replace(f'"{iid}.', '"\0.')
    parts = marked.split("\0")
    check(len(parts) == 3, f"instance id {iid} not found twice in {state_text}")
    check(not any(ch in state_text for ch in "\\\t\n\r"), "state needs COPY escaping")
    tpl = Template(
        iid,
        job.id,
        inst.process,
        inst.version,
        inst.object_id,
        parts,
        inst.updated_at,
        job.kind,
        json.dumps(job.payload or {}),
        job.due_at,
        max(int(inst.seq), int(job.seq), int(top)) + 1,
    )
    probe = json.loads(tpl.state("x1"))
    check(probe["id"] == "x1" and tpl.job("x1") in tpl.state("x1"), f"clone state: {probe}")
    return tpl


def clone_rows(
    tpl: Template, total: int, due: int, lo: int, hi: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows ``lo``..``hi`` of the clones: every (total // due)-th is due at T."""
    step = max(total // due, 1)
    far = T_DUE + timedelta(days=30)
    inst, jobs = [], []
    for n in range(lo, hi):
        iid = f"x{n}"
        seq = tpl.seq + 2 * n
        extra = (tpl.updated_at, seq)
        due_at = tpl.due_at if n % step == 0 and n // step < due else far + timedelta(seconds=n)
        inst.append(
            (iid, tpl.process, tpl.version, tpl.object_id, "running", tpl.state(iid), *extra)
        )
        jobs.append((tpl.job(iid), tpl.job_kind, iid, tpl.payload, due_at, seq + 1, "ready", 0))
    return inst, jobs


CHUNK = 20_000


def schedule_sqlite(url: str, tpl: Template, total: int, due: int) -> None:
    path = url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        ins_i = f"INSERT INTO instances ({', '.join(INSTANCE_COLS)}) VALUES ({', '.join('?' * 8)})"
        ins_j = f"INSERT INTO jobs ({', '.join(JOB_COLS)}) VALUES ({', '.join('?' * 8)})"
        for lo in range(0, total, CHUNK):
            inst, jobs = clone_rows(tpl, total, due, lo, min(lo + CHUNK, total))
            conn.executemany(ins_i, [(*r[:6], r[6].strftime(SQLITE_TS), r[7]) for r in inst])
            conn.executemany(ins_j, [(*r[:4], r[4].strftime(SQLITE_TS), *r[5:]) for r in jobs])
        top = tpl.seq + 2 * total + 1
        conn.execute("UPDATE sequences SET value = ? WHERE name = 'seq'", (top,))
        conn.execute("COMMIT")
    finally:
        conn.close()


def _copy_line(row: tuple[Any, ...]) -> str:
    return "\t".join(v.isoformat() if isinstance(v, datetime) else str(v) for v in row) + "\n"


def schedule_postgresql(url: str, tpl: Template, total: int, due: int) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            for table, cols, pick in (
                ("instances", INSTANCE_COLS, 0),
                ("jobs", JOB_COLS, 1),
            ):
                with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                    for lo in range(0, total, CHUNK):
                        rows = clone_rows(tpl, total, due, lo, min(lo + CHUNK, total))[pick]
                        copy.write("".join(_copy_line(r) for r in rows))
            cur.execute("SELECT setval('flowlane_seq', %s)", (tpl.seq + 2 * total + 1,))
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE instances")
        conn.execute("ANALYZE jobs")


# ---- timers: the worker ------------------------------------------------------------------


def timer_process(recipe_dir: str, url: str, due: int, commands: Any, results: Any) -> None:
    """Fire the due timers with a shifted wall clock; report lateness, timing and RSS."""
    store = open_durable(load_valid_recipe(recipe_dir), url)
    offset = [timedelta(0)]

    def clock() -> datetime:
        return datetime.now(UTC) + offset[0]

    settings = WorkerSettings()
    worker = Worker(store, "bench-timers", settings, clock=clock)
    try:
        results.put(("ready", 0, rss_kib()))
        t_wall = float(commands.get(timeout=TIMEOUT_S))
        offset[0] = T_DUE - datetime.fromtimestamp(t_wall, UTC)
        fired, first_claim, first_commit, last_commit = 0, 0.0, 0.0, 0.0
        idle: list[float] = []
        while fired < due:
            t0 = time.time()
            n = worker.run_once()
            t1 = time.time()
            if n:
                if not fired:
                    first_claim, first_commit = t0, t1
                fired += n
                last_commit = t1
                continue
            check(t1 < t_wall + TIMEOUT_S, f"only {fired} of {due} timers fired")
            idle.append(t1 - t0)
            time.sleep(settings.poll_s)
        results.put(
            (
                "fired",
                0,
                first_claim - t_wall,
                first_commit - t_wall,
                due / max(last_commit - first_claim, 1e-9),
                rss_kib("VmHWM"),
                statistics.median(idle) if idle else 0.0,
                fired,
            )
        )
    finally:
        worker.close()
        store.close()


@dataclass
class TimerRun:
    backend: str
    scheduled: int
    due: int
    schedule_s: float
    late_claim_s: float
    late_commit_s: float
    rate: float
    rss_ready_kib: int
    rss_peak_kib: int
    idle_claim_s: float


def timers(ctx: Any, recipe_dir: Path, backend: str, total: int, due: int, tmp: Path) -> TimerRun:
    with report.database(backend, tmp, f"timers-{total}") as url:
        prepare(recipe_dir, url)
        tpl = make_template(recipe_dir, url)
        t0 = time.perf_counter()
        (schedule_sqlite if backend == "sqlite" else schedule_postgresql)(url, tpl, total, due)
        schedule_s = time.perf_counter() - t0
        results, commands = ctx.Queue(), ctx.Queue()
        proc = ctx.Process(
            target=child_main,
            args=(timer_process, results, 0, (str(recipe_dir), url, due, commands, results)),
            daemon=True,
        )
        proc.start()
        try:
            ready = receive(results, "timer worker start", [proc])
            commands.put(time.time() + 2.0)
            msg = receive(results, "timers firing", [proc])
        finally:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        verify_timers(url, total, due)
    _, _, late_claim, late_commit, rate, peak, idle, fired = msg
    check(fired == due, f"{fired} timers fired, {due} were due")
    return TimerRun(
        backend, total, due, schedule_s, late_claim, late_commit, rate, ready[2], peak, idle
    )


def verify_timers(url: str, total: int, due: int) -> None:
    engine: Engine = make_engine(url)
    try:
        with engine.connect() as c:
            counts = dict(
                c.execute(
                    select(t.instances.c.status, func.count())
                    .where(t.instances.c.process == "delay")
                    .group_by(t.instances.c.status)
                ).all()
            )
            jobs = c.execute(text("SELECT count(*) FROM jobs WHERE kind = 'timer'")).scalar_one()
    finally:
        engine.dispose()
    want = {"ended": due, "running": total - due}
    check(counts == want, f"delay instances by status {counts}, expected {want}")
    check(jobs == total - due, f"{jobs} timer jobs left, expected {total - due}")


# ---- report ------------------------------------------------------------------------------


@dataclass
class Row:
    workload: str
    backend: str
    workers: str
    value: str
    goal: str
    met: str


def fmt_rate(r: float) -> str:
    return f"{r:,.0f}/s"


def mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


def throughput_row(r: Throughput) -> Row:
    goal = W1_GOALS.get((r.backend, r.workers)) if r.workload == "W1" else None
    if goal is None:
        return Row(r.workload, r.backend, str(r.workers), fmt_rate(r.median), "(report)", "—")
    met = "yes" if r.median >= goal else "NO"
    return Row(r.workload, r.backend, str(r.workers), fmt_rate(r.median), f"≥ {goal:,.0f}/s", met)


def timer_rows(big: TimerRun, small: TimerRun | None) -> list[Row]:
    b = big.backend
    rows = [
        Row(
            f"timer late ({big.scheduled:,} sched.)",
            b,
            "1",
            f"{big.late_commit_s:.2f} s",
            f"≤ {LATE_GOAL_S:.0f} s",
            "yes" if big.late_commit_s <= LATE_GOAL_S else "NO",
        ),
        Row(f"timers fired ({big.due:,} due)", b, "1", fmt_rate(big.rate), "(report)", "—"),
    ]
    if small is None:
        rows.append(
            Row(f"RSS, {big.scheduled:,} wait", b, "1", mib(big.rss_peak_kib), "(report)", "—")
        )
        return rows
    allowed = max(small.rss_peak_kib * 1.10, small.rss_peak_kib + 10 * 1024)
    waiting_big = big.scheduled - big.due
    waiting_small = small.scheduled - small.due
    rows += [
        Row(f"RSS, {waiting_small:,} wait", b, "1", mib(small.rss_peak_kib), "(baseline)", "—"),
        Row(
            f"RSS, {waiting_big:,} wait",
            b,
            "1",
            mib(big.rss_peak_kib),
            f"≤ {mib(round(allowed))}",
            "yes" if big.rss_peak_kib <= allowed else "NO",
        ),
    ]
    return rows


def print_table(rows: list[Row]) -> None:
    head = Row("workload", "backend", "workers", "rate / value", "goal", "met?")
    table = [(r.workload, r.backend, r.workers, r.value, r.goal, r.met) for r in [head, *rows]]
    report.print_table(table, left=2)


def postgres_info() -> tuple[str | None, str]:
    """(why PostgreSQL is skipped, or None; its version and commit settings)."""
    reason = shared_server_available()
    if reason is not None:
        return reason, ""
    import psycopg

    with psycopg.connect(libpq_url(SHARED_ADMIN_URL), autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        sync = conn.execute("SHOW synchronous_commit").fetchone()
        fsync = conn.execute("SHOW fsync").fetchone()
    assert version and sync and fsync
    return None, f"PostgreSQL {version[0]} (synchronous_commit={sync[0]}, fsync={fsync[0]})"


# ---- running -----------------------------------------------------------------------------


def run_throughput(ctx: Any, recipe: Path, backend: str, s: Settings, tmp: Path) -> list[Row]:
    rows = []
    for workload in WORKLOADS:
        for k in (1, 2):
            r = throughput(ctx, recipe, backend, workload, k, s, tmp)
            rows.append(throughput_row(r))
            print(
                f"  {workload} {backend} ×{k}: {fmt_rate(min(r.rounds))}–{fmt_rate(max(r.rounds))}"
                f" ({len(r.rounds)} rounds of {r.per_round:,} instances, batches of {s.batch})",
                flush=True,
            )
    return rows


def run_timers(ctx: Any, recipe: Path, backend: str, s: Settings, tmp: Path) -> list[Row]:
    big = timers(ctx, recipe, backend, s.timers, s.due, tmp)
    print(
        f"  timers {backend}: {big.scheduled:,} scheduled in {big.schedule_s:.1f} s; "
        f"first of {big.due:,} claimed {big.late_claim_s:.2f} s, committed "
        f"{big.late_commit_s:.2f} s after T; {fmt_rate(big.rate)}; idle claim "
        f"{big.idle_claim_s * 1000:.0f} ms; RSS {mib(big.rss_ready_kib)} ready, "
        f"{mib(big.rss_peak_kib)} peak",
        flush=True,
    )
    small = None
    small_total = s.due + s.timers // 100
    if small_total < s.timers:
        small = timers(ctx, recipe, backend, small_total, s.due, tmp)
        print(
            f"  timers {backend}: {small.scheduled:,} scheduled; first committed "
            f"{small.late_commit_s:.2f} s after T; {fmt_rate(small.rate)}; idle claim "
            f"{small.idle_claim_s * 1000:.0f} ms; RSS {mib(small.rss_ready_kib)} ready, "
            f"{mib(small.rss_peak_kib)} peak",
            flush=True,
        )
    return timer_rows(big, small)


def run(s: Settings, backends: list[str]) -> list[Row]:
    ctx = mp.get_context("spawn")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="flowlane-bench-") as tmp_name:
        tmp = Path(tmp_name)
        recipe = write_recipe(tmp)
        for backend in backends:
            rows += run_throughput(ctx, recipe, backend, s, tmp)
        for backend in backends:
            rows += run_timers(ctx, recipe, backend, s, tmp)
    return rows


def settings_from(args: argparse.Namespace) -> Settings:
    quick = bool(args.quick)
    total = args.timers if args.timers is not None else (20_000 if quick else 1_000_000)
    check(total >= 100, "--timers: at least 100")
    return Settings(
        quick=quick,
        batch=args.batch,
        rounds=2 if quick else 3,
        seconds=1.0 if quick else 6.0,
        warm=min(args.batch, 100) if quick else args.batch,
        timers=total,
        due=max(total // 100, 1),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: short, 20,000 timers")
    parser.add_argument("--only", choices=BACKENDS, help="one backend only")
    parser.add_argument("--timers", type=int, help="timers scheduled (default 1,000,000)")
    parser.add_argument("--batch", type=int, default=500, help="instances per transaction")
    args = parser.parse_args(argv)
    s = settings_from(args)
    backends = [args.only] if args.only else list(BACKENDS)
    pg_line = ""
    if "postgresql" in backends:
        reason, pg_line = postgres_info()
        if reason is not None:
            print(f"PostgreSQL rows skipped: {reason}")
            backends.remove("postgresql")
    print(
        f"flowlane {report.version_of('flowlane')} durable; Python {platform.python_version()} on "
        f"{platform.machine()}, {os.cpu_count()} CPUs; SQLite {sqlite3.sqlite_version}"
        + (f"; {pg_line}" if pg_line else "")
        + (" (quick)" if s.quick else ""),
        flush=True,
    )
    started = time.perf_counter()
    rows = run(s, backends)
    print()
    print_table(rows)
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
