"""A FEEL subset (DMN's expression language) on top of flowlane's safe expressions.

FEEL text is translated into a Python expression of the safe subset and compiled by
:func:`flowlane.expr.script.compile_python_expression`, so nothing outside ADR 0003's
checked AST ever runs. Supported:

* **simple expressions**: numbers, ``"strings"``, ``true`` / ``false`` / ``null``, names and
  paths (``a.b``, ``a[0]``), ``+ - * / **``, comparisons ``= != < <= > >=``, ``and`` /
  ``or``, ``not(x)``, ``x between a and b``, ``x in <unary tests>``, ``if c then a else b``,
  list literals ``[1, 2]`` and calls of the safe function table (``len``, ``min``, ``abs`` …);
* **unary tests** (DMN input entries): ``-`` (anything), a value (equality; a list means
  membership), ``< e`` ``<= e`` ``> e`` ``>= e`` ``!= e`` ``= e``, intervals ``[a..b]``,
  ``(a..b)``, ``]a..b[`` (open / closed ends), comma lists (any), ``not(...)`` and
  expressions using ``?`` (the input value).

Everything else (contexts, ``for`` / ``some`` / ``every``, date literals, names with
spaces, FEEL's built-in library beyond the safe table) is an :class:`ExpressionError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowlane.core.errors import ExpressionError
from flowlane.expr.check import ARITY, MAX_SOURCE_LENGTH
from flowlane.expr.compiler import Expression
from flowlane.expr.script import MAX_EXPRESSION_LENGTH, compile_python_expression

MAX_FEEL_LENGTH = MAX_SOURCE_LENGTH
"""Longest FEEL text translated (the same limit as a flowlane expression's source)."""
MAX_NESTING = 40
"""Deepest nesting of parentheses, brackets, calls, unary minus, ``**`` and ``if``."""
MAX_OUTPUT_LENGTH = MAX_EXPRESSION_LENGTH
"""Longest Python text a translation may produce (unary tests repeat their subject)."""

INPUT_NAME = "dmn_input_value"
"""The variable the input value of a unary test is bound to (FEEL's ``?``)."""

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>\d+(?:\.\d+)?|\.\d+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z][A-Za-z0-9_]*)
  | (?P<op>\.\.|\*\*|<=|>=|!=|[-+*/<>=(),\[\]?.])
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset(
    {"and", "or", "not", "if", "then", "else", "between", "in", "true", "false", "null"}
)
_COMPARE = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ExpressionError(f"FEEL: unexpected {text[pos : pos + 10]!r} in {text!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind == "space":
            continue
        word = m.group()
        if kind == "name" and word in _KEYWORDS:
            kind = "kw"
        out.append(_Tok(kind, word))
    return out


class _Parser:
    """Recursive descent over FEEL tokens, producing Python source."""

    def __init__(self, text: str) -> None:
        if len(text) > MAX_FEEL_LENGTH:
            raise ExpressionError(
                f"FEEL: the expression is too long ({len(text)} characters, max {MAX_FEEL_LENGTH})"
            )
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.no_index = False
        self.depth = 0

    def enter(self) -> None:
        """Count one nesting level (undone by :meth:`leave`); refuse more than MAX_NESTING."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ExpressionError(f"FEEL: nested too deeply (max {MAX_NESTING} levels)")

    def leave(self) -> None:
        self.depth -= 1

    def sized(self, source: str) -> str:
        """``source``, unless the translation has grown past MAX_OUTPUT_LENGTH."""
        _check_output(len(source))
        return source

    # -- helpers -------------------------------------------------------------------------

    def peek(self, offset: int = 0) -> _Tok | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def at(self, *texts: str) -> bool:
        t = self.peek()
        return t is not None and t.text in texts and t.kind in ("op", "kw")

    def take(self, text: str) -> None:
        if not self.at(text):
            got = self.peek()
            where = repr(got.text) if got else "the end"
            raise ExpressionError(f"FEEL: expected {text!r}, found {where} in {self.text!r}")
        self.i += 1

    def done(self) -> bool:
        return self.i >= len(self.toks)

    def end(self) -> None:
        if not self.done():
            tok = self.toks[self.i]
            raise ExpressionError(f"FEEL: unexpected {tok.text!r} in {self.text!r}")

    # -- expressions ---------------------------------------------------------------------

    def expression(self) -> str:
        self.enter()
        try:
            return self.sized(self.conditional())
        finally:
            self.leave()

    def conditional(self) -> str:
        if self.at("if"):
            self.take("if")
            cond = self.expression()
            self.take("then")
            yes = self.expression()
            self.take("else")
            no = self.expression()
            return f"(({yes}) if ({cond}) else ({no}))"
        return self.disjunction()

    def disjunction(self) -> str:
        left = self.conjunction()
        while self.at("or"):
            self.take("or")
            left = f"({left} or {self.conjunction()})"
        return left

    def conjunction(self) -> str:
        left = self.comparison()
        while self.at("and"):
            self.take("and")
            left = f"({left} and {self.comparison()})"
        return left

    def comparison(self) -> str:
        left = self.additive()
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.text in _COMPARE:
            self.i += 1
            return f"({left} {_COMPARE[tok.text]} {self.additive()})"
        if self.at("between"):
            self.take("between")
            low = self.additive()
            self.take("and")
            high = self.additive()
            return f"({low} <= {left} <= {high})"
        if self.at("in"):
            self.take("in")
            if self.at("(") and not self._is_interval():
                # ``x in (tests)``: a parenthesised list of unary tests
                self.take("(")
                tests = self.positive_tests(left, stop=")")
                self.take(")")
                return tests
            return self.positive_test(left)
        return left

    def additive(self) -> str:
        left = self.multiplicative()
        while self.at("+", "-"):
            op = self.toks[self.i].text
            self.i += 1
            left = f"({left} {op} {self.multiplicative()})"
        return left

    def multiplicative(self) -> str:
        left = self.power()
        while self.at("*", "/"):
            op = self.toks[self.i].text
            self.i += 1
            left = f"({left} {op} {self.power()})"
        return left

    def power(self) -> str:
        left = self.unary()
        if self.at("**"):
            self.take("**")
            self.enter()
            try:
                return f"({left} ** {self.power()})"
            finally:
                self.leave()
        return left

    def unary(self) -> str:
        if self.at("-"):
            self.take("-")
            self.enter()
            try:
                return f"(-{self.unary()})"
            finally:
                self.leave()
        return self.postfix()

    def postfix(self) -> str:
        value = self.primary()
        while True:
            if self.at("."):
                self.take(".")
                tok = self.peek()
                if tok is None or tok.kind != "name":
                    raise ExpressionError(f"FEEL: a name must follow '.' in {self.text!r}")
                self.i += 1
                value = f"{value}.{tok.text}"
            elif self.at("[") and not self.no_index:
                self.take("[")
                index = self.expression()
                self.take("]")
                value = f"{value}[{index}]"
            else:
                return value

    def arguments(self) -> list[str]:
        self.take("(")
        args: list[str] = []
        if not self.at(")"):
            args.append(self.expression())
            while self.at(","):
                self.take(",")
                args.append(self.expression())
        self.take(")")
        return args

    def primary(self) -> str:
        tok = self.peek()
        if tok is None:
            raise ExpressionError(f"FEEL: unexpected end of {self.text!r}")
        self.i += 1
        if tok.kind == "number":
            return tok.text
        if tok.kind == "string":
            return repr(_unquote(tok.text))
        if tok.kind == "kw":
            return self.keyword(tok)
        if tok.kind == "name":
            if self.at("("):
                if tok.text not in ARITY:
                    raise ExpressionError(f"FEEL: function {tok.text!r} is not available")
                return f"{tok.text}({', '.join(self.arguments())})"
            return tok.text
        if tok.text == "?":
            return INPUT_NAME
        if tok.text == "(":
            inner = self.expression()
            self.take(")")
            return f"({inner})"
        if tok.text == "[":
            return self.list_literal()
        raise ExpressionError(f"FEEL: unexpected {tok.text!r} in {self.text!r}")

    def keyword(self, tok: _Tok) -> str:
        if tok.text in ("true", "false", "null"):
            return {"true": "True", "false": "False", "null": "None"}[tok.text]
        if tok.text == "not":
            args = self.arguments()
            if len(args) != 1:
                raise ExpressionError(f"FEEL: not() takes one argument in {self.text!r}")
            return f"(not {args[0]})"
        raise ExpressionError(f"FEEL: unexpected {tok.text!r} in {self.text!r}")

    def list_literal(self) -> str:
        items: list[str] = []
        if not self.at("]"):
            items.append(self.expression())
            while self.at(","):
                self.take(",")
                items.append(self.expression())
        self.take("]")
        return f"[{', '.join(items)}]"

    # -- unary tests ---------------------------------------------------------------------

    def positive_tests(self, subject: str, stop: str | None = None) -> str:
        tests = [self.positive_test(subject)]
        size = len(tests[0])
        while self.at(","):
            self.take(",")
            tests.append(self.positive_test(subject))
            size += len(tests[-1]) + 4
            _check_output(size)
        return tests[0] if len(tests) == 1 else "(" + " or ".join(tests) + ")"

    def positive_test(self, subject: str) -> str:
        self.enter()
        try:
            return self.sized(self.one_test(subject))
        finally:
            self.leave()

    def one_test(self, subject: str) -> str:
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.text in _COMPARE:
            self.i += 1
            return f"({subject} {_COMPARE[tok.text]} {self.additive()})"
        if tok is not None and tok.text in ("[", "(", "]") and self._is_interval():
            return self.interval(subject)
        start = self.i
        value = self.expression()
        uses_input = any(t.text == "?" for t in self.toks[start : self.i])
        if uses_input:
            return f"bool({value})"
        if value.startswith("[") and value.endswith("]"):
            return f"({subject} in {value})"
        return f"({subject} == {value})"

    def _is_interval(self) -> bool:
        depth = 1
        for tok in self.toks[self.i + 1 :]:
            if tok.text == ".." and depth == 1:
                return True
            if tok.text in ("(", "["):
                depth += 1
            elif tok.text in (")", "]"):
                depth -= 1
                if depth == 0:
                    return False
        return False

    def interval(self, subject: str) -> str:
        opener = self.toks[self.i].text
        self.i += 1
        self.no_index = True
        low = self.additive()
        self.take("..")
        high = self.additive()
        self.no_index = False
        tok = self.peek()
        if tok is None or tok.text not in ("]", ")", "["):
            raise ExpressionError(f"FEEL: an interval must end with ] ) or [ in {self.text!r}")
        self.i += 1
        low_op = ">=" if opener == "[" else ">"
        high_op = "<=" if tok.text == "]" else "<"
        return f"({subject} {low_op} {low} and {subject} {high_op} {high})"


def _check_output(length: int) -> None:
    if length > MAX_OUTPUT_LENGTH:
        raise ExpressionError(
            f"FEEL: the translation is too long (over {MAX_OUTPUT_LENGTH} characters)"
        )


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def feel_to_python(text: str) -> str:
    """The Python (safe subset) source of a FEEL simple expression."""
    parser = _Parser(text)
    if parser.done():
        raise ExpressionError("FEEL: the expression is empty")
    source = parser.expression()
    parser.end()
    return source


def unary_tests_to_python(text: str) -> str | None:
    """The Python source testing :data:`INPUT_NAME` against FEEL unary tests; None = ``-``."""
    stripped = text.strip()
    if stripped in ("", "-"):
        return None
    parser = _Parser(stripped)
    negate = False
    if (
        parser.at("not")
        and parser.peek(1) is not None
        and parser.peek(1).text == "("  # type: ignore[union-attr]
        and _closes_at_end(parser.toks, 1)
    ):
        negate = True
        parser.take("not")
        parser.take("(")
        parser.toks = parser.toks[:-1]
    source = parser.positive_tests(INPUT_NAME)
    parser.end()
    return f"(not {source})" if negate else source


def _closes_at_end(toks: list[_Tok], open_index: int) -> bool:
    depth = 0
    for j in range(open_index, len(toks)):
        if toks[j].text in ("(", "["):
            depth += 1
        elif toks[j].text in (")", "]"):
            depth -= 1
            if depth == 0:
                return j == len(toks) - 1
    return False


def compile_feel(text: str) -> Expression:
    """A FEEL simple expression as a checked flowlane expression."""
    return compile_python_expression(feel_to_python(text))


@dataclass(frozen=True)
class UnaryTests:
    """Compiled unary tests; :meth:`matches` tests an input value (``None`` test = any)."""

    source: str
    expression: Expression | None

    def matches(self, value: Any, variables: Mapping[str, Any]) -> bool:
        if self.expression is None:
            return True
        scope = dict(variables)
        scope[INPUT_NAME] = value
        return self.expression.test(scope)


def compile_unary_tests(text: str) -> UnaryTests:
    source = unary_tests_to_python(text)
    expression = None if source is None else compile_python_expression(source)
    return UnaryTests(text, expression)
