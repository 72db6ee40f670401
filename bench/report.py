"""Shared by the benchmarks: the figures table and package versions."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any


def print_table(table: Sequence[Sequence[str]], *, left: int = 1) -> None:
    """A Markdown table: the first row is the header; the first ``left`` columns are
    left-aligned, the others (figures) right-aligned."""
    widths = [max(len(row[j]) for row in table) for j in range(len(table[0]))]
    for i, cells in enumerate(table):
        print(
            "| "
            + " | ".join(
                c.ljust(w) if j < left else c.rjust(w)
                for j, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def version_of(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


@contextlib.contextmanager
def database(backend: str, tmp: Path, name: str) -> Iterator[str]:
    """A fresh, empty database: a new SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        path = tmp / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        from tests.pg import fresh_database  # the repository root is on the path by now

        with fresh_database() as url:
            yield url


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds ``fn()`` took, and what it returned."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out
