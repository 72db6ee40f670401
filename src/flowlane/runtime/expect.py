"""Checking a scenario's ``expect`` step against the store (FORMATS.md "expect keys")."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from flowlane.core.errors import FlowlaneError
from flowlane.model import scenario as sc
from flowlane.store.records import MessageRecord, TaskCount, TaskRecord

if TYPE_CHECKING:
    from flowlane.runtime.simulate import Simulation

T = TypeVar("T")
M = TypeVar("M")


class ExpectationFailed(Exception):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where


def match_all(expected: Sequence[M], actual: Sequence[T], fits: Callable[[M, T], bool]) -> bool:
    """Whether each expected entry matches a distinct actual item and none is left over."""
    if len(expected) != len(actual):
        return False
    used = [False] * len(actual)

    def place(i: int) -> bool:
        if i == len(expected):
            return True
        for j, item in enumerate(actual):
            if not used[j] and fits(expected[i], item):
                used[j] = True
                if place(i + 1):
                    return True
                used[j] = False
        return False

    return place(0)


def _task_fits(m: sc.TaskMatch, t: TaskRecord) -> bool:
    """Keys given must match; ``assignee: null`` given explicitly means unassigned."""
    got = {
        "block": t.block,
        "object": t.object_id,
        "assignee": t.assignee,
        "process": t.process,
        "status": t.status,
    }
    return all(getattr(m, key) == got[key] for key in m.model_fields_set)


def _msg_fits(m: sc.MessageMatch, msg: MessageRecord) -> bool:
    if m.to is not None and m.to != msg.to:
        return False
    if m.channel is not None and m.channel != msg.channel:
        return False
    return m.subject_contains is None or m.subject_contains in msg.subject


def _describe_task(t: TaskRecord) -> str:
    return f"{{block: {t.block}, object: {t.object_id}, assignee: {t.assignee}}}"


def _describe_msg(m: MessageRecord) -> str:
    return f"{{to: {m.to}, subject: {m.subject!r}}}"


def same_value(want: Any, got: Any, tz: Any) -> bool:
    """Compare an expected literal with a stored value (dates by value, numbers by value)."""
    if isinstance(got, datetime) and isinstance(want, str):
        try:
            w = datetime.fromisoformat(want)
        except ValueError:
            return False
        return (w if w.tzinfo else w.replace(tzinfo=tz)) == got
    if isinstance(got, date) and isinstance(want, str):
        return got.isoformat() == want
    if isinstance(want, bool) or isinstance(got, bool):
        return want is got
    return bool(want == got)


def check_expect(sim: Simulation, e: sc.Expect, where: str) -> None:
    checks: list[tuple[str, Callable[[Simulation, Any], str | None]]] = [
        ("open_tasks", _open_tasks),
        ("ended", _ended),
        ("running", _running),
        ("object", _object),
        ("messages", _messages),
        ("message_count", _message_count),
        ("notifications", _notifications),
        ("counters", _counters),
        ("tasks_created", _tasks_created),
        ("incident", _incident),
        ("statistics", _statistics),
        ("refused", _refused),
    ]
    for key, check in checks:
        value = getattr(e, key)
        if value is None:
            continue
        problem = check(sim, value)
        if problem is not None:
            raise ExpectationFailed(where, f"expect {key}: {problem}")


def _open_tasks(sim: Simulation, want: list[sc.TaskMatch]) -> str | None:
    open_ = sim.account.store.find_tasks(open_only=True)
    if match_all(want, open_, _task_fits):
        return None
    wanted = ", ".join(str(w.model_dump(exclude_none=True)) for w in want) or "none"
    found = ", ".join(_describe_task(t) for t in open_) or "none"
    return f"expected [{wanted}], found [{found}]"


def _instances(sim: Simulation, process: str, object_id: str | None) -> list[Any]:
    return list(sim.account.store.instances_of(process, object_id))


def _summary(states: list[Any]) -> str:
    if not states:
        return "no instance"
    return ", ".join(f"{s.id} {s.status} outcome={s.outcome} result={s.result}" for s in states)


def _ended(sim: Simulation, e: sc.EndedExpect) -> str | None:
    states = _instances(sim, e.process, e.object)
    for s in states:
        if (
            s.status in ("ended", "cancelled")
            and (e.outcome is None or e.outcome == s.outcome)
            and (e.result is None or e.result == s.result)
        ):
            return None
    return (
        f"no ended instance of {e.process} on {e.object} with "
        f"outcome={e.outcome} result={e.result}; found: {_summary(states)}"
    )


def _running(sim: Simulation, e: sc.RunningExpect) -> str | None:
    states = _instances(sim, e.process, e.object)
    for s in states:
        if s.status != "running":
            continue
        if e.waiting_at is None or any(t.block == e.waiting_at and t.wait for t in s.tokens):
            return None
    waits = "; ".join(f"{s.id} {s.status} at {[t.block for t in s.tokens]}" for s in states)
    return (
        f"no running instance of {e.process} on {e.object}"
        + (f" waiting at {e.waiting_at}" if e.waiting_at else "")
        + f"; found: {waits or 'none'}"
    )


def _object(sim: Simulation, e: sc.ObjectExpect) -> str | None:
    rec = sim.account.store.get_object(e.id)
    if rec is None:
        return f"object {e.id} does not exist"
    wrong = [
        f"{k}: expected {v!r}, found {rec.data.get(k)!r}"
        for k, v in e.fields.items()
        if not same_value(v, rec.data.get(k), sim.tz)
    ]
    return "; ".join(wrong) or None


def _match_messages(want: list[sc.MessageMatch], got: list[MessageRecord]) -> str | None:
    if match_all(want, got, _msg_fits):
        return None
    return (
        f"expected {[w.model_dump(exclude_none=True) for w in want]}, found "
        f"[{', '.join(_describe_msg(m) for m in got) or 'none'}]"
    )


def _messages(sim: Simulation, want: list[sc.MessageMatch]) -> str | None:
    return _match_messages(want, sim.account.store.messages(sim.seen_messages))


def _notifications(sim: Simulation, want: list[sc.MessageMatch]) -> str | None:
    return _match_messages(want, sim.account.store.notifications(sim.seen_notifications))


def _message_count(sim: Simulation, want: int) -> str | None:
    got = sim.account.store.messages(sim.seen_messages)
    if len(got) == want:
        return None
    return f"expected {want}, found {len(got)}: [{', '.join(_describe_msg(m) for m in got)}]"


def _counters(sim: Simulation, e: sc.CountersExpect) -> str | None:
    states = _instances(sim, e.process, e.object)
    if not states:
        return f"no instance of {e.process} on {e.object}"
    got = states[-1].counters
    wrong = [
        f"{k}: expected {v}, found {got.get(k)}" for k, v in e.values.items() if got.get(k) != v
    ]
    return "; ".join(wrong) or None


def _tasks_created(sim: Simulation, e: sc.TasksCreatedExpect) -> str | None:
    total = sum(
        n
        for (process, block, obj), n in sim.account.store.tasks_created().items()
        if block == e.block
        and (e.process is None or e.process == process)
        and (e.object is None or e.object == obj)
    )
    return None if total == e.count else f"block {e.block}: expected {e.count}, found {total}"


def _incident(sim: Simulation, e: sc.IncidentExpect) -> str | None:
    states = _instances(sim, e.process, e.object)
    for s in states:
        if s.status == "incident" and (
            e.contains is None or e.contains.lower() in (s.incident or "").lower()
        ):
            return None
    return f"no incident on {e.process} {e.object} containing {e.contains!r}; found: " + (
        "; ".join(f"{s.id} {s.status} {s.incident!r}" for s in states) or "no instance"
    )


def _moment(text: str | None, tz: Any) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=tz)


def _row_fits(want: sc.StatisticsRow, got: TaskCount) -> bool:
    return (want.assignee, want.status, want.day, want.count) == (
        got.assignee,
        got.status,
        got.day,
        got.count,
    )


def _describe_row(r: sc.StatisticsRow | TaskCount) -> str:
    return f"{{assignee: {r.assignee}, status: {r.status}, day: {r.day}, count: {r.count}}}"


def _statistics(sim: Simulation, e: sc.StatisticsExpect) -> str | None:
    unassigned = "assignee" in e.model_fields_set and e.assignee is None
    try:
        stats = sim.account.task_statistics(
            e.process,
            status=e.status,
            assignee=e.assignee,
            unassigned=unassigned,
            object_id=e.object,
            open_only=e.open,
            created_from=_moment(e.created_from, sim.tz),
            created_to=_moment(e.created_to, sim.tz),
            by=e.by,
        )
    except FlowlaneError as exc:
        return f"of {e.process}: refused: {exc}"
    problems = []
    if e.rows is not None and not match_all(e.rows, stats.rows, _row_fits):
        wanted = ", ".join(_describe_row(r) for r in e.rows) or "none"
        found = ", ".join(_describe_row(r) for r in stats.rows) or "none"
        problems.append(f"rows: expected [{wanted}], found [{found}]")
    if e.total is not None and e.total != stats.total:
        problems.append(f"total: expected {e.total}, found {stats.total}")
    return f"of {e.process}: " + "; ".join(problems) if problems else None


def _refused(sim: Simulation, want: bool | str) -> str | None:
    if want is False:
        return None if sim.refused is None else f"the step was refused: {sim.refused}"
    if sim.refused is None:
        return "the previous step was not refused"
    if isinstance(want, str) and want.lower() not in sim.refused.lower():
        return f"refused for another reason: {sim.refused!r} (expected it to contain {want!r})"
    return None
