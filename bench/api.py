"""API load benchmark: a real server on loopback, many concurrent clients, inbox and answers.

Run with ``make bench`` (or ``.venv/bin/python bench/api.py [--managers M] [--tasks N]
[--clients 1,8,32] [--workers 1,2] [--requests R] [--seconds S] [--only sqlite|postgresql]
[--quick]``). PostgreSQL is the shared server of ``tests/pg.py`` (``127.0.0.1:5432``), a fresh
database per run (its rows are skipped with the reason when it does not answer); SQLite is a
fresh file in a temp dir.

Data (through the services, as the API would make it): the ``recipes/homework`` recipe plus
a process ``bench-review`` (a question, accept or reject, for the client's personal manager,
executors ``role:manager``); M managers (default 100) with an API token each; N clients
(default 20,000), four in five with a personal manager (round robin), and one ``bench-review``
instance started on each: N open tasks, those of clients with a manager assigned to the
manager (160 each by default), the others unassigned in the managers' pool (claimable by any
manager).

Server: ``uvicorn`` in a subprocess on a free loopback port, the app of ``flowlane serve``
(``web.create_app`` over the database, no embedded worker), with W worker processes
(``--workers``, default 1 and 2). Each worker process has one store and runs the store work
of its requests one after another (``Container.lock``); two workers run two at a time.

Measured, for each W and each number C of concurrent clients (``httpx.AsyncClient``, one
connection each; default 1, 8 and 32), each case bounded by ``--requests`` (default 3,000)
and ``--seconds`` (default 30):
    *inbox*: ``GET /api/v1/inbox?size=50`` as the managers in turn.
    *answer*: ``POST /api/v1/tasks/{id}/answer {"option": "accept"}`` by the task's manager, a
    task answered once (the instance then runs to its end in the request).
    *claim*: ``POST /api/v1/tasks/{id}/claim`` of pool tasks by the managers in turn.
Reported: requests per second, p50 / p95 / p99 latency (ms, client side) and the number of
answers that were not 2xx. No goal is set; the figures are for comparing changes.
``--quick`` is a smoke run: 10 managers, 1,000 tasks, 200 requests or 10 s per case.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from bench.report import database, print_table, timed, version_of
from sqlalchemy import select

from flowlane.api.container import Container
from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable, request_account
from flowlane.services import auth
from flowlane.store.sql import tables as t
from flowlane.web.app import create_app

ROOT = Path(__file__).resolve().parents[1]
HOMEWORK = ROOT / "recipes" / "homework"
PROCESS = "bench-review"
REVIEW = """\
# bench/api.py: a question for the client's personal manager (the executors' pool if none).
key: bench-review
name: Review (API benchmark)
object: user
task:
  title: "Review {{ object.name }}"
  assign: personal_manager
  executors: [role:manager]
blocks:
  start: {type: start, next: review}
  review:
    type: question
    title: "Review {{ object.name }}"
    options: {accept: done, reject: done}
  done: {type: end}
"""
API = "/api/v1"
DB_ENV = "FLOWLANE_BENCH_DB"
RECIPE_ENV = "FLOWLANE_BENCH_RECIPE"
BATCH = 500
NEEDED = {
    ("get", "/inbox"): "GET /inbox",
    ("post", "/tasks/{task_id}/answer"): "POST /tasks/{task_id}/answer",
    ("post", "/tasks/{task_id}/claim"): "POST /tasks/{task_id}/claim",
}


def make_recipe(tmp: Path) -> Path:
    """``recipes/homework`` with the benchmark's process added, in ``tmp``."""
    folder = tmp / "recipe"
    shutil.copytree(HOMEWORK, folder, dirs_exist_ok=True)
    (folder / "processes" / f"{PROCESS}.yaml").write_text(REVIEW, encoding="utf-8")
    return folder


def make_app() -> Any:
    """The server's app (uvicorn ``--factory``): ``web.create_app`` over ``$FLOWLANE_BENCH_DB``
    with the recipe ``$FLOWLANE_BENCH_RECIPE``."""
    store = open_durable(load_valid_recipe(os.environ[RECIPE_ENV]), os.environ[DB_ENV])
    return create_app(Container(store=store, data=Path(tempfile.gettempdir()) / "flowlane-bench"))


# --- data ---------------------------------------------------------------------------------


@dataclass
class Data:
    tokens: dict[str, str]  # manager id -> API token
    assigned: dict[str, list[str]]  # manager id -> open task ids assigned to them
    pool: list[str]  # open unassigned task ids
    seconds: float


def seed(recipe_dir: Path, url: str, managers: int, tasks: int) -> Data:
    """Managers with tokens, clients, one review instance per client."""
    recipe = load_valid_recipe(recipe_dir)
    store = open_durable(recipe, url)
    try:
        t0 = time.perf_counter()
        deploy(recipe, store)
        acc = request_account(store)
        ids = [f"m{i:03d}" for i in range(managers)]
        tokens: dict[str, str] = {}

        def make_managers() -> None:
            for uid in ids:
                data = {"name": f"Manager {uid}", "role": "manager", "email": f"{uid}@example.com"}
                acc.create_object("user", data, object_id=uid)
                tokens[uid] = auth.create_token(acc, uid, "bench", by=None).token

        acc.attempt(make_managers)
        for start in range(0, tasks, BATCH):

            def batch(start: int = start) -> None:
                for n in range(start, min(start + BATCH, tasks)):
                    uid = f"c{n:06d}"
                    data: dict[str, Any] = {"name": f"Client {n}", "role": "client"}
                    if n % 5:
                        data["personal_manager"] = ids[n % managers]
                    acc.create_object("user", data, object_id=uid)
                    acc.start(PROCESS, uid, by=ids[0])

            acc.attempt(batch)
        seconds = time.perf_counter() - t0
        assigned: dict[str, list[str]] = {uid: [] for uid in ids}
        pool: list[str] = []
        with store.transaction(), store._query() as c:
            rows = c.execute(
                select(t.tasks.c.id, t.tasks.c.assignee)
                .where(t.tasks.c.process == PROCESS, t.tasks.c.closed.is_(False))
                .order_by(t.tasks.c.seq)
            ).all()
        for task_id, assignee in rows:
            assigned.get(assignee, pool).append(task_id)
        return Data(tokens, assigned, pool, seconds)
    finally:
        store.close()


# --- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def server(recipe_dir: Path, url: str, workers: int) -> Iterator[str]:
    """uvicorn serving :func:`make_app` over ``url`` on a free loopback port; its base URL."""
    port = free_port()
    env = {**os.environ, DB_ENV: url, RECIPE_ENV: str(recipe_dir), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "bench.api:make_app"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    cmd += ["--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited with {proc.returncode} before it answered")
            try:
                if httpx.get(f"{base}{API}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not answer within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def check_routes(base: str) -> None:
    """Stop with the missing route's name if the API lacks a route the benchmark drives."""
    paths = httpx.get(f"{base}{API}/openapi.json", timeout=10).json()["paths"]
    missing = [name for (m, p), name in NEEDED.items() if m not in paths.get(p, {})]
    if missing:
        raise SystemExit(f"bench/api.py: the API has no route {', '.join(missing)} (yet)")


# --- load ---------------------------------------------------------------------------------

Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    failed: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)


async def drive(base: str, concurrency: int, requests: Iterator[Request], seconds: float) -> Result:
    """Send the requests from ``concurrency`` clients at once until they or the time run out."""
    out = Result()
    stop = time.perf_counter() + seconds

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            while time.perf_counter() < stop:
                make = next(requests, None)
                if make is None:
                    return
                t0 = time.perf_counter()
                response = await make(http)
                out.latencies.append(time.perf_counter() - t0)
                if not response.is_success:
                    out.failed += 1
                    code = response.status_code
                    out.statuses[code] = out.statuses.get(code, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    out.seconds = time.perf_counter() - t0
    return out


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def inbox_requests(data: Data, count: int) -> Iterator[Request]:
    managers = list(data.tokens)
    for n in range(count):
        headers = bearer(data.tokens[managers[n % len(managers)]])
        yield lambda http, h=headers: http.get(f"{API}/inbox", params={"size": 50}, headers=h)


def answer_requests(data: Data, count: int) -> Iterator[Request]:
    """Tasks of the managers in turn (each answered once: taken off ``data.assigned``)."""
    sent = 0
    while sent < count and any(data.assigned.values()):
        for manager, tasks in data.assigned.items():
            if not tasks or sent >= count:
                continue
            task_id, headers = tasks.pop(), bearer(data.tokens[manager])
            sent += 1
            yield lambda http, i=task_id, h=headers: http.post(
                f"{API}/tasks/{i}/answer", json={"option": "accept", "fields": {}}, headers=h
            )


def claim_requests(data: Data, count: int) -> Iterator[Request]:
    managers = list(data.tokens)
    for n in range(min(count, len(data.pool))):
        task_id, headers = data.pool.pop(), bearer(data.tokens[managers[n % len(managers)]])
        yield lambda http, i=task_id, h=headers: http.post(f"{API}/tasks/{i}/claim", headers=h)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def row(backend: str, workers: int, kind: str, clients: int, r: Result) -> list[str]:
    if not r.latencies:
        return [backend, str(workers), kind, str(clients), "0", "-", "-", "-", "-", "-"]
    ms = [x * 1000 for x in r.latencies]
    errors = str(r.failed)
    if r.statuses:
        errors += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(r.statuses.items())) + ")"
    return [
        backend,
        str(workers),
        kind,
        str(clients),
        str(len(ms)),
        f"{len(ms) / r.seconds:.0f}",
        f"{percentile(ms, 0.50):.1f}",
        f"{percentile(ms, 0.95):.1f}",
        f"{percentile(ms, 0.99):.1f}",
        errors,
    ]


def run_backend(backend: str, args: argparse.Namespace, tmp: Path) -> list[list[str]]:
    rows: list[list[str]] = []
    recipe_dir = make_recipe(tmp)
    with database(backend, tmp, "api") as url:
        data = seed(recipe_dir, url, args.managers, args.tasks)
        print(
            f"{backend}: seeded {args.managers} managers and {args.tasks} tasks "
            f"in {data.seconds:.1f} s",
            flush=True,
        )
        cases = len(args.workers) * len(args.clients)
        answers = min(args.requests, sum(map(len, data.assigned.values())) // cases)
        claims = min(args.requests, len(data.pool) // cases)
        for workers in args.workers:
            with server(recipe_dir, url, workers) as base:
                check_routes(base)
                for clients in args.clients:
                    for kind, requests in (
                        ("inbox", inbox_requests(data, args.requests)),
                        ("answer", answer_requests(data, answers)),
                        ("claim", claim_requests(data, claims)),
                    ):
                        result = asyncio.run(drive(base, clients, requests, args.seconds))
                        rows.append(row(backend, workers, kind, clients, result))
                        print("  " + " | ".join(rows[-1]), flush=True)
    return rows


def counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--managers", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--clients", type=counts, default=[1, 8, 32])
    parser.add_argument("--workers", type=counts, default=[1, 2])
    parser.add_argument("--requests", type=int, default=3_000, help="per case at most")
    parser.add_argument("--seconds", type=float, default=30.0, help="per case at most")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.managers, args.tasks, args.requests, args.seconds = 10, 1_000, 200, 10.0
    print(
        f"flowlane {version_of('flowlane')}, uvicorn {version_of('uvicorn')}, "
        f"httpx {version_of('httpx')}, Python {sys.version.split()[0]}"
    )
    header = ["backend", "workers", "request", "clients", "count", "req/s"]
    table = [[*header, "p50 ms", "p95 ms", "p99 ms", "not 2xx"]]
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("sqlite", "postgresql"):
            if args.only and backend != args.only:
                continue
            try:
                elapsed, rows = timed(lambda b=backend: run_backend(b, args, Path(tmp)))
            except Exception as exc:  # PostgreSQL not answering: say so, keep the other rows
                if backend != "postgresql":
                    raise
                table.append([backend, "-", f"skipped: {exc}"[:60], *["-"] * 7])
                continue
            table.extend(rows)
            print(f"{backend}: {elapsed:.0f} s", flush=True)
    print()
    print_table(table, left=3)


if __name__ == "__main__":
    main()
