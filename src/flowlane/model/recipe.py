"""Recipe folders: ``recipe.yaml``, ``objects.yaml``, ``processes/``, ``templates/``,
``forms/``, ``scenarios/`` (FORMATS.md "Recipe folder")."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from flowlane.core.errors import FlowlaneError, ValidationError
from flowlane.model.diagnostic import Diagnostic, from_pydantic
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
    forms: dict[str, Any] = field(default_factory=dict)
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
        return None, [Diagnostic(str(path), "", _strip(str(exc), str(path)))]
    return parse_process(data, source=str(path))


def _strip(message: str, source: str) -> str:
    return message[len(source) + 2:] if message.startswith(source + ":") else message


def load_recipe(root: Path | str) -> Recipe:
    """Load every file of a recipe folder, collecting problems instead of stopping."""
    root = Path(root)
    recipe = Recipe(root=root, meta=None, schema=None)
    meta_path = root / "recipe.yaml"
    if meta_path.exists():
        try:
            recipe.meta = RecipeFile.model_validate(load_file(meta_path))
        except PydanticError as exc:
            recipe.problems += from_pydantic(exc, file=str(meta_path))
        except ValidationError as exc:
            recipe.problems.append(Diagnostic(str(meta_path), "", _strip(str(exc),
                                                                         str(meta_path))))
    objects_path = root / "objects.yaml"
    try:
        data = load_file(objects_path) if objects_path.exists() else None
        recipe.schema = build_schema(data, source=str(objects_path))
    except FlowlaneError as exc:
        for line in str(exc).splitlines():
            recipe.problems.append(Diagnostic(str(objects_path), "", _strip(line,
                                                                            str(objects_path))))
    for path in sorted((root / "processes").glob("*.y*ml")) + sorted(
        (root / "processes").glob("*.json")
    ):
        try:
            raw = load_file(path)
        except ValidationError as exc:
            recipe.problems.append(Diagnostic(str(path), "", _strip(str(exc), str(path))))
            continue
        spec, problems = parse_process(raw, source=str(path))
        recipe.problems += problems
        if spec is not None:
            if spec.key in recipe.processes:
                recipe.problems.append(Diagnostic(str(path), "", f"process key {spec.key!r} "
                                                  f"is used by {recipe.sources[spec.key]} too"))
                continue
            recipe.processes[spec.key] = spec
            recipe.sources[spec.key] = str(path)
            recipe.raw[spec.key] = raw
    for path in sorted((root / "templates").glob("*")):
        if path.is_file():
            try:
                recipe.templates[path.stem] = load_template(path)
            except ValidationError as exc:
                recipe.problems.append(Diagnostic(str(path), "", _strip(str(exc), str(path))))
    for path in sorted((root / "forms").glob("*.y*ml")):
        try:
            recipe.forms[path.stem] = load_file(path)
        except ValidationError as exc:
            recipe.problems.append(Diagnostic(str(path), "", _strip(str(exc), str(path))))
    return recipe
