"""Parsing and the whitelist check: the only place that decides what an expression may say.

:func:`parse` turns source text into a checked :class:`ast.Expression` and collects the root
names and access paths it reads. Anything outside the safe subset raises
:class:`ExpressionError` with a message naming the construct; nothing is evaluated here.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from flowlane.core.errors import ExpressionError
from flowlane.expr.runtime import MAX_POWER_EXPONENT, MAX_REPEAT_ITEMS, check_power

MAX_SOURCE_LENGTH = 2000
MAX_DEPTH = 32
MAX_CONSTANT_REPEAT = 10_000

# Allowed number of positional arguments per function, and how to say it.
ARITY: dict[str, tuple[Collection[int], str]] = {
    "len": ((1,), "1 argument"),
    "min": (range(1, MAX_REPEAT_ITEMS), "at least 1 argument"),
    "max": (range(1, MAX_REPEAT_ITEMS), "at least 1 argument"),
    "abs": ((1,), "1 argument"),
    "round": ((1, 2), "1 or 2 arguments"),
    "lower": ((1,), "1 argument"),
    "upper": ((1,), "1 argument"),
    "today": ((0,), "no arguments"),
    "days": ((1,), "1 argument"),
    "hours": ((1,), "1 argument"),
    "minutes": ((1,), "1 argument"),
    "date": ((1, 3), "1 or 3 arguments"),
    "datetime": ((1,), "1 argument"),
    "str": ((1,), "1 argument"),
    "int": ((1,), "1 argument"),
    "float": ((1,), "1 argument"),
    "bool": ((1,), "1 argument"),
}

_OPERATORS: dict[type[ast.AST], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.MatMult: "@",
    ast.Invert: "~",
}
ALLOWED_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
ALLOWED_UNARY = (ast.UAdd, ast.USub, ast.Not)

_REFUSED: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.Starred: "starred expressions (*x) are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}


@dataclass(frozen=True)
class Checked:
    """A parsed expression that passed the whitelist, with what it reads."""

    tree: ast.Expression
    names: frozenset[str]
    paths: frozenset[tuple[str, ...]]


def parse(source: object, allowed: frozenset[str]) -> Checked:
    """Parse ``source`` and check it against the whitelist; names must be in ``allowed``.

    Leading whitespace and line breaks are accepted (the text is read as if parenthesised).
    Raises :class:`ExpressionError` on syntax errors and on anything outside the subset.
    """
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be text, not {type(source).__name__}")
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(
            f"expression is too long ({len(source)} characters, max {MAX_SOURCE_LENGTH})"
        )
    if not source.strip():
        raise ExpressionError("expression is empty")
    tree = _YamlWords(allowed).visit(_parse_wrapped(source))
    checker = _Checker(allowed)
    checker.visit(tree.body, 1)
    return Checked(tree, frozenset(checker.names), frozenset(checker.paths))


YAML_WORDS: dict[str, bool | None] = {"true": True, "false": False, "null": None}
"""Lower-case literals as YAML users write them (``if: "object.paid == true"``)."""


class _YamlWords(ast.NodeTransformer):
    """Read ``true``, ``false`` and ``null`` as the constants, unless they are scope names."""

    def __init__(self, allowed: frozenset[str]) -> None:
        self.allowed = allowed

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in YAML_WORDS and node.id not in self.allowed:
            return ast.copy_location(ast.Constant(YAML_WORDS[node.id]), node)
        return node


def _parse_wrapped(source: str) -> ast.Expression:
    # Wrapping in parentheses on their own lines allows line breaks and indentation while
    # keeping line/column numbers of the source (shifted by one line).
    try:
        tree = ast.parse(f"(\n{source}\n)", mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(_syntax_message(source, exc)) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        raise ExpressionError(f"syntax error: {exc}") from None
    if tree.body.lineno < 2:  # the source closed our parenthesis: not one expression
        raise ExpressionError("syntax error: unbalanced parentheses")
    return tree


def _syntax_message(source: str, exc: SyntaxError) -> str:
    """A syntax error's message with its position in the user's text (not the wrapper)."""
    lines = source.count("\n") + 1
    line = (exc.lineno or 0) - 1
    what = exc.msg or "invalid syntax"
    if line < 1 or line > lines:
        return f"syntax error at the end of the expression: {what}"
    column = exc.offset or 1
    if lines == 1:
        return f"syntax error at column {column}: {what}"
    return f"syntax error at line {line}, column {column}: {what}"


def _describe(node: ast.AST) -> str:
    """Source-like text of ``node`` for messages."""
    try:
        return ast.unparse(node)
    except Exception:  # pragma: no cover - unparse handles every parsed node
        return type(node).__name__


def _refusal(node: ast.AST) -> str:
    """The message refusing a construct that has no handler."""
    message = _REFUSED.get(type(node))
    if message is not None:
        return message
    return f"{type(node).__name__} is not allowed in an expression"


def _constant_number(node: ast.expr) -> Any:
    """The value of a numeric literal (``3``, ``-3``, ``2.5``), else ``None``."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _constant_number(node.operand)
        if value is None:
            return None
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    return None


def _is_sequence_literal(node: ast.expr) -> bool:
    """Whether ``node`` is a list, tuple or text literal (repetition candidates)."""
    return isinstance(node, ast.List | ast.Tuple) or _is_text_literal(node)


def _is_singleton(node: ast.expr) -> bool:
    """Whether ``node`` is ``None``, ``True`` or ``False``."""
    return isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, bool))


def _is_text_literal(node: ast.expr) -> bool:
    """Whether ``node`` is a text literal."""
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _is_literal(node: ast.expr) -> bool:
    """Whether ``node`` is a literal Python may fold into a constant (``is`` warns on those)."""
    literals = ast.Constant | ast.List | ast.Tuple | ast.Set | ast.Dict
    return isinstance(node, literals) or _constant_number(node) is not None


class _Checker:
    """Walks a parsed tree once, refusing what is not whitelisted, collecting names/paths."""

    def __init__(self, allowed: frozenset[str]) -> None:
        self.allowed = allowed
        self.names: set[str] = set()
        self.paths: set[tuple[str, ...]] = set()
        self._handlers: dict[type[ast.AST], Callable[[Any, int], None]] = {
            ast.Constant: self._constant,
            ast.Name: self._name,
            ast.Attribute: self._access,
            ast.Subscript: self._access,
            ast.Call: self._call,
            ast.BinOp: self._binary,
            ast.UnaryOp: self._unary,
            ast.BoolOp: self._children,
            ast.Compare: self._compare,
            ast.IfExp: self._children,
            ast.List: self._children,
            ast.Tuple: self._children,
            ast.Set: self._children,
            ast.Dict: self._dict,
            ast.Slice: self._children,
        }

    def visit(self, node: ast.AST, depth: int) -> None:
        """Check ``node`` found at nesting ``depth`` (the whole expression is depth 1)."""
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression is nested too deeply (max {MAX_DEPTH})")
        handler = self._handlers.get(type(node))
        if handler is None:
            raise ExpressionError(_refusal(node))
        handler(node, depth)

    def _children(self, node: ast.AST, depth: int) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.visit(child, depth + 1)

    def _constant(self, node: ast.Constant, depth: int) -> None:
        value = node.value
        if value is None or type(value) in (str, int, float, bool):
            return
        if isinstance(value, bytes):
            raise ExpressionError("bytes literals are not allowed")
        if isinstance(value, complex):
            raise ExpressionError("complex numbers are not allowed")
        raise ExpressionError(f"the literal {_describe(node)} is not allowed")

    def _check_name(self, name: str) -> None:
        if name.startswith("_"):
            raise ExpressionError(f"name '{name}' is private")
        if name in self.allowed:
            self.names.add(name)
            return
        if name in ARITY:
            raise ExpressionError(f"function '{name}' must be called, as in {name}(...)")
        choices = ", ".join(sorted(self.allowed)) or "(none)"
        raise ExpressionError(f"name '{name}' is not allowed here; use one of: {choices}")

    def _name(self, node: ast.Name, depth: int) -> None:
        self._check_name(node.id)
        self.paths.add((node.id,))

    def _access(self, node: ast.Attribute | ast.Subscript, depth: int) -> None:
        # Walk the whole chain ``root.a['b'][x].c`` at once so that only its longest
        # statically known path from the root name is recorded.
        parts: list[str] = []
        current: ast.expr = node
        while isinstance(current, ast.Attribute | ast.Subscript):
            if depth > MAX_DEPTH:
                raise ExpressionError(f"expression is nested too deeply (max {MAX_DEPTH})")
            if isinstance(current, ast.Attribute):
                if current.attr.startswith("_"):
                    raise ExpressionError(f"attribute '{current.attr}' is private")
                parts.append(current.attr)
            else:
                self.visit(current.slice, depth + 1)
                key = current.slice
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    parts.append(key.value)
                else:
                    parts.clear()  # a computed key: the path ends below it
            current = current.value
            depth += 1
        if isinstance(current, ast.Name):
            if depth > MAX_DEPTH:
                raise ExpressionError(f"expression is nested too deeply (max {MAX_DEPTH})")
            self._check_name(current.id)
            self.paths.add((current.id, *reversed(parts)))
        else:
            self.visit(current, depth)

    def _call(self, node: ast.Call, depth: int) -> None:
        func = node.func
        if isinstance(func, ast.Name) and (func.lineno, func.col_offset) != (
            node.lineno,
            node.col_offset,
        ):  # ``(len)(x)``: only a bare name directly followed by its arguments is a call
            raise ExpressionError(
                f"calling ({func.id}) is not allowed; call a function by its bare name, "
                f"as in {func.id}(...)"
            )
        if not isinstance(func, ast.Name):
            raise ExpressionError(
                f"calling {_describe(func)} is not allowed; only these functions can be "
                f"called by name: {', '.join(sorted(ARITY))}"
            )
        name = func.id
        if name.startswith("_"):
            raise ExpressionError(f"name '{name}' is private")
        if name not in ARITY:
            raise ExpressionError(f"function '{name}' is not allowed")
        if node.keywords:
            raise ExpressionError(f"keyword arguments are not allowed (in {name}(...))")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise ExpressionError(f"starred arguments are not allowed (in {name}(...))")
        counts, wanted = ARITY[name]
        if len(node.args) not in counts:
            raise ExpressionError(f"function '{name}' takes {wanted} ({len(node.args)} given)")
        if name in ("today", "datetime"):  # read the scope's ``now`` (its zone)
            self.names.add("now")
            self.paths.add(("now",))
        for arg in node.args:
            self.visit(arg, depth + 1)

    def _binary(self, node: ast.BinOp, depth: int) -> None:
        if not isinstance(node.op, ALLOWED_BINARY):
            raise ExpressionError(f"operator '{_OPERATORS[type(node.op)]}' is not allowed")
        if isinstance(node.op, ast.Pow):
            self._check_constant_power(node)
        elif isinstance(node.op, ast.Mult):
            self._check_constant_repeat(node)
        elif isinstance(node.op, ast.Mod) and _is_text_literal(node.left):
            raise ExpressionError("string formatting with '%' is not allowed")
        self.visit(node.left, depth + 1)
        self.visit(node.right, depth + 1)

    @staticmethod
    def _check_constant_power(node: ast.BinOp) -> None:
        exponent = _constant_number(node.right)
        if exponent is None:
            return
        if exponent > MAX_POWER_EXPONENT:  # refused whatever the base
            raise ExpressionError(f"exponent {exponent!r} is too large (max {MAX_POWER_EXPONENT})")
        base = _constant_number(node.left)
        if base is not None:
            check_power(base, exponent)

    @staticmethod
    def _check_constant_repeat(node: ast.BinOp) -> None:
        for sequence, times in ((node.left, node.right), (node.right, node.left)):
            count = _constant_number(times)
            if (
                _is_sequence_literal(sequence)
                and isinstance(count, int)
                and count > MAX_CONSTANT_REPEAT
            ):
                raise ExpressionError(
                    f"repetition by {count} is too large (max {MAX_CONSTANT_REPEAT})"
                )

    def _compare(self, node: ast.Compare, depth: int) -> None:
        operands = [node.left, *node.comparators]
        for index, op in enumerate(node.ops):
            pair = operands[index : index + 2]
            if isinstance(op, ast.Is | ast.IsNot) and (
                not any(_is_singleton(operand) for operand in pair)
                or any(_is_literal(operand) and not _is_singleton(operand) for operand in pair)
            ):
                raise ExpressionError(
                    "'is' and 'is not' only compare with None, True or False; use == or !="
                )
        self._children(node, depth)

    def _unary(self, node: ast.UnaryOp, depth: int) -> None:
        if not isinstance(node.op, ALLOWED_UNARY):
            raise ExpressionError(f"operator '{_OPERATORS[type(node.op)]}' is not allowed")
        self.visit(node.operand, depth + 1)

    def _dict(self, node: ast.Dict, depth: int) -> None:
        if any(key is None for key in node.keys):
            raise ExpressionError("dict unpacking (**) is not allowed")
        self._children(node, depth)
