"""Rendering titles, texts and messages: Jinja2 in a sandbox, compiled once per source."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError, nodes
from jinja2.meta import find_undeclared_variables
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from flowlane.core.errors import FlowlaneError, ValidationError
from flowlane.expr.runtime import multiply, power
from flowlane.model.markdown import markdown_escape


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


def _markdown_value(value: Any) -> Any:
    """What ``{{ ... }}`` prints into a Markdown body: the value Markdown-escaped, unless it
    is marked safe (``|safe``, or a ``form_link``)."""
    return value if isinstance(value, Markup) else markdown_escape(str(value))


_MARKDOWN_ENV = _Sandbox(undefined=ChainableUndefined, autoescape=False, finalize=_markdown_value)

TEMPLATE_NAMES: frozenset[str] = frozenset(
    {"object", "vars", "counters", "answer", "now", "recipient", "form_link", "task_link"}
)
"""The top-level names a template may use: the scope of ``Step.scope`` (engine/step.py) and
``recipient`` of message blocks (engine/blocks.py ``_send``). Whoever adds a name to that scope
adds it here too: deploy reports any other name as an error (Jinja's own globals such as
``range`` and ``namespace`` are always allowed)."""


@dataclass(frozen=True)
class TemplateRefs:
    """What a template reads: the names it does not define itself, the attribute chains on
    those (``object.client.email`` -> ``('object', 'client', 'email')``; a called method's
    name left off), and the filters and tests it applies."""

    names: frozenset[str]
    paths: frozenset[tuple[str, ...]]
    filters: frozenset[str]
    tests: frozenset[str]


def _chain(node: nodes.Node) -> tuple[str, ...] | None:
    if isinstance(node, nodes.Name) and node.ctx == "load":
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        attr: object = node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        attr = node.arg.value
    else:
        return None
    base = _chain(node.node)
    return None if base is None or not isinstance(attr, str) else (*base, attr)


@lru_cache(maxsize=1024)
def template_refs(source: str) -> TemplateRefs | None:
    """What ``source`` reads (see :class:`TemplateRefs`); None when it does not parse."""
    try:
        ast = _ENV.parse(source)
    except TemplateSyntaxError:
        return None
    filters = frozenset(f.name for f in ast.find_all(nodes.Filter))
    tests = frozenset(t.name for t in ast.find_all(nodes.Test))
    # Jinja's analysis refuses unknown filters and tests: stand known ones in for them
    # (the parsed tree is this call's own).
    for f in ast.find_all(nodes.Filter):
        f.name = f.name if f.name in _ENV.filters else "string"
    for t in ast.find_all(nodes.Test):
        t.name = t.name if t.name in _ENV.tests else "defined"
    names = find_undeclared_variables(ast)
    bound = {n.name for n in ast.find_all(nodes.Name) if n.ctx != "load"}
    callees = {id(call.node) for call in ast.find_all(nodes.Call)}
    chains: set[tuple[str, ...]] = set()
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        chain = _chain(node)
        if chain is None or chain[0] in bound or chain[0] not in names:
            continue
        chains.add(chain[:-1] if id(node) in callees else chain)
    # Only the longest chains: ``object.client.email`` stands for ``object.client`` too.
    longest = {c for c in chains if len(c) > 1}
    paths = {c for c in longest if not any(o[: len(c)] == c and o != c for o in longest)}
    return TemplateRefs(
        names=frozenset(names),
        paths=frozenset(paths),
        filters=filters,
        tests=tests,
    )


def template_name_problems(source: str | None, extra: frozenset[str] = frozenset()) -> list[str]:
    """Unknown top-level names (not in :data:`TEMPLATE_NAMES`, Jinja's globals or ``extra``),
    filters and tests in ``source``; each problem names what is unknown."""
    refs = template_refs(source) if source and "{" in source else None
    if refs is None:
        return []
    known = TEMPLATE_NAMES | extra | set(_ENV.globals)
    allowed = ", ".join(sorted(TEMPLATE_NAMES | extra))
    out = [f"unknown name '{n}' (names: {allowed})" for n in sorted(refs.names - known)]
    out += [f"unknown filter '{f}'" for f in sorted(refs.filters - set(_ENV.filters))]
    out += [f"unknown test '{t}'" for t in sorted(refs.tests - set(_ENV.tests))]
    return out


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
    return _render(_compile(source), scope)


@lru_cache(maxsize=4096)
def _compile_markdown(source: str) -> Any:
    try:
        return _MARKDOWN_ENV.from_string(source)
    except TemplateError as exc:
        raise ValidationError(f"template does not parse: {exc}") from exc


def _trusted(make: Any) -> Any:
    def call(*args: Any) -> Markup:
        return Markup(make(*args))

    return call


def render_markdown(source: str | None, scope: dict[str, Any]) -> str:
    """Render a Markdown body (an email's): like :func:`render`, but every printed value is
    Markdown-escaped (:func:`flowlane.model.markdown.markdown_escape`), so that a value such
    as ``[Pay here](https://evil)`` stays text when the body becomes HTML. The template's own
    Markdown is kept; ``form_link(...)`` and ``|safe`` values are printed as they are."""
    if not source:
        return ""
    if "{" not in source:
        return source
    make = scope.get("form_link")
    if make is not None:
        scope = {**scope, "form_link": _trusted(make)}
    return _render(_compile_markdown(source), scope)


def _render(template: Any, scope: dict[str, Any]) -> str:
    try:
        return str(template.render(scope))
    except FlowlaneError:
        raise
    except Exception as exc:  # any failure inside user template code is the template's
        raise ValidationError(f"template failed: {type(exc).__name__}: {exc}") from exc
