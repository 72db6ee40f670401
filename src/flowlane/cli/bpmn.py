"""``flowlane bpmn export FILE.yaml [-o out.bpmn]`` and ``flowlane bpmn import FILE.bpmn
[-o out.yaml]``: process files as BPMN 2.0 diagrams for the web designer and back (ADR 0010).

``export`` writes the process as BPMN with a fresh left-to-right layout; ``import`` reads a
diagram (flowlane's dialect, or plain BPMN where the element kinds map unambiguously) into
process-file YAML; ``import --standard`` keeps the diagram as standard BPMN and writes a
process file naming it (``bpmn: {file: ...}``, ADR 0012 "Hosting"). Without ``-o`` the
result goes to standard output. A file that cannot be read or converted prints
``error: <file>: ...`` naming the block or element and exits 1; an imported process that
breaks the process-file schema is still written, and its problems are printed as
``warning: ...``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from flowlane.core.errors import FlowlaneError
from flowlane.model.bpmn import bpmn_to_process, yaml_to_bpmn
from flowlane.model.bpmn_process import standard_process
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
    standard: Annotated[
        bool,
        typer.Option(
            "--standard",
            help="Run the diagram as standard BPMN (ADR 0012): write a process file that "
            "names it (bpmn: file) instead of translating it into blocks",
        ),
    ] = False,
    process: Annotated[
        str | None, typer.Option("--process", help="The process id (with --standard)")
    ] = None,
    key: Annotated[str | None, typer.Option("--key", help="The process key (with --standard)")] = (
        None
    ),
    object_type: Annotated[
        str, typer.Option("--object", help="The object type (with --standard)")
    ] = "user",
) -> None:
    """Read a BPMN diagram into a process file (YAML)."""
    raw = _read(file)
    if standard:
        _import_standard(file, raw, output, process=process, key=key, object_type=object_type)
        return
    try:
        data = bpmn_to_process(raw, source=str(file))
    except FlowlaneError as exc:
        raise _fail(str(exc)) from exc
    _, problems = parse_process(data, source=str(file))
    _write(dump_yaml(data, sort_keys=False), output)
    for problem in problems:
        typer.echo(f"warning: {problem}", err=True)


def _import_standard(
    file: Path,
    raw: bytes,
    output: Path | None,
    *,
    process: str | None,
    key: str | None,
    object_type: str,
) -> None:
    """The process file of a standard BPMN diagram. ``bpmn.file`` is the diagram's path
    relative to the output's folder (its name when writing to standard output); a diagram
    that cannot run prints every problem by element id and exits 1, writing nothing."""
    try:
        xml = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(f"{file}: not UTF-8 text") from exc
    name = file.name
    if output is not None:
        try:
            name = os.path.relpath(file.resolve(), output.resolve().parent)
        except ValueError:  # another drive
            name = str(file.resolve())
    data, problems = standard_process(
        xml, file=name, process=process, key=key, object_type=object_type
    )
    if problems:
        for element, problem in problems:
            typer.echo(f"error: {file}: {element + ': ' if element else ''}{problem}", err=True)
        raise typer.Exit(1)
    _write(dump_yaml(data, sort_keys=False), output)
