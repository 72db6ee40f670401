"""``flowlane simulate``: drive a recipe with a scenario file on a virtual clock.

Each step runs to quiescence at the current time before the next starts. ``advance`` fires
due timers one at a time in ``(due_at, scheduling order)`` with the clock set to each
timer's ``due_at``. A refused step changes nothing and writes a ``refused`` trace entry.
Exit codes: 0 every expectation held, 1 the first that did not, 2 an invalid file.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError as PydanticError

from flowlane.core.duration import parse_duration
from flowlane.core.errors import FlowlaneError, Refused, ValidationError
from flowlane.engine.state import from_dict, to_dict
from flowlane.model import scenario as sc
from flowlane.model.definition import Definition
from flowlane.model.diagnostic import Diagnostic, from_pydantic
from flowlane.model.recipe import Recipe, load_recipe
from flowlane.model.validate import validate_recipe
from flowlane.model.yamlio import load_file
from flowlane.runtime.expect import ExpectationFailed, check_expect
from flowlane.services.account import Account
from flowlane.store.base import Store
from flowlane.store.memory import DEFAULT_TZ, MemoryStore
from flowlane.store.sql import open_store

Sink = Callable[[dict[str, Any]], None]


class InvalidInput(ValidationError):
    """The scenario or the recipe is invalid (exit code 2)."""

    def __init__(self, problems: list[Diagnostic]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class SimResult:
    ok: bool
    exit_code: int
    message: str = ""
    trace: list[dict[str, Any]] = field(default_factory=list)


def _redacted(value: Any) -> Any:
    """Step arguments for the trace, with passwords (write-only everywhere) hidden."""
    if isinstance(value, dict):
        return {k: "***" if k == "password" else _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def parse_time(text: str, tz: tzinfo) -> datetime:
    value = datetime.fromisoformat(str(text))
    return value if value.tzinfo else value.replace(tzinfo=tz)


def load_scenario(path: Path) -> sc.ScenarioFile:
    try:
        data = load_file(path)
    except ValidationError as exc:
        raise InvalidInput([Diagnostic(str(path), "", str(exc))]) from exc
    try:
        return sc.ScenarioFile.model_validate(data)
    except PydanticError as exc:
        problems = from_pydantic(exc, file=str(path), blocks_key="steps")
        raise InvalidInput(
            [
                Diagnostic(p.file, f"step {int(p.block) + 1}", p.message)
                if p.block.isdigit()
                else p
                for p in problems
            ]
        ) from exc


@dataclass(frozen=True)
class Database:
    """Run on the durable store at ``url`` instead of in memory (``--db``)."""

    url: str
    reset: bool = False


def build_account(
    recipe: Recipe, now: datetime, tz: tzinfo, sink: Sink | None, db: Database | None = None
) -> Account:
    assert recipe.schema is not None
    schema = copy.deepcopy(recipe.schema)
    store: Store
    if db is None:
        store = MemoryStore(
            schema=schema, tz=tz, templates=dict(recipe.templates), forms=dict(recipe.forms)
        )
    else:
        try:
            store = open_store(
                db.url,
                schema,
                tz=tz,
                templates=dict(recipe.templates),
                forms=dict(recipe.forms),
                require_empty=True,
                reset=db.reset,
            )
        except FlowlaneError as exc:
            raise InvalidInput([Diagnostic("--db", "", str(exc))]) from exc
    account = Account(store, now, sink=sink)
    try:
        with store.transaction():
            for key in sorted(recipe.processes):
                account.deploy(Definition.build(recipe.processes[key], source=recipe.sources[key]))
    except BaseException:
        store.close()
        raise
    return account


class Simulation:
    """One run of one scenario against one recipe."""

    def __init__(
        self,
        recipe: Recipe,
        scenario: sc.ScenarioFile,
        *,
        source: str,
        roundtrip: bool = False,
        sink: Sink | None = None,
        db: Database | None = None,
    ) -> None:
        self.recipe = recipe
        self.scenario = scenario
        self.source = source
        self.roundtrip = roundtrip
        self.trace: list[dict[str, Any]] = []
        self.sink = sink
        try:
            self.tz = ZoneInfo(scenario.timezone or DEFAULT_TZ)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidInput(
                [Diagnostic(source, "timezone", f"unknown time zone {scenario.timezone!r}")]
            ) from exc
        start = parse_time(scenario.clock, self.tz)
        self.account = build_account(recipe, start, self.tz, self._emit, db)
        self.refused: str | None = None
        self.sent_back: str | None = None
        """Set by a ``stage`` step whose move a guard sent back: the step counts as refused."""
        self._pending: list[dict[str, Any]] | None = None
        self.seen_messages = 0
        self.seen_notifications = 0
        self.step_no = 0

    def _emit(self, line: dict[str, Any]) -> None:
        if self._pending is not None:
            self._pending.append(line)
            return
        self.trace.append(line)
        if self.sink is not None:
            self.sink(line)

    def _flush(self, keep: bool) -> None:
        """End a step's buffering: a refused step's lines are dropped with its changes."""
        pending, self._pending = self._pending or [], None
        if keep:
            for line in pending:
                self._emit(line)

    def _note(self, event: str, **details: Any) -> None:
        self._emit(
            {
                "time": self.account.now.isoformat(),
                "instance": None,
                "process": None,
                "block": None,
                "event": event,
                "details": details,
            }
        )

    def run(self) -> SimResult:
        try:
            return self._run()
        finally:
            self.account.store.close()

    def _run(self) -> SimResult:
        with self.account.store.transaction():
            for fixture in self.scenario.objects:
                try:
                    self.account.create_object(
                        fixture.type, dict(fixture.data), object_id=fixture.id, launches=False
                    )
                except FlowlaneError as exc:
                    raise InvalidInput(
                        [Diagnostic(self.source, f"objects.{fixture.id}", str(exc))]
                    ) from exc
            self.account.activate()
        try:
            self._steps(self.scenario.steps, "")
        except ExpectationFailed as exc:
            msg = f"{self.source}: step {exc.where}: {exc}"
            self._note("expectation_failed", step=exc.where, message=str(exc))
            return SimResult(False, 1, msg, self.trace)
        return SimResult(True, 0, "", self.trace)

    def _steps(self, steps: list[sc.Step], prefix: str) -> None:
        for i, step in enumerate(steps, 1):
            where = f"{prefix}{i}"
            if step.kind == "repeat":
                assert step.repeat is not None and step.steps is not None
                for n in range(step.repeat):
                    self._steps(step.steps, f"{where}.{n + 1}.")
                continue
            self._one(step, where)
            if self.roundtrip:
                self._roundtrip()

    def _roundtrip(self) -> None:
        store = self.account.store
        with store.transaction():
            for state in store.instances_of():
                store.put_instance(from_dict(json.loads(json.dumps(to_dict(state)))))

    def _one(self, step: sc.Step, where: str) -> None:
        kind = step.kind
        body = getattr(step, kind)
        if kind == "expect":
            check_expect(self, body, where)
            self.seen_messages += len(self.account.store.messages(self.seen_messages))
            self.seen_notifications += len(
                self.account.store.notifications(self.seen_notifications)
            )
            self._note("expect_held", step=where)
            return
        self._note(
            "step",
            step=where,
            kind=kind,
            args=_redacted(
                body.model_dump(by_alias=True, exclude_none=True)
                if hasattr(body, "model_dump")
                else body
            ),
        )
        self.refused = None
        self.sent_back = None
        self._pending = []
        try:
            self.account.attempt(lambda: STEP_RUNNERS[kind](self, body))
            self._flush(keep=True)
            if self.sent_back is not None:
                # The guard's work stays (its trace too); the object is not where it was
                # moved, so the step is refused like any move the rules refuse.
                self.refused = self.sent_back
                self._note("refused", step=where, kind=kind, reason=self.sent_back)
        except Refused as exc:
            self._flush(keep=False)
            self.refused = str(exc)
            self._note("refused", step=where, kind=kind, reason=str(exc))

    # ---- steps ------------------------------------------------------------------------------

    def advance(self, body: str | sc.AdvanceUntil) -> None:
        a = self.account
        if isinstance(body, sc.AdvanceUntil):
            target = parse_time(body.until, self.tz)
        else:
            target = a.now + parse_duration(body)
        if target < a.now:
            raise Refused(f"cannot go back in time to {target.isoformat()}")
        while (timer := a.store.next_timer(target)) is not None:
            a.runner.now = max(a.runner.now, timer.due_at)
            a.runner.fire(timer)
            a.runner.run()
        a.runner.now = target
        a.runner.run()

    def task(self, ref: sc.TaskRef) -> Any:
        return self.account.open_task(ref.block, ref.object, process=ref.process)


def _start(sim: Simulation, b: sc.StartStep) -> None:
    sim.account.start(b.process, b.object, dict(b.vars), by=b.by)


def _mass_start(sim: Simulation, b: sc.MassStartStep) -> None:
    sim.account.mass_start(b.process, b.where, dict(b.vars), by=b.by)


def _create(sim: Simulation, b: sc.CreateStep) -> None:
    sim.account.create_object(b.type, dict(b.data), object_id=b.id)


def _update(sim: Simulation, b: sc.UpdateStep) -> None:
    sim.account.update_object(b.object, dict(b.set))


def _stage(sim: Simulation, b: sc.StageStep) -> None:
    result = sim.account.move_stage(b.object, b.to, by=b.by)
    sim.sent_back = None if result.moved else result.message


def _answer(sim: Simulation, b: sc.AnswerStep) -> None:
    sim.account.answer(sim.task(b), option=b.option, fields=dict(b.fields), by=b.by)


def _status(sim: Simulation, b: sc.StatusStep) -> None:
    sim.account.change_status(sim.task(b), b.to, by=b.by, comment=b.comment)


def _comment(sim: Simulation, b: sc.CommentStep) -> None:
    sim.account.comment(sim.task(b), b.text, by=b.by)


def _claim(sim: Simulation, b: sc.ClaimStep) -> None:
    sim.account.claim(sim.task(b), by=b.by)


def _unclaim(sim: Simulation, b: sc.ClaimStep) -> None:
    sim.account.unclaim(sim.task(b), by=b.by)


def _reassign(sim: Simulation, b: sc.ReassignStep) -> None:
    given = "from_" in b.model_fields_set
    count = sim.account.reassign(
        b.process, from_=b.from_, status=b.status, to=b.to, by=b.by, from_given=given
    )
    # Comments, claims, unclaims and status changes trace themselves (task_commented,
    # task_claimed, task_unclaimed, task_status); a bulk reassignment gets one line here.
    chosen = {"from": b.from_} if given else {}
    sim._note("tasks_reassigned", process=b.process, **chosen, to=b.to, by=b.by, count=count)


def _approve(sim: Simulation, b: sc.ProcessStep) -> None:
    sim.account.approve(b.process, by=b.by)


def _restart(sim: Simulation, b: sc.ProcessStep) -> None:
    sim.account.restart(b.process, by=b.by)


def _stop(sim: Simulation, b: sc.ProcessStep) -> None:
    sim.account.stop_process(b.process, by=b.by)


def _activate(sim: Simulation, b: sc.ProcessStep) -> None:
    sim.account.activate_process(b.process, by=b.by)


def _cancel(sim: Simulation, b: sc.CancelStep) -> None:
    sim.account.cancel(b.process, b.object, by=b.by)


def _dictionary(sim: Simulation, b: sc.DictionaryStep) -> None:
    sim.account.add_dictionary_value(b.key, b.add)


def _event(sim: Simulation, b: sc.EventStep) -> None:
    sim.account.fire_event(b.kind, b.key, dict(b.data))


STEP_RUNNERS: dict[str, Callable[[Simulation, Any], None]] = {
    "start": _start,
    "mass_start": _mass_start,
    "create": _create,
    "update": _update,
    "stage": _stage,
    "advance": Simulation.advance,
    "answer": _answer,
    "status": _status,
    "comment": _comment,
    "claim": _claim,
    "unclaim": _unclaim,
    "reassign": _reassign,
    "approve": _approve,
    "restart": _restart,
    "stop": _stop,
    "activate": _activate,
    "cancel": _cancel,
    "dictionary": _dictionary,
    "event": _event,
}


def simulate(
    recipe_dir: Path | str,
    scenario_path: Path | str,
    *,
    roundtrip: bool = False,
    sink: Sink | None = None,
    db: Database | None = None,
) -> SimResult:
    """Run one scenario file against a recipe folder (in memory, or on the database ``db``)."""
    recipe = load_recipe(recipe_dir)
    problems = [p for p in recipe.problems + validate_recipe(recipe) if p.severity == "error"]
    if problems:
        raise InvalidInput(problems)
    scenario = load_scenario(Path(scenario_path))
    return Simulation(
        recipe, scenario, source=str(scenario_path), roundtrip=roundtrip, sink=sink, db=db
    ).run()


__all__ = ["Database", "InvalidInput", "SimResult", "Simulation", "simulate"]
