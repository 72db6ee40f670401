"""Reading YAML 1.2 and JSON files into plain data.

YAML 1.2 (ruamel's default) keeps ``yes``/``no``/``on``/``off`` as strings, as users mean
them. Timestamps are left as text: the consumer converts them to the declared type, so that a
value never silently loses its time zone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import YAMLError

from flowlane.core.errors import ValidationError


class _TextTimestamps(SafeConstructor):
    """Safe constructor that leaves timestamps as their text."""


_TextTimestamps.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)


def _yaml() -> YAML:
    y = YAML(typ="safe", pure=True)
    y.Constructor = _TextTimestamps
    y.version = (1, 2)
    return y


def _plain(value: Any) -> Any:
    """Turn ruamel's containers into plain dicts and lists."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str | int) else k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def parse_text(text: str, *, source: str) -> Any:
    """Parse YAML 1.2 or JSON text; errors name ``source`` and the line."""
    if source.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"{source}:{exc.lineno}: invalid JSON: {exc.msg}",
                file=source,
                line=exc.lineno,
                problem=f"invalid JSON: {exc.msg}",
            ) from exc
    try:
        return _plain(_yaml().load(text))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValidationError(
            f"{source}{where}: invalid YAML: {problem}",
            file=source,
            line=mark.line + 1 if mark is not None else None,
            problem=f"invalid YAML: {problem}",
        ) from exc


def load_file(path: Path | str) -> Any:
    """Read and parse a YAML or JSON file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(
            f"{p}: cannot read: {exc.strerror}", file=str(p), problem=f"cannot read: {exc.strerror}"
        ) from exc
    return parse_text(text, source=str(p))


def dump_yaml(data: Any, *, sort_keys: bool = True) -> str:
    """Render plain data as YAML 1.2 text (``sort_keys=False``: mappings in their order)."""
    import io

    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.representer.sort_base_mapping_type_on_output = sort_keys
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()
