"""Launch benchmark: a periodic check over a million objects, and a mass start.

Run with ``make bench`` (or ``.venv/bin/python bench/launch.py [--objects N] [--mass N]
[--only sqlite|postgresql] [--quick]``). PostgreSQL is the shared server of ``tests/pg.py``
(``127.0.0.1:5432``), a fresh database per run (rows skipped with the reason when it does not
answer); SQLite is a fresh file in a temp dir.

Data: N ``order`` objects (default 1,000,000) written straight into ``objects`` (chunked
``executemany`` on SQLite, ``COPY`` on PostgreSQL; ``ANALYZE`` after), 4 % of them with status
``new``, half of those with an amount above 500: 20,000 match the periodic process's filter
``{all: [status eq new, amount gt 500]}``; 10,000 of those have entered it already (rows in
``entered``), so a check finds 10,000 newly matching objects. Then the recipe is deployed
through :func:`flowlane.runtime.durable.deploy`, which makes the expression indexes for
``status`` and ``amount``.

Measured
    *find*: ``Store.newly_matching`` (what a periodic check asks) in a read transaction:
    SQL only, no object is loaded into Python (median of 3). Its peer, measured on the same
    database in the same run, is the way every Python engine does it: load each object of the
    type and evaluate the condition in Python (one run; ``--peer-limit`` objects, default all).
    *count*: ``Store.count_objects`` for the forecast. *check*: the whole periodic check
    (``launch.run_periodic``: find, lock, start 10,000 instances, each running to its first
    wait, commit). *mass*: ``runtime.durable.mass_start`` of a manual process over the
    ``--mass`` objects (default 100,000) with status ``paid``, 500 per transaction.

Goal: *find* ≤ 5 s on SQLite and on PostgreSQL with 1,000,000 objects. The other rows are
reported without a goal. ``--quick`` is a smoke run with 50,000 objects and 5,000 to start.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import database, print_table, timed, version_of

from flowlane.runtime.durable import deploy, load_valid_recipe, mass_start
from flowlane.services import launch
from flowlane.services.account import Account
from flowlane.store.match import matcher
from flowlane.store.records import TimerRecord
from flowlane.store.sql import open_store
from flowlane.store.sql.segment import encode_object_data
from flowlane.store.sql.store import SqlStore

NOW = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
SQLITE_TS = "%Y-%m-%d %H:%M:%S.%f"
CHUNK = 20_000

PERIODIC = """\
key: big-new-orders
name: Big new orders get a call
object: order
launch:
  on: periodic
  every: 10m
  where:
    all:
      - {field: status, op: eq, value: new}
      - {field: amount, op: gt, value: 500}
blocks:
  start: {type: start, next: wait}
  wait: {type: delay, for: 1d, next: done}
  done: {type: end}
"""

MANUAL = """\
key: thank-paid
name: Thank paying clients
object: order
blocks:
  start: {type: start, next: wait}
  wait: {type: delay, for: 1d, next: done}
  done: {type: end}
"""


def write_recipe(root: Path) -> Path:
    recipe = root / "recipe"
    (recipe / "processes").mkdir(parents=True)
    (recipe / "recipe.yaml").write_text("key: bench-launch\nname: flowlane launch benchmark\n")
    (recipe / "processes" / "big-new-orders.yaml").write_text(PERIODIC)
    (recipe / "processes" / "thank-paid.yaml").write_text(MANUAL)
    load_valid_recipe(recipe)
    return recipe


def rows(total: int, mass: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """The objects: 4 % new (half of them above 500), ``mass`` paid, the rest in work,
    cancelled or delayed."""
    rnd = random.Random(7)
    paid_every = max(total // mass, 2) if mass else 0
    for i in range(total):
        if i % 25 == 0:
            amount = 600 + rnd.randrange(400) if i % 50 == 0 else rnd.randrange(500)
            status = "new"
        elif paid_every and i % paid_every == 1:
            status, amount = "paid", rnd.randrange(1000)
        else:
            status, amount = rnd.choice(["in_work", "cancelled", "delayed"]), rnd.randrange(1000)
        yield f"o{i:07d}", {"number": f"A-{i}", "status": status, "amount": amount}


def entered_ids(total: int) -> list[str]:
    """Half of the matching objects (every other one) have entered the process already."""
    return [f"o{i:07d}" for i in range(0, total, 100)]


def load_sqlite(url: str, total: int, mass: int) -> None:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    at = NOW.strftime(SQLITE_TS)
    try:
        conn.execute("BEGIN IMMEDIATE")
        batch: list[tuple[Any, ...]] = []
        for oid, data in rows(total, mass):
            batch.append((oid, "order", json.dumps(encode_object_data(data)), at, at))
            if len(batch) >= CHUNK:
                conn.executemany("INSERT INTO objects VALUES (?, ?, ?, ?, ?)", batch)
                batch = []
        conn.executemany("INSERT INTO objects VALUES (?, ?, ?, ?, ?)", batch)
        conn.executemany(
            "INSERT INTO entered (process, object_id) VALUES ('big-new-orders', ?)",
            [(oid,) for oid in entered_ids(total)],
        )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


def load_postgresql(url: str, total: int, mass: int) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY objects (id, type, data, created_at, updated_at) FROM STDIN") as cp:
                for oid, data in rows(total, mass):
                    cp.write_row((oid, "order", json.dumps(encode_object_data(data)), NOW, NOW))
            with cur.copy("COPY entered (process, object_id) FROM STDIN") as cp:
                for oid in entered_ids(total):
                    cp.write_row(("big-new-orders", oid))
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")


def bench_backend(
    backend: str, recipe_dir: Path, s: argparse.Namespace, tmp: Path
) -> list[list[str]]:
    out: list[list[str]] = []
    with database(backend, tmp, "launch") as url:
        recipe = load_valid_recipe(recipe_dir)
        assert recipe.schema is not None
        store: SqlStore = open_store(url, recipe.schema, reset=True)
        store.close()
        load_time, _ = timed(
            lambda: (load_sqlite if backend == "sqlite" else load_postgresql)(
                url, s.objects, s.mass
            )
        )
        store = open_store(url, recipe.schema)
        try:
            index_time, _ = timed(lambda: deploy(recipe, store))
            print(
                f"{backend}: {s.objects:,} objects loaded in {load_time:.1f} s, "
                f"deployed (indexes) in {index_time:.1f} s",
                flush=True,
            )
            account = Account(store, NOW)
            definition = store.definition("big-new-orders")
            assert definition is not None
            condition = launch.condition_of(account, definition)
            scope = launch.condition_scope(account)

            def find() -> list[str]:
                with store.transaction():
                    return store.newly_matching(
                        "big-new-orders", "order", condition, scope, repeat=False
                    )

            finds = [timed(find) for _ in range(3)]
            found = finds[0][1]
            expected = len(range(0, s.objects, 50)) - len(entered_ids(s.objects))
            assert len(found) == expected, (len(found), expected)
            find_s = statistics.median(t for t, _ in finds)

            def count() -> int:
                with store.transaction():
                    return store.count_objects(
                        "order", condition, scope, not_entered="big-new-orders"
                    )

            count_s, counted = timed(count)
            assert counted == expected

            def python_scan() -> int:
                n = 0
                with store.transaction():
                    ids = store.objects_of_type("order")[: s.peer_limit or None]
                    test = matcher(store, condition, scope)
                    for i in range(0, len(ids), 5000):
                        part = ids[i : i + 5000]
                        store.prefetch(object_ids=part)
                        for oid in part:
                            if test(oid) and not store.has_entered("big-new-orders", oid):
                                n += 1
                        store._tx.objects.clear()  # type: ignore[union-attr]  # keep memory flat
                return n

            scanned = len(store.objects_of_type("order")[: s.peer_limit or None])
            peer_s, peer_n = timed(python_scan)
            if not s.peer_limit:
                assert peer_n == expected
            peer_full = peer_s * s.objects / scanned
            out.append(
                [
                    backend,
                    f"find {expected:,} newly matching of {s.objects:,}",
                    f"{find_s:.2f} s",
                    f"{peer_full:.1f} s" + ("" if scanned == s.objects else " (extrapolated)"),
                    f"{peer_full / find_s:.0f}×",
                    "≤ 5 s " + ("met" if find_s <= 5 else "MISSED"),
                ]
            )
            out.append([backend, "forecast count", f"{count_s:.2f} s", "", "", ""])

            timer = TimerRecord(
                "periodic:big-new-orders", None, NOW, 0, kind="periodic", process="big-new-orders"
            )
            check_s, _ = timed(lambda: account.attempt(lambda: launch.run_periodic(account, timer)))
            with store.transaction():
                left = store.count_objects("order", condition, scope, not_entered="big-new-orders")
            assert left == 0, left
            out.append(
                [
                    backend,
                    f"periodic check: start {expected:,}",
                    f"{check_s:.2f} s",
                    "",
                    "",
                    f"{expected / check_s:,.0f} inst/s",
                ]
            )

            where = {"field": "status", "op": "eq", "value": "paid"}
            mass_s, started = timed(
                lambda: mass_start(store, "thank-paid", where, by=None, batch=500)
            )
            out.append(
                [
                    backend,
                    f"mass start {len(started):,} (500 per transaction)",
                    f"{mass_s:.2f} s",
                    "",
                    "",
                    f"{len(started) / mass_s:,.0f} inst/s",
                ]
            )
        finally:
            store.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--mass", type=int, default=100_000)
    parser.add_argument("--peer-limit", type=int, default=0, help="objects the peer scans (0: all)")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--quick", action="store_true")
    s = parser.parse_args(argv)
    if s.quick:
        s.objects, s.mass = 50_000, 5_000
    backends = [s.only] if s.only else ["sqlite", "postgresql"]
    table = [["store", "what", "flowlane", "Python scan (peer)", "ratio", "goal / rate"]]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        recipe = write_recipe(tmp)
        for backend in backends:
            try:
                table.extend(bench_backend(backend, recipe, s, tmp))
            except Exception as exc:
                if backend == "postgresql" and "connect" in str(exc).lower():
                    print(f"postgresql skipped: {exc}")
                    continue
                raise
    print()
    print(
        f"flowlane launch benchmark — SQLAlchemy {version_of('sqlalchemy')}, "
        f"SQLite {sqlite3.sqlite_version}, psycopg {version_of('psycopg')}"
    )
    print_table(table, left=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
