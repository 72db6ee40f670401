"""Shared by the benchmarks: the figures table and package versions."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata


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
