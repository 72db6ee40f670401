"""Located problems: ``file:block: message``, as errors or warnings."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError as PydanticError

from flowlane.model.process import BLOCK_TYPES


@dataclass(frozen=True, order=True)
class Diagnostic:
    file: str
    block: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.block}" if self.block else self.file
        prefix = "" if self.severity == "error" else "warning: "
        return f"{where}: {prefix}{self.message}"


def _loc_text(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, str) and part.startswith("function-"):
            continue  # pydantic's name for a validator inside a union: not the user's words
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def from_pydantic(exc: PydanticError, *, file: str, blocks_key: str = "blocks") -> list[Diagnostic]:
    """Turn pydantic's errors into located diagnostics.

    ``blocks.<id>.<type tag>.<param>`` becomes block ``<id>`` and the message names the
    parameter; anything else is located at the top of the file with its path.
    """
    out: list[Diagnostic] = []
    for err in exc.errors():
        loc = list(err["loc"])
        block = ""
        if len(loc) >= 2 and loc[0] == blocks_key:
            block = str(loc[1])
            loc = loc[2:]
            # drop pydantic's discriminator tag (the block type) from the path
            if loc and isinstance(loc[0], str) and loc[0] in _BLOCK_TAGS:
                loc = loc[1:]
        out.append(Diagnostic(file, block, _message(err, _loc_text(loc))))
    return out


_BLOCK_TAGS = frozenset(BLOCK_TYPES)


def _message(err: Any, where: str) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        parent, _, key = where.rpartition(".")
        return f"unknown key {key!r}" + (f" in {parent}" if parent else "")
    if kind == "missing":
        return f"missing required parameter {where!r}"
    if kind == "union_tag_invalid":
        tag = err.get("input", {}).get("type") if isinstance(err.get("input"), dict) else None
        return f"unknown block type {tag!r}" if tag else "unknown block type"
    if kind == "union_tag_not_found":
        return "block has no 'type'"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg
