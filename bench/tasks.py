"""Task benchmark: a manager's inbox page and the task statistics over a million tasks.

Run with ``make bench`` (or ``.venv/bin/python bench/tasks.py [--tasks N] [--only
sqlite|postgresql] [--quick]``). PostgreSQL is the shared server of ``tests/pg.py`` (a fresh
database per run); SQLite is a fresh file in a temp dir.

Data: N tasks (default 1,000,000) of one process written straight into ``tasks`` (chunked
``executemany`` and ``ANALYZE`` on SQLite; ``COPY`` and ``VACUUM ANALYZE`` on PostgreSQL, as
autovacuum leaves a settled table), with one instance row per 100 tasks (the foreign key).
200 managers hold 95 % of them round robin, 5 % are unassigned; 40 % are open; priorities
are spread evenly; a third have no reaction time, the others 1 hour or 1 day; creation
times are spread over the year before the clock, so a share of the open tasks is overdue.
Every manager has about 4,750 tasks, 1,900 of them open.

Measured
    *inbox*: ``Store.inbox`` of a manager (first page, 50 rows), 200 requests (each manager
    once), p50 and p95. Its peer, in the same run on the same database: load the manager's
    open tasks (the same index) into records and sort them in Python by the same key.
    *statistics*: ``Store.task_statistics`` over every task of the process (SQL
    ``GROUP BY`` assignee, status, creation day), median of 3. Its peer: load assignee,
    status and creation time of every task and count them in Python.
    *inbox total*: ``Store.inbox_count`` (the inbox page's ``total``), 200 requests, p95.
    *bulk reassignment*: ``Store.reassign_tasks`` of the tasks created in the last tenth of
    the year (about 100,000 of 1,000,000) to one manager, in one transaction (one
    ``UPDATE … WHERE`` appending a history entry to each); once, no peer.

Goals: inbox p95 ≤ 50 ms and statistics ≤ 1 s, on SQLite and PostgreSQL, with 1,000,000
tasks. ``--quick`` is a smoke run with 50,000 tasks.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import database, print_table, timed, version_of
from sqlalchemy import select

from flowlane.runtime.durable import load_valid_recipe
from flowlane.store import taskquery
from flowlane.store.records import TaskQuery, TaskRecord
from flowlane.store.sql import open_store
from flowlane.store.sql import tables as t
from flowlane.store.sql.store import SqlStore

NOW = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
SQLITE_TS = "%Y-%m-%d %H:%M:%S.%f"
CHUNK = 20_000
PROCESS = "bench-tasks"
MANAGERS = [f"m{i:03d}" for i in range(200)]
RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "order-processing"
PRIORITIES = ("urgent", "high", "normal", "low")
REACTIONS = (None, 3600, 86400)
PAGE = 50
TASK_COLUMNS = [c.name for c in t.tasks.c]
INSTANCE_COLUMNS = [c.name for c in t.instances.c]


def task_rows(total: int, tz: Any) -> Iterator[dict[str, Any]]:
    rnd = random.Random(5)
    data: dict[str, Any] = {
        "title": "Call the client",
        "text": "",
        "options": ["done"],
        "fields": {},
        "workflow": None,
        "waits": True,
        "answer": None,
        "comments": [],
        "history": [],
    }
    year = 365 * 86400
    for i in range(total):
        created = NOW - timedelta(seconds=rnd.randrange(year))
        reaction = REACTIONS[rnd.randrange(3)]
        priority = PRIORITIES[rnd.randrange(4)]
        is_open = rnd.random() < 0.4
        yield {
            "id": f"i{i // 100:06d}.t{i % 100}",
            "instance_id": f"i{i // 100:06d}",
            "process": PROCESS,
            "block": "call",
            "kind": "question",
            "object_id": None,
            "assignee": None if i % 20 == 19 else MANAGERS[i % 200],
            "status": "open" if is_open else "answered",
            "closed": not is_open,
            "priority": priority,
            "reaction_s": reaction,
            "created_at": created,
            "closed_at": None if is_open else created + timedelta(hours=2),
            "data": data,
            "seq": i + 1,
            "due_at": created + timedelta(seconds=reaction) if reaction is not None else None,
            "priority_rank": taskquery.priority_rank(priority),
            "inbox": True,
            "created_day": created.astimezone(tz).date().isoformat(),
        }


def instance_rows(total: int) -> Iterator[dict[str, Any]]:
    state = json.dumps({"bench": True})
    for n in range((total + 99) // 100):
        yield {
            "id": f"i{n:06d}",
            "process": PROCESS,
            "version": 1,
            "object_id": None,
            "status": "running",
            "parent_id": None,
            "state": state,
            "updated_at": NOW,
            "seq": n + 1,
        }


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime(SQLITE_TS)
    if isinstance(value, dict):
        return json.dumps(value)
    return value


def _insert(conn: sqlite3.Connection, table: str, columns: list[str], rows: Any) -> None:
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(tuple(_sqlite_value(row[c]) for c in columns))
        if len(batch) >= CHUNK:
            conn.executemany(sql, batch)
            batch = []
    conn.executemany(sql, batch)


def load_sqlite(url: str, total: int, tz: Any) -> None:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        _insert(conn, "instances", INSTANCE_COLUMNS, instance_rows(total))
        _insert(conn, "tasks", TASK_COLUMNS, task_rows(total, tz))
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


def load_postgresql(url: str, total: int, tz: Any) -> None:
    import psycopg

    def pg_value(value: Any) -> Any:
        return json.dumps(value) if isinstance(value, dict) else value

    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            for table, columns, rows in (
                ("instances", INSTANCE_COLUMNS, instance_rows(total)),
                ("tasks", TASK_COLUMNS, task_rows(total, tz)),
            ):
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
                    for row in rows:
                        cp.write_row(tuple(pg_value(row[c]) for c in columns))
        conn.commit()
        conn.autocommit = True
        # What autovacuum does to a table that has settled: statistics, and the visibility
        # map that lets the statistics read only the index (an index-only scan).
        conn.execute("VACUUM ANALYZE")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def peer_inbox(store: SqlStore, manager: str) -> list[TaskRecord]:
    """What a Python engine does: load the person's open tasks, sort them in Python."""
    with store.transaction(), store._query() as c:
        rows = c.execute(
            select(t.tasks).where(t.tasks.c.assignee == manager, t.tasks.c.closed.is_(False))
        ).all()
        tasks = [(row.seq, store._task(row)) for row in rows]
    found = [
        (taskquery.inbox_key(task, NOW, seq), task)
        for seq, task in tasks
        if taskquery.in_inbox(task, manager, ())
    ]
    found.sort(key=lambda pair: pair[0])
    return [task for _k, task in found[:PAGE]]


def peer_statistics(store: SqlStore) -> int:
    with store.transaction(), store._query() as c:
        rows = c.execute(
            select(t.tasks.c.assignee, t.tasks.c.status, t.tasks.c.created_at).where(
                t.tasks.c.process == PROCESS
            )
        ).all()
    tz = store.tz
    counts = Counter((r.assignee, r.status, r.created_at.astimezone(tz).date()) for r in rows)
    return len(counts)


def bench_reassign(store: SqlStore, total: int) -> list[str]:
    """Reassign the tasks created in the last tenth of the year, in one transaction."""
    query = TaskQuery(process=PROCESS, created_from=NOW - timedelta(days=36.5))
    entry = {"at": NOW, "by": "owner", "what": "reassigned", "to": "m-bulk"}

    def run() -> int:
        with store.transaction():
            return store.reassign_tasks(query, "m-bulk", entry)

    took, changed = timed(run)
    print(f"bulk reassignment: {changed:,} of {total:,} tasks in {took:.2f} s", flush=True)
    return [f"bulk reassignment ({changed:,} of {total:,})", f"{took:.2f} s", "", "", ""]


def bench_backend(backend: str, s: argparse.Namespace, tmp: Path) -> list[list[str]]:
    out: list[list[str]] = []
    with database(backend, tmp, "tasks") as url:
        recipe = load_valid_recipe(RECIPE)
        assert recipe.schema is not None
        store: SqlStore = open_store(url, recipe.schema, reset=True)
        tz = store.tz
        store.close()
        load_s, _ = timed(
            lambda: (load_sqlite if backend == "sqlite" else load_postgresql)(url, s.tasks, tz)
        )
        print(f"{backend}: {s.tasks:,} tasks loaded in {load_s:.1f} s", flush=True)
        store = open_store(url, recipe.schema)
        try:
            store.inbox(MANAGERS[0], (), NOW, limit=PAGE)  # warm the pool and caches
            times: list[float] = []
            for manager in MANAGERS:
                took, _page = timed(lambda m=manager: store.inbox(m, (), NOW, limit=PAGE))
                times.append(took)
            first = store.inbox(MANAGERS[7], (), NOW, limit=PAGE)
            peer_times: list[float] = []
            for manager in MANAGERS[: s.peer_requests]:
                took, peer_page = timed(lambda m=manager: peer_inbox(store, m))
                peer_times.append(took)
                if manager == MANAGERS[7]:
                    assert [x.id for x in peer_page] == [x.id for x in first], "peer differs"
            p50, p95 = statistics.median(times), percentile(times, 0.95)
            q50, q95 = statistics.median(peer_times), percentile(peer_times, 0.95)
            out.append(
                [
                    backend,
                    "inbox page (50) p50",
                    f"{p50 * 1000:.1f} ms",
                    f"{q50 * 1000:.1f} ms",
                    f"{q50 / p50:.0f}×",
                    "",
                ]
            )
            out.append(
                [
                    backend,
                    "inbox page (50) p95",
                    f"{p95 * 1000:.1f} ms",
                    f"{q95 * 1000:.1f} ms",
                    f"{q95 / p95:.0f}×",
                    "≤ 50 ms " + ("met" if p95 <= 0.05 else "MISSED"),
                ]
            )
            stat_times = []
            rows: list[Any] = []
            for _ in range(3):
                took, rows = timed(lambda: store.task_statistics(TaskQuery(process=PROCESS)))
                stat_times.append(took)
            counted = sum(r.count for r in rows)
            assert counted == s.tasks, counted
            stat = statistics.median(stat_times)
            peer_s, groups = timed(lambda: peer_statistics(store))
            assert groups == len(rows), (groups, len(rows))
            out.append(
                [
                    backend,
                    f"statistics over {s.tasks:,} ({len(rows):,} rows)",
                    f"{stat:.2f} s",
                    f"{peer_s:.2f} s",
                    f"{peer_s / stat:.1f}×",
                    "≤ 1 s " + ("met" if stat <= 1 else "MISSED"),
                ]
            )
            count_times = []
            for manager in MANAGERS:
                took, _n = timed(lambda m=manager: store.inbox_count(m, ()))
                count_times.append(took)
            c95 = percentile(count_times, 0.95)
            out.append([backend, "inbox total (count) p95", f"{c95 * 1000:.1f} ms", "", "", ""])
            out.append([backend, *bench_reassign(store, s.tasks)])
        finally:
            store.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--peer-requests", type=int, default=50)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--quick", action="store_true")
    s = parser.parse_args(argv)
    if s.quick:
        s.tasks = 50_000
    backends = [s.only] if s.only else ["sqlite", "postgresql"]
    table = [["store", "what", "flowlane (SQL)", "Python (peer)", "ratio", "goal"]]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for backend in backends:
            try:
                table.extend(bench_backend(backend, s, tmp))
            except Exception as exc:
                if backend == "postgresql" and "connect" in str(exc).lower():
                    print(f"postgresql skipped: {exc}")
                    continue
                raise
    print()
    print(
        f"flowlane task benchmark — SQLAlchemy {version_of('sqlalchemy')}, "
        f"SQLite {sqlite3.sqlite_version}, psycopg {version_of('psycopg')}"
    )
    print_table(table, left=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
