"""``flowlane bpmn export FILE.yaml [-o out.bpmn]`` and ``flowlane bpmn import FILE.bpmn
[-o out.yaml]``: process files as BPMN 2.0 diagrams for the web designer and back (ADR 0010).

``export`` writes the process as BPMN with a fresh left-to-right layout; ``import`` reads a
diagram (flowlane's dialect, or plain BPMN where the element kinds map unambiguously) into
process-file YAML. Without ``-o`` the result goes to standard output. A file that cannot be
read or converted prints ``error: <file>: ...`` naming the block or element and exits 1; an
imported process that breaks the process-file schema is still written, and its problems are
printed as ``warning: ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowlane.core.errors import FlowlaneError
from flowlane.model.bpmn import bpmn_to_process, yaml_to_bpmn
from flowlane.model.recipe import parse_process
from flowlane.model.yamlio import dump_yaml

bpmn_app = typer.Typer(
    help="Process files as BPMN diagrams and back.",
    no_args_is_help=True,
    add_completion=False,
)

OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write here instead of standard output")
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _fail(f"{path}: cannot read: {exc.strerror}") from exc


def _write(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _fail(f"{output}: cannot write: {exc.strerror}") from exc
    typer.echo(f"wrote {output}", err=True)


@bpmn_app.callback()
def _bpmn() -> None:
    """Process files as BPMN diagrams and back."""


@bpmn_app.command("export")
def export_command(
    file: Annotated[Path, typer.Argument(help="Process file (YAML or JSON)")],
    output: OutputOption = None,
) -> None:
    """Write a process file as a BPMN 2.0 diagram with an automatic layout."""
    raw = _read(file)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(f"{file}: not UTF-8 text") from exc
    try:
        xml = yaml_to_bpmn(text, source=str(file))
    except FlowlaneError as exc:
        raise _fail(str(exc)) from exc
    _write(xml, output)


@bpmn_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="BPMN diagram (.bpmn / .xml)")],
    output: OutputOption = None,
) -> None:
    """Read a BPMN diagram into a process file (YAML)."""
    raw = _read(file)
    try:
        data = bpmn_to_process(raw, source=str(file))
    except FlowlaneError as exc:
        raise _fail(str(exc)) from exc
    _, problems = parse_process(data, source=str(file))
    _write(dump_yaml(data, sort_keys=False), output)
    for problem in problems:
        typer.echo(f"warning: {problem}", err=True)
