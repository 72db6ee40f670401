"""Rendering titles, texts and messages: Jinja2 in a sandbox, compiled once per source."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from flowlane.core.errors import FlowlaneError, ValidationError
from flowlane.expr.runtime import multiply, power


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox (templates cannot change what they read), with ``**`` and
    ``*`` bounded like expressions (no huge powers or repetitions)."""

    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            return power(left, right)
        if operator == "*":
            return multiply(left, right)
        return super().call_binop(context, operator, left, right)


_ENV = _Sandbox(undefined=ChainableUndefined, autoescape=False)


@lru_cache(maxsize=4096)
def _compile(source: str) -> Any:
    try:
        return _ENV.from_string(source)
    except TemplateError as exc:
        raise ValidationError(f"template does not parse: {exc}") from exc


def template_problem(source: str | None) -> str | None:
    """Why ``source`` is not a Jinja2 template that parses, or None."""
    if not source:
        return None
    try:
        _ENV.parse(source)
    except TemplateSyntaxError as exc:
        where = f" (line {exc.lineno})" if "\n" in source else ""
        return f"template does not parse: {exc.message}{where}"
    return None


def render(source: str | None, scope: dict[str, Any]) -> str:
    """Render ``source`` with ``scope``; plain text without ``{`` skips Jinja entirely."""
    if not source:
        return ""
    if "{" not in source:
        return source
    try:
        return str(_compile(source).render(scope))
    except FlowlaneError:
        raise
    except Exception as exc:  # any failure inside user template code is the template's
        raise ValidationError(f"template failed: {type(exc).__name__}: {exc}") from exc
