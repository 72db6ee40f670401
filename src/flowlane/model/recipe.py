"""Recipe folders: ``recipe.yaml``, ``objects.yaml``, ``processes/``, ``templates/``,
``forms/``, ``scenarios/`` (FORMATS.md "Recipe folder")."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from flowlane.core.errors import FlowlaneError, ValidationError
from flowlane.model.bpmn_process import read_documents
from flowlane.model.diagnostic import Diagnostic, from_pydantic
from flowlane.model.form import FormSpec
from flowlane.model.process import ProcessFile
from flowlane.model.template import Template, load_template
from flowlane.model.yamlio import load_file
from flowlane.objects import Schema, build_schema


class RecipeFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    name: str
    description: str | None = None
    needs: list[str] = Field(default_factory=list)
    version: str | None = None


@dataclass
class Recipe:
    """A loaded recipe. ``problems`` holds parse errors; a recipe with errors is not run."""

    root: Path
    meta: RecipeFile | None
    schema: Schema | None
    processes: dict[str, ProcessFile] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    forms: dict[str, FormSpec] = field(default_factory=dict)
    form_sources: dict[str, str] = field(default_factory=dict)
    problems: list[Diagnostic] = field(default_factory=list)

    @property
    def scenarios(self) -> list[Path]:
        return sorted((self.root / "scenarios").glob("*.y*ml"))


def parse_process(data: Any, *, source: str) -> tuple[ProcessFile | None, list[Diagnostic]]:
    """Parse process data; return the model or the located problems."""
    if not isinstance(data, dict):
        return None, [Diagnostic(source, "", "a process file must be a mapping")]
    try:
        return ProcessFile.model_validate(data), []
    except PydanticError as exc:
        return None, from_pydantic(exc, file=source)


def load_process_file(path: Path) -> tuple[ProcessFile | None, list[Diagnostic]]:
    try:
        data = load_file(path)
    except ValidationError as exc:
        return None, [file_problem(path, exc)]
    spec, problems = parse_process(data, source=str(path))
    if spec is not None and spec.bpmn is not None:
        try:
            spec = spec.model_copy(update={"bpmn": read_documents(spec.bpmn, path.parent)})
        except FlowlaneError as exc:
            return None, [Diagnostic(str(path), "bpmn", str(exc))]
    return spec, problems


def file_problem(path: Path | str, exc: ValidationError) -> Diagnostic:
    """A file-level problem located at its line when the parser knows it."""
    line = exc.fields.get("line")
    return Diagnostic(str(path), str(line) if line else "", exc.fields.get("problem", str(exc)))


def _schema_problems(source: str, exc: FlowlaneError) -> list[Diagnostic]:
    """``build_schema`` reports lines ``source:type.field: problem``; locate each."""
    out = []
    for line in exc.fields.get("problems") or str(exc).splitlines():
        text = line[len(source) + 1 :] if line.startswith(source + ":") else line
        where, sep, problem = text.partition(": ")
        out.append(Diagnostic(source, where, problem) if sep else Diagnostic(source, "", text))
    return out


def _load_meta(recipe: Recipe) -> None:
    meta_path = recipe.root / "recipe.yaml"
    if not meta_path.exists():
        return
    try:
        recipe.meta = RecipeFile.model_validate(load_file(meta_path))
    except PydanticError as exc:
        recipe.problems += from_pydantic(exc, file=str(meta_path))
    except ValidationError as exc:
        recipe.problems.append(file_problem(meta_path, exc))


def _load_schema(recipe: Recipe) -> None:
    objects_path = recipe.root / "objects.yaml"
    try:
        data = load_file(objects_path) if objects_path.exists() else None
    except ValidationError as exc:
        recipe.problems.append(file_problem(objects_path, exc))
        return
    try:
        recipe.schema = build_schema(data, source=str(objects_path))
    except FlowlaneError as exc:
        recipe.problems += _schema_problems(str(objects_path), exc)


def _load_process(recipe: Recipe, path: Path) -> None:
    try:
        raw = load_file(path)
    except ValidationError as exc:
        recipe.problems.append(file_problem(path, exc))
        return
    spec, problems = parse_process(raw, source=str(path))
    recipe.problems += problems
    if spec is None:
        return
    if spec.bpmn is not None:
        try:
            spec = spec.model_copy(update={"bpmn": read_documents(spec.bpmn, path.parent)})
        except FlowlaneError as exc:
            recipe.problems.append(Diagnostic(str(path), "bpmn", str(exc)))
            return
    if spec.key in recipe.processes:
        recipe.problems.append(
            Diagnostic(
                str(path), "", f"process key {spec.key!r} is used by {recipe.sources[spec.key]} too"
            )
        )
        return
    recipe.processes[spec.key] = spec
    recipe.sources[spec.key] = str(path)
    recipe.raw[spec.key] = raw


def _load_extras(recipe: Recipe) -> None:
    for path in sorted((recipe.root / "templates").glob("*")):
        if path.is_file():
            try:
                recipe.templates[path.stem] = load_template(path)
            except ValidationError as exc:
                recipe.problems.append(file_problem(path, exc))
    for path in sorted((recipe.root / "forms").glob("*.y*ml")):
        _load_form(recipe, path)


def _load_form(recipe: Recipe, path: Path) -> None:
    try:
        recipe.forms[path.stem] = FormSpec.model_validate(load_file(path) or {})
        recipe.form_sources[path.stem] = str(path)
    except ValidationError as exc:
        recipe.problems.append(file_problem(path, exc))
    except PydanticError as exc:
        recipe.problems += from_pydantic(exc, file=str(path))


def load_recipe(root: Path | str) -> Recipe:
    """Load every file of a recipe folder, collecting problems instead of stopping."""
    recipe = Recipe(root=Path(root), meta=None, schema=None)
    if not recipe.root.is_dir():
        recipe.problems.append(Diagnostic(str(root), "", "not a recipe folder"))
        return recipe
    _load_meta(recipe)
    _load_schema(recipe)
    folder = recipe.root / "processes"
    for path in sorted([*folder.glob("*.y*ml"), *folder.glob("*.json")]):
        _load_process(recipe, path)
    _load_extras(recipe)
    return recipe


def _merge_objects(
    parts: list[tuple[Path, dict[str, Any]]],
) -> tuple[dict[str, Any], list[Diagnostic]]:
    """One objects.yaml from several: types side by side (a type defined differently by two
    recipes is a problem), dictionaries' values joined, groups joined."""
    types: dict[str, Any] = {}
    where: dict[str, Path] = {}
    dictionaries: dict[str, list[str]] = {}
    groups: list[str] = []
    problems: list[Diagnostic] = []
    for path, data in parts:
        for key, spec in (data.get("types") or {}).items():
            if key in types and types[key] != spec:
                problems.append(
                    Diagnostic(str(path), f"types.{key}", f"defined differently in {where[key]}")
                )
                continue
            types[key], where[key] = spec, path
        for key, values in (data.get("dictionaries") or {}).items():
            known = dictionaries.setdefault(key, [])
            known += [v for v in values or [] if v not in known]
        groups += [g for g in data.get("groups") or [] if g not in groups]
    return {"types": types, "dictionaries": dictionaries, "groups": groups}, problems


def merge_recipes(roots: list[Path]) -> Recipe:
    """Several recipe folders as one account's recipe (the demo installs several): their
    objects.yaml merged, processes, templates and forms side by side. A process key, template
    or form name used by two recipes, or a type defined differently, is a problem naming both
    files. The merged recipe's root is the first folder."""
    merged = Recipe(root=roots[0], meta=None, schema=None)
    parts: list[tuple[Path, dict[str, Any]]] = []
    origin: dict[str, str] = {}
    for root in roots:
        recipe = load_recipe(root)
        merged.problems += recipe.problems
        path = recipe.root / "objects.yaml"
        if path.exists():
            try:
                parts.append((path, load_file(path) or {}))
            except ValidationError as exc:
                merged.problems.append(file_problem(path, exc))
        for key, spec in recipe.processes.items():
            if key in merged.processes:
                merged.problems.append(
                    Diagnostic(
                        recipe.sources[key],
                        "",
                        f"process key {key!r} is used by {merged.sources[key]} too",
                    )
                )
                continue
            merged.processes[key] = spec
            merged.sources[key] = recipe.sources[key]
            merged.raw[key] = recipe.raw[key]
        for name, template in recipe.templates.items():
            if _taken(merged, origin, f"template {name!r}", str(root)):
                continue
            merged.templates[name] = template
        for name, form in recipe.forms.items():
            if _taken(merged, origin, f"form {name!r}", str(root)):
                continue
            merged.forms[name] = form
        merged.form_sources.update(recipe.form_sources)
    data, problems = _merge_objects(parts)
    merged.problems += problems
    try:
        merged.schema = build_schema(data, source="objects.yaml (merged)")
    except FlowlaneError as exc:
        merged.problems += _schema_problems("objects.yaml (merged)", exc)
    return merged


def _taken(merged: Recipe, origin: dict[str, str], what: str, root: str) -> bool:
    """Whether ``what`` (a template or form) came with an earlier recipe (a problem)."""
    if what in origin:
        merged.problems.append(Diagnostic(root, "", f"{what} is in {origin[what]} too"))
        return True
    origin[what] = root
    return False
