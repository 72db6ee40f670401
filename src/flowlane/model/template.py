"""Message templates: YAML front matter (subject, channel) and a Jinja2 Markdown body."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flowlane.core.errors import ValidationError
from flowlane.model.yamlio import parse_text

_ALLOWED = {"subject", "channel", "name", "description"}


@dataclass(frozen=True)
class Template:
    name: str
    subject: str
    channel: str
    body: str


def parse_template(text: str, *, name: str, source: str) -> Template:
    """Split ``---`` front matter from the body; unknown front-matter keys are errors."""
    meta: dict[str, object] = {}
    text = text.lstrip("\ufeff\n ")
    body = text
    if text.startswith("---"):
        parts = text.split("\n---", 1)
        if len(parts) != 2:
            raise ValidationError(f"{source}: front matter is not closed by '---'")
        head = parts[0][3:]
        body = parts[1].lstrip("-").lstrip("\n")
        loaded = parse_text(head, source=source) or {}
        if not isinstance(loaded, dict):
            raise ValidationError(f"{source}: front matter must be a mapping")
        meta = loaded
    unknown = sorted(set(meta) - _ALLOWED)
    if unknown:
        raise ValidationError(f"{source}: unknown front-matter key {unknown[0]!r}")
    channel = str(meta.get("channel", "email"))
    if channel not in ("email", "inapp", "webhook"):
        raise ValidationError(f"{source}: channel must be email, inapp or webhook, not {channel!r}")
    return Template(name=name, subject=str(meta.get("subject", "")), channel=channel, body=body)


def load_template(path: Path) -> Template:
    return parse_template(path.read_text(encoding="utf-8"), name=path.stem, source=str(path))
