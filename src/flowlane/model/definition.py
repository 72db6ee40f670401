"""A deployed process: the parsed file plus what the engine derives from it once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flowlane.model.bpmn_process import HostedBpmn, compile_source
from flowlane.model.process import ConditionBlock, JoinBlock, ProcessFile, exits_of


@dataclass(frozen=True)
class Definition:
    """One version of a process. ``incoming`` lists, for every join, the blocks leading to it."""

    spec: ProcessFile
    version: int = 1
    source: str = ""
    incoming: dict[str, tuple[str, ...]] = field(default_factory=dict)
    cache: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    """Derived values the engine computes once per version (e.g. validated literal changes)."""
    bpmn: HostedBpmn | None = field(default=None, compare=False, repr=False)
    """A standard BPMN process (``spec.bpmn``), compiled: :func:`decide` runs it instead of
    blocks (ADR 0012 "Hosting")."""

    @classmethod
    def build(cls, spec: ProcessFile, *, version: int = 1, source: str = "") -> Definition:
        incoming: dict[str, list[str]] = {
            bid: [] for bid, b in spec.blocks.items() if isinstance(b, JoinBlock)
        }
        for bid, block in spec.blocks.items():
            for _label, target in exits_of(block):
                if target in incoming and bid not in incoming[target]:
                    incoming[target].append(bid)
        return cls(
            spec=spec,
            version=version,
            source=source or f"{spec.key}.yaml",
            incoming={k: tuple(v) for k, v in incoming.items()},
            bpmn=compile_source(spec.bpmn) if spec.bpmn is not None else None,
        )

    @property
    def key(self) -> str:
        return self.spec.key

    def start_block(self) -> str:
        """The id of the start block (validation guarantees exactly one)."""
        for bid, block in self.spec.blocks.items():
            if block.type == "start":
                return bid
        raise KeyError("start")

    def results(self) -> set[str]:
        """The ``result`` names of this process's end blocks (what a parent routes on)."""
        return {
            b.result for b in self.spec.blocks.values() if b.type == "end" and b.result is not None
        }


__all__ = ["ConditionBlock", "Definition"]
