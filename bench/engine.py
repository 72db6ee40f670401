"""Engine benchmark: flowlane's ``decide`` against SpiffWorkflow 3.x on the same flows.

Run with ``make bench`` (or ``.venv-bench/bin/python bench/engine.py [--quick]``). The flows
are in ``bench/flows.py``. Workloads:

* W1  start → operation (status = in_work) → condition on that field → end; instances/s.
* W2  start → fork into 3 → join → end; instances/s.
* W3  start → question; state to JSON and back; answer → end; instances/s.
* W4  N instances waiting on a question: serialized JSON bytes per instance, and
  tracemalloc bytes per instance held in memory.

Each instance runs from creation to completion and is checked (flowlane: status ``ended``
with the expected outcome; Spiff: ``is_completed()``), so only correct runs are counted.
A workload is warmed up, then timed in rounds with ``time.perf_counter``, flowlane's and
Spiff's rounds taking turns; a rate is the median of the rounds, a ratio the median of the
per-round ratios. The process definitions are parsed once, outside the timing, on both
sides. ``--profile W1`` (W2, W3, W4) runs flowlane's side under cProfile instead.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform
import pstats
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import flows
import report
from flowlane.engine.context import Ctx, ObjectRecord
from flowlane.engine.events import InstanceStarted, OpenTask, TaskAnswered, UpdateObject
from flowlane.engine.interpreter import decide
from flowlane.engine.state import InstanceState, from_dict, to_dict
from flowlane.model.definition import Definition
from flowlane.model.process import ProcessFile
from flowlane.model.validate import validate_process
from flowlane.model.yamlio import parse_text
from flowlane.objects import build_schema
from flowlane.store.memory import MemoryStore

try:
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.bpmn.parser import BpmnParser
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.util.task import TaskState

    HAVE_SPIFF = True
except ImportError:  # the bench still reports flowlane's figures
    HAVE_SPIFF = False

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
OBJECT_ID = "o1"

Batch = Callable[[int], None]
"""Runs ``n`` instances from start to completion (and checks them)."""


class BenchError(RuntimeError):
    """An instance did not run as the flow says: the figures would be meaningless."""


def check(ok: bool, what: str) -> None:
    if not ok:
        raise BenchError(what)


# ---- flowlane -------------------------------------------------------------------------


def flowlane_store() -> MemoryStore:
    """A store with the object W1 changes and the user W3 assigns its question to."""
    store = MemoryStore(schema=build_schema(None))
    store.objects["anna"] = ObjectRecord("anna", "user", {"name": "Anna", "role": "client"})
    store.objects["boris"] = ObjectRecord("boris", "user", {"name": "Boris", "role": "manager"})
    store.objects[OBJECT_ID] = ObjectRecord(
        OBJECT_ID,
        "order",
        {"number": "A-1", "status": "new", "client": "anna", "manager": "boris", "amount": 100},
    )
    return store


def flowlane_deploy(store: MemoryStore, text: str) -> Definition:
    spec = ProcessFile.model_validate(parse_text(text, source="bench.yaml"))
    problems = validate_process(
        spec,
        source="bench.yaml",
        schema=store.schema,
        templates=None,
        processes=None,
        in_recipe=False,
    )
    errors = [str(p) for p in problems if p.severity == "error"]
    check(not errors, f"process {spec.key} does not validate: {errors}")
    return store.deploy(Definition.build(spec))


class Flowlane:
    """flowlane's side: ``decide`` on a fresh ``InstanceState`` per instance."""

    def __init__(self) -> None:
        self.store = flowlane_store()
        self.w1 = flowlane_deploy(self.store, flows.FLOWLANE_W1)
        self.w2 = flowlane_deploy(self.store, flows.FLOWLANE_W2)
        self.w3 = flowlane_deploy(self.store, flows.FLOWLANE_W3)
        self.seq = 0

    def _new(self, defn: Definition) -> InstanceState:
        self.seq += 1
        return InstanceState(
            id=f"i{self.seq}", process=defn.key, version=defn.version, object_id=OBJECT_ID
        )

    def _start(self, defn: Definition) -> Any:
        return decide(defn, self._new(defn), InstanceStarted({}), Ctx(NOW, self.store))

    def verify(self) -> None:
        d1 = self._start(self.w1)
        check(d1.state.status == "ended" and d1.state.outcome == "positive", "flowlane W1 end")
        updates = [c.changes for c in d1.commands if isinstance(c, UpdateObject)]
        check(updates == [{"status": "in_work"}], f"flowlane W1 sets status: {updates}")
        entered = [e.block for e in d1.trace if e.event == "entered"]
        if entered:  # the trace may not list every block; then the outcome says enough
            check(entered == ["start", "work", "check", "done"], f"flowlane W1 path: {entered}")
        d2 = self._start(self.w2)
        check(d2.state.status == "ended", "flowlane W2 end")
        check(d2.state.counters == {"a": 1, "b": 1, "c": 1}, "flowlane W2 ran every branch")
        entered = [e.block for e in d2.trace if e.event == "entered"]
        if entered:
            check(entered.count("meet") == 3, f"flowlane W2 joins three tokens: {entered}")
            check(entered.count("done") == 1, f"flowlane W2 ends once: {entered}")
        state, task_id = self.w3_wait()
        check(state.status == "running" and len(state.tokens) == 1, "flowlane W3 waits")
        d3 = self.w3_answer(state, task_id)
        check(d3.state.status == "ended" and d3.state.outcome == "positive", "flowlane W3 end")

    def w3_wait(self) -> tuple[InstanceState, str]:
        d = self._start(self.w3)
        task_id = next(c.task_id for c in d.commands if isinstance(c, OpenTask))
        return d.state, task_id

    def w3_answer(self, state: InstanceState, task_id: str) -> Any:
        answer = TaskAnswered(task_id, "yes", {}, "boris")
        return decide(self.w3, state, answer, Ctx(NOW, self.store))

    def batch_w1(self, n: int) -> None:
        defn, store = self.w1, self.store
        for _ in range(n):
            d = decide(defn, self._new(defn), InstanceStarted({}), Ctx(NOW, store))
            check(d.state.status == "ended" and d.state.outcome == "positive", "flowlane W1")

    def batch_w2(self, n: int) -> None:
        defn, store = self.w2, self.store
        for _ in range(n):
            d = decide(defn, self._new(defn), InstanceStarted({}), Ctx(NOW, store))
            check(d.state.status == "ended", "flowlane W2")

    def batch_w3(self, n: int) -> None:
        defn, store = self.w3, self.store
        for _ in range(n):
            d = decide(defn, self._new(defn), InstanceStarted({}), Ctx(NOW, store))
            task_id = next(c.task_id for c in d.commands if isinstance(c, OpenTask))
            text = json.dumps(to_dict(d.state))
            state = from_dict(json.loads(text))
            answer = TaskAnswered(task_id, "yes", {}, "boris")
            d = decide(defn, state, answer, Ctx(NOW, store))
            check(d.state.status == "ended" and d.state.outcome == "positive", "flowlane W3")

    def hold_w4(self, n: int) -> list[InstanceState]:
        held = []
        for _ in range(n):
            state, _task = self.w3_wait()
            held.append(state)
        return held

    def batch_w4(self, n: int) -> None:
        """Instances to their wait, then serialized (what W4 measures, for profiling)."""
        self.json_bytes(self.hold_w4(n))

    @staticmethod
    def json_bytes(states: list[InstanceState]) -> int:
        return sum(len(json.dumps(to_dict(s)).encode()) for s in states)


# ---- SpiffWorkflow --------------------------------------------------------------------


def spiff_spec(xml: str, process_id: str) -> Any:
    parser = BpmnParser()
    parser.add_bpmn_str(xml.encode(), filename=f"{process_id}.bpmn")
    return parser.get_spec(process_id)


class Spiff:
    """SpiffWorkflow's side: a new ``BpmnWorkflow`` per instance, ``do_engine_steps()``.

    The specs are parsed once. Each workflow gets Spiff's default script engine (sharing
    one engine between workflows measured no faster).
    """

    def __init__(self) -> None:
        self.w1 = spiff_spec(flows.BPMN_W1, "w1")
        self.w2 = spiff_spec(flows.BPMN_W2, "w2")
        self.w3 = spiff_spec(flows.BPMN_W3, "w3")
        self.serializer = BpmnWorkflowSerializer()

    def _run(self, spec: Any) -> Any:
        wf = BpmnWorkflow(spec)
        wf.do_engine_steps()
        return wf

    def verify(self) -> None:
        wf = self._run(self.w1)
        check(wf.is_completed(), "Spiff W1 completes")
        check(wf.data.get("status") == "in_work", f"Spiff W1 data: {wf.data}")
        done = {t.task_spec.name for t in wf.get_tasks(state=TaskState.COMPLETED)}
        check("done" in done and "other" not in done, f"Spiff W1 path: {done}")
        wf = self._run(self.w2)
        check(wf.is_completed(), "Spiff W2 completes")
        done_tasks = [t.task_spec.name for t in wf.get_tasks(state=TaskState.COMPLETED)]
        check({"a", "b", "c"} <= set(done_tasks), f"Spiff W2 branches: {done_tasks}")
        check(done_tasks.count("done") == 1, f"Spiff W2 ends once: {done_tasks}")
        wf = self._run(self.w3)
        check(not wf.is_completed(), "Spiff W3 waits")
        wf = self.w3_answer(self.serializer.deserialize_json(self.serializer.serialize_json(wf)))
        check(wf.is_completed(), "Spiff W3 completes")

    def w3_answer(self, wf: Any) -> Any:
        (task,) = wf.get_tasks(state=TaskState.READY, manual=True)
        task.data["option"] = "yes"
        task.run()
        wf.do_engine_steps()
        return wf

    def batch_w1(self, n: int) -> None:
        for _ in range(n):
            check(self._run(self.w1).is_completed(), "Spiff W1")

    def batch_w2(self, n: int) -> None:
        for _ in range(n):
            check(self._run(self.w2).is_completed(), "Spiff W2")

    def batch_w3(self, n: int) -> None:
        ser = self.serializer
        for _ in range(n):
            wf = self._run(self.w3)
            text = ser.serialize_json(wf)
            wf = self.w3_answer(ser.deserialize_json(text))
            check(wf.is_completed(), "Spiff W3")

    def hold_w4(self, n: int) -> list[Any]:
        return [self._run(self.w3) for _ in range(n)]

    def json_bytes(self, workflows: list[Any]) -> tuple[int, int]:
        """Total serialized bytes, and the part that is the embedded process spec."""
        total = spec = 0
        for wf in workflows:
            text = self.serializer.serialize_json(wf)
            total += len(text.encode())
            if not spec:
                data = json.loads(text)
                spec = len(json.dumps(data["spec"]).encode()) + len(
                    json.dumps(data["subprocess_specs"]).encode()
                )
        return total, spec


# ---- measuring ------------------------------------------------------------------------


@dataclass
class Rate:
    rounds: list[float]  # instances/s of each round

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)

    @property
    def low(self) -> float:
        return min(self.rounds)

    @property
    def high(self) -> float:
        return max(self.rounds)


def ratio_of(mine: Rate, peer: Rate) -> float:
    """The median of the per-round ratios (rounds taking turns share the machine's load)."""
    return statistics.median(a / b for a, b in zip(mine.rounds, peer.rounds, strict=True))


def warm(batch: Batch, warmup: float) -> float:
    """Run ``batch`` with doubling sizes for ``warmup`` seconds; the last rate seen."""
    n, spent = 8, 0.0
    while True:
        t0 = time.perf_counter()
        batch(n)
        dt = time.perf_counter() - t0
        spent += dt
        if spent >= warmup:
            return n / dt
        n *= 2


def measure(batches: list[Batch], *, seconds: float, rounds: int, warmup: float) -> list[Rate]:
    """Instances/s of each batch: warmed up, then timed in ``rounds`` interleaved rounds.

    Each batch gets about ``seconds`` in all. Rounds alternate between the engines, so a
    burst of load from elsewhere on the machine hits both sides alike.
    """
    sizes = [max(1, int(warm(b, warmup) * seconds / rounds)) for b in batches]
    rates: list[list[float]] = [[] for _ in batches]
    for _ in range(rounds):
        for batch, n, out in zip(batches, sizes, rates, strict=True):
            gc.collect()
            t0 = time.perf_counter()
            batch(n)
            out.append(n / (time.perf_counter() - t0))
    return [Rate(r) for r in rates]


def held_bytes(make: Callable[[int], list[Any]], n: int) -> tuple[list[Any], float]:
    """Create ``n`` waiting instances; traced bytes still allocated per instance."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = make(n)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return held, (after - before) / n


# ---- report ---------------------------------------------------------------------------

GOALS = {"W1": 50.0, "W2": 50.0, "W3": 20.0}
W4_LIMIT = 1024


@dataclass
class Row:
    workload: str
    flowlane: str
    spiff: str
    ratio: str
    goal: str
    met: str


def fmt_rate(r: float) -> str:
    return f"{r:,.0f}"


def rate_row(name: str, mine: Rate, peer: Rate | None) -> Row:
    goal = GOALS[name]
    if peer is None:
        return Row(name, fmt_rate(mine.median), "missing", "—", f"≥ {goal:.0f}×", "n/a")
    ratio = ratio_of(mine, peer)
    met = "yes" if ratio >= goal else "NO"
    return Row(
        name, fmt_rate(mine.median), fmt_rate(peer.median), f"{ratio:.1f}×", f"≥ {goal:.0f}×", met
    )


def print_table(rows: list[Row]) -> None:
    head = Row("workload", "flowlane", "SpiffWorkflow", "ratio", "goal", "met?")
    table = [(r.workload, r.flowlane, r.spiff, r.ratio, r.goal, r.met) for r in [head, *rows]]
    report.print_table(table, left=1)


def run(quick: bool) -> list[Row]:
    seconds, rounds, warmup = (0.4, 3, 0.1) if quick else (4.0, 8, 0.5)
    held_n = 1_000 if quick else 10_000
    fl = Flowlane()
    fl.verify()
    sp = Spiff() if HAVE_SPIFF else None
    if sp is not None:
        sp.verify()
    else:
        print(
            "SpiffWorkflow is not installed: showing flowlane's figures only "
            "(make bench installs it into .venv-bench).\n"
        )

    rows: list[Row] = []
    batches: list[tuple[str, Batch, Batch | None]] = [
        ("W1", fl.batch_w1, sp.batch_w1 if sp else None),
        ("W2", fl.batch_w2, sp.batch_w2 if sp else None),
        ("W3", fl.batch_w3, sp.batch_w3 if sp else None),
    ]
    for name, mine_batch, peer_batch in batches:
        both = [mine_batch] if peer_batch is None else [mine_batch, peer_batch]
        mine, *rest = measure(both, seconds=seconds, rounds=rounds, warmup=warmup)
        peer = rest[0] if rest else None
        rows.append(rate_row(name, mine, peer))
        detail = f"  {name}: flowlane {fmt_rate(mine.low)}–{fmt_rate(mine.high)} inst/s"
        if peer is not None:
            ratios = [a / b for a, b in zip(mine.rounds, peer.rounds, strict=True)]
            detail += (
                f"; Spiff {fmt_rate(peer.low)}–{fmt_rate(peer.high)} inst/s"
                f"; ratio {min(ratios):.1f}–{max(ratios):.1f}×"
            )
        print(detail + f" (min–max of {rounds} rounds)", flush=True)

    # W4: instances left waiting on the question.
    states, fl_mem = held_bytes(fl.hold_w4, held_n)
    check(all(s.status == "running" for s in states), "flowlane W4 waits")
    fl_json = fl.json_bytes(states) / held_n
    del states
    sp_json = sp_mem = sp_spec = None
    if sp is not None:
        workflows, sp_mem = held_bytes(sp.hold_w4, held_n)
        check(not any(wf.is_completed() for wf in workflows), "Spiff W4 waits")
        total, spec = sp.json_bytes(workflows)
        sp_json, sp_spec = total / held_n, spec
        del workflows
    rows.append(
        Row(
            "W4 JSON B/inst",
            f"{fl_json:,.0f}",
            f"{sp_json:,.0f}" if sp_json else "missing",
            f"{sp_json / fl_json:.1f}× smaller" if sp_json else "—",
            f"≤ {W4_LIMIT:,} B",
            "yes" if fl_json <= W4_LIMIT else "NO",
        )
    )
    rows.append(
        Row(
            "W4 memory B/inst",
            f"{fl_mem:,.0f}",
            f"{sp_mem:,.0f}" if sp_mem else "missing",
            f"{sp_mem / fl_mem:.1f}× smaller" if sp_mem else "—",
            "(report)",
            "≤ 1 KB" if fl_mem <= W4_LIMIT else "> 1 KB",
        )
    )
    line = f"  W4: {held_n:,} waiting instances " + ("each side" if sp else "(flowlane only)")
    if sp_json and sp_spec:
        line += (
            f"; Spiff JSON embeds the process spec ({sp_spec:,} B), "
            f"without it {sp_json - sp_spec:,.0f} B/inst"
        )
    print(line, flush=True)
    return rows


def profile(workload: str, quick: bool) -> None:
    """Run flowlane's side of one workload under cProfile and print the top functions."""
    fl = Flowlane()
    fl.verify()
    n = 2_000 if quick else 20_000
    batch = {
        "W1": fl.batch_w1,
        "W2": fl.batch_w2,
        "W3": fl.batch_w3,
        "W4": fl.batch_w4,
    }[workload]
    batch(200)
    prof = cProfile.Profile()
    prof.enable()
    batch(n)
    prof.disable()
    print(f"flowlane {workload}: {n:,} instances under cProfile")
    stats = pstats.Stats(prof).strip_dirs()
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short rounds, 1,000 in W4")
    parser.add_argument(
        "--profile",
        choices=["W1", "W2", "W3", "W4"],
        type=str.upper,
        help="profile flowlane's side of one workload (cProfile) instead of benchmarking",
    )
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.profile, args.quick)
        return 0
    cpus = os.cpu_count()
    print(
        f"flowlane {report.version_of('flowlane')} vs "
        f"SpiffWorkflow {report.version_of('SpiffWorkflow')}; "
        f"Python {platform.python_version()} on {platform.machine()}, {cpus} CPUs"
        + (" (quick)" if args.quick else ""),
        flush=True,
    )
    started = time.perf_counter()
    rows = run(args.quick)
    print()
    print_table(rows)
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
