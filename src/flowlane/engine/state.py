"""Instance state: tokens, variables, counters, wait states; and its versioned codec.

Instance status diagram::

    running ──end block / no tokens left──▶ ended (outcome positive | neutral | negative)
    running ──cancel (by hand or by the parent's end)──▶ cancelled
    running ──block failed / loop guard──▶ incident ──retry──▶ running

A token waits in one of these kinds (``Token.wait["k"]``): ``task`` (an open task),
``timer`` (a delay), ``cond`` (a wait_for: objects it read and an optional timeout timer),
``child`` (a subprocess), ``children`` (for_each with ``wait: all``), ``join`` (arrived at
a join, waiting for the other branches).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flowlane.core.errors import ValidationError

STATE_VERSION = 1


@dataclass(slots=True)
class Token:
    """A token at a block. ``wait`` is None while it moves."""

    id: int
    block: str
    came_from: str | None = None
    wait: dict[str, Any] | None = None
    answer: dict[str, Any] | None = None

    def copy(self) -> Token:
        return Token(
            self.id,
            self.block,
            self.came_from,
            dict(self.wait) if self.wait is not None else None,
            self.answer,
        )


@dataclass(slots=True)
class InstanceState:
    """Everything an instance holds between steps. Ids it makes derive from ``id`` + ``seq``."""

    id: str
    process: str
    version: int
    object_id: str | None
    status: str = "running"
    outcome: str | None = None
    result: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    tokens: list[Token] = field(default_factory=list)
    seq: int = 0
    parent: dict[str, Any] | None = None
    children: list[str] = field(default_factory=list)
    incident: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    bpmn: dict[str, Any] | None = None
    """A standard BPMN process's interpreter state (:mod:`flowlane.engine.bpmn_host`): the
    run's JSON state and the host's bookkeeping; None for block processes."""

    def copy(self) -> InstanceState:
        return InstanceState(
            id=self.id,
            process=self.process,
            version=self.version,
            object_id=self.object_id,
            status=self.status,
            outcome=self.outcome,
            result=self.result,
            vars=dict(self.vars),
            counters=dict(self.counters),
            tokens=[
                Token(
                    t.id, t.block, t.came_from, None if t.wait is None else dict(t.wait), t.answer
                )
                for t in self.tokens
            ],
            seq=self.seq,
            parent=self.parent,
            children=list(self.children),
            incident=self.incident,
            started_at=self.started_at,
            ended_at=self.ended_at,
            bpmn=copy.deepcopy(self.bpmn) if self.bpmn is not None else None,
        )

    def next_id(self, prefix: str) -> str:
        """A new id derived from the instance id and its sequence, e.g. ``i7.t3``."""
        self.seq += 1
        return f"{self.id}.{prefix}{self.seq}"


# ---- codec ---------------------------------------------------------------------------


def encode_value(value: Any) -> Any:
    """Encode a value as JSON-safe data; datetimes, dates and durations are tagged."""
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$td": value.total_seconds()}
    if isinstance(value, dict):
        return {k: encode_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    return value


def decode_value(value: Any) -> Any:
    """Inverse of :func:`encode_value`."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((k, v),) = value.items()
            if k == "$dt":
                return datetime.fromisoformat(v)
            if k == "$d":
                return date.fromisoformat(v)
            if k == "$td":
                return timedelta(seconds=v)
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


def _token_to_dict(t: Token) -> dict[str, Any]:
    d: dict[str, Any] = {"id": t.id, "b": t.block}
    if t.came_from is not None:
        d["f"] = t.came_from
    if t.wait is not None:
        d["w"] = t.wait
    if t.answer is not None:
        d["a"] = encode_value(t.answer)
    return d


def to_dict(state: InstanceState) -> dict[str, Any]:
    """Serialize an instance state to JSON-safe data (schema version ``STATE_VERSION``).

    Keys are short and empty values are left out: a waiting instance is a few hundred bytes.
    ``sa``/``ea`` (started, ended) are ISO 8601 text.
    """
    d: dict[str, Any] = {
        "v": STATE_VERSION,
        "id": state.id,
        "p": state.process,
        "pv": state.version,
        "o": state.object_id,
        "s": state.status,
        "seq": state.seq,
        "t": [_token_to_dict(t) for t in state.tokens],
    }
    if state.outcome is not None:
        d["oc"] = state.outcome
    if state.result is not None:
        d["r"] = state.result
    if state.vars:
        d["vars"] = encode_value(state.vars)
    if state.counters:
        d["c"] = state.counters
    if state.parent is not None:
        d["par"] = state.parent
    if state.children:
        d["ch"] = state.children
    if state.incident is not None:
        d["inc"] = state.incident
    if state.started_at is not None:
        d["sa"] = state.started_at.isoformat()
    if state.ended_at is not None:
        d["ea"] = state.ended_at.isoformat()
    if state.bpmn is not None:
        d["bpmn"] = encode_value(state.bpmn)
    return d


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Pure upgrade functions from older schema versions (none yet: version 1 is the first)."""
    version = data.get("v")
    if version != STATE_VERSION:
        raise ValidationError(
            f"instance state has schema version {version!r}; this flowlane reads {STATE_VERSION}"
        )
    return data


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def from_dict(data: dict[str, Any]) -> InstanceState:
    """Deserialize what :func:`to_dict` produced (upgrading older versions)."""
    d = _upgrade(data)
    return InstanceState(
        id=d["id"],
        process=d["p"],
        version=d["pv"],
        object_id=d["o"],
        status=d["s"],
        outcome=d.get("oc"),
        result=d.get("r"),
        vars=decode_value(d["vars"]) if "vars" in d else {},
        counters=dict(d["c"]) if "c" in d else {},
        tokens=[
            Token(
                t["id"], t["b"], t.get("f"), t.get("w"), decode_value(t["a"]) if "a" in t else None
            )
            for t in d["t"]
        ],
        seq=d["seq"],
        parent=d.get("par"),
        children=list(d["ch"]) if "ch" in d else [],
        incident=d.get("inc"),
        started_at=_when(d.get("sa")),
        ended_at=_when(d.get("ea")),
        bpmn=decode_value(d["bpmn"]) if "bpmn" in d else None,
    )
