"""bpmn-engine front ends: ``${...}`` placeholders and a safe JavaScript subset (ADR 0012).

Diagrams written for bpmn-engine carry ``${environment.variables.x}`` placeholders (timer
definitions, conditions) and small JavaScript conditions and script bodies
(``this.variables.input < 2``, ``next(null, !environment.variables.stopLoop)``,
``variables.input += 1; next();``). Nothing of them runs as host code: each expression is
translated into flowlane's checked expression language (:mod:`flowlane.expr.compiler`) and
each statement is interpreted here.

* :func:`compile_js_expression` — literals (numbers, strings, ``true`` / ``false`` /
  ``null`` / ``undefined``), variable paths under ``this.variables``, ``variables``,
  ``environment.variables`` (member access ``.x`` and ``[k]``), ``.length``, ``!``, unary
  ``-`` / ``+``, ``* / % + -``, comparisons (``<`` ``<=`` ``>`` ``>=`` ``==`` ``!=``
  ``===`` ``!==``), ``&&``, ``||``, ``? :`` and parentheses. A whole condition of the form
  ``next(null, EXPR)`` stands for ``EXPR`` (bpmn-engine's callback conditions).
* :func:`compile_placeholder` — text with ``${expr}`` placeholders: a lone placeholder is the
  value of its expression, a placeholder inside text is converted to text.
  ``${environment.services.fn}`` names a host service: :func:`service_name` reads it;
  it is never an expression.
* :func:`compile_js_script` — script bodies: assignments to variable paths (``=``, ``+=``,
  ``-=``, ``*=``, ``/=``, ``%=``, ``++``, ``--``), ``if`` / ``else`` with blocks, empty
  statements, and the completion callback ``next()`` / ``next(null, value)`` /
  ``next(new Error("text"))``. Running a script answers ``done`` (``next`` was called) or
  ``pending`` (it never was: the task does not complete by itself); ``next(err)`` raises
  :class:`ScriptThrow`. Declarations, loops, functions, calls of anything but ``next``,
  host objects — everything else is refused with an :class:`ExpressionError` naming it.

Known differences from JavaScript, by design: ``==`` does not coerce types (it is ``===``),
``+`` does not concatenate a string with a number, and an empty list or dict is falsy.
"""

from __future__ import annotations

import ast
import keyword
import re
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from flowlane.core.errors import ExpressionError
from flowlane.expr.compiler import Expression, compile_expression
from flowlane.expr.script import ScriptError, checked_value, free_names, set_checked

JS_LANGUAGES = frozenset(
    {
        "javascript",
        "js",
        "text/javascript",
        "application/javascript",
        "ecmascript",
        "text/ecmascript",
        "application/ecmascript",
    }
)
PLACEHOLDER_LANGUAGES = frozenset({"placeholder", "bpmn-engine"})
MAX_SOURCE_LENGTH = 20_000
MAX_STATEMENTS = 200
MAX_NESTING = 40
"""Deepest nesting of parentheses, unary operators, brackets, blocks and ``if`` statements."""

_ROOTS: tuple[tuple[str, ...], ...] = (
    ("this", "environment", "variables"),
    ("environment", "variables"),
    ("this", "variables"),
    ("variables",),
)
"""Where variables live in bpmn-engine's script and expression context."""
_SERVICE_ROOTS: tuple[tuple[str, ...], ...] = (
    ("this", "environment", "services"),
    ("environment", "services"),
)

_PREFIXES = frozenset(r[:i] for r in _ROOTS + _SERVICE_ROOTS for i in range(1, len(r) + 1))

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<name>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<op>===|!==|==|!=|<=|>=|&&|\|\||\+\+|--|\+=|-=|\*=|/=|%=|[-+*/%<>=!?:.,;()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_KEYWORDS = {"true": True, "false": False, "null": None, "undefined": None}
_REFUSED_WORDS = {
    "var": "declarations (var / let / const) are not allowed",
    "let": "declarations (var / let / const) are not allowed",
    "const": "declarations (var / let / const) are not allowed",
    "function": "functions are not allowed",
    "return": "return is not allowed",
    "for": "loops are not allowed",
    "while": "loops are not allowed",
    "do": "loops are not allowed",
    "new": "new is allowed only as next(new Error(...))",
    "delete": "delete is not allowed",
    "typeof": "typeof is not allowed",
    "throw": "throw is not allowed; call next(new Error(...))",
    "try": "try is not allowed",
    "switch": "switch is not allowed",
    "class": "classes are not allowed",
    "import": "import is not allowed",
    "require": "require is not allowed",
}
_COMPARE: dict[str, ast.cmpop] = {
    "<": ast.Lt(),
    "<=": ast.LtE(),
    ">": ast.Gt(),
    ">=": ast.GtE(),
    "==": ast.Eq(),
    "===": ast.Eq(),
    "!=": ast.NotEq(),
    "!==": ast.NotEq(),
}
_ARITH: dict[str, ast.operator] = {
    "+": ast.Add(),
    "-": ast.Sub(),
    "*": ast.Mult(),
    "/": ast.Div(),
    "%": ast.Mod(),
}
_ASSIGN_OPS = {"=": None, "+=": "+", "-=": "-", "*=": "*", "/=": "/", "%=": "%"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    """``number``, ``string``, ``name``, ``op`` or ``end``."""
    text: str
    value: Any = None


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _tokens(source: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            raise ExpressionError(f"JavaScript: unexpected character {source[pos]!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "space":
            continue
        if kind == "number":
            number = float(text)
            toks.append(_Tok(kind, text, int(number) if number.is_integer() else number))
        elif kind == "string":
            toks.append(_Tok(kind, text, _unescape(text[1:-1])))
        else:
            toks.append(_Tok(kind, text))
    toks.append(_Tok("end", ""))
    return toks


def _call(name: str, *args: ast.expr) -> ast.expr:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


def _not(operand: ast.expr) -> ast.expr:
    return ast.UnaryOp(op=ast.Not(), operand=operand)


@dataclass(frozen=True)
class _Path:
    """A variable path: ``variables.a.b`` is ``("a", "b")``; a computed key is an expr."""

    parts: tuple[str | int | ast.expr, ...]

    def load(self) -> ast.expr:
        head = self.parts[0]
        assert isinstance(head, str)
        node: ast.expr = ast.Name(id=head, ctx=ast.Load())
        for part in self.parts[1:]:
            if isinstance(part, str) and part.isidentifier() and not keyword.iskeyword(part):
                node = ast.Attribute(value=node, attr=part, ctx=ast.Load())
            else:
                key = part if isinstance(part, ast.expr) else ast.Constant(value=part)
                node = ast.Subscript(value=node, slice=key, ctx=ast.Load())
        return node


class _Parser:
    def __init__(self, source: str) -> None:
        if not isinstance(source, str):
            raise ExpressionError("JavaScript must be text")
        if len(source) > MAX_SOURCE_LENGTH:
            raise ExpressionError(f"JavaScript is too long ({len(source)} characters)")
        self.source = source
        self.toks = _tokens(source)
        self.i = 0
        self.depth = 0

    # ---- tokens ---------------------------------------------------------------------------

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def peek(self, ahead: int = 1) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def at(self, *texts: str) -> bool:
        return self.tok.kind in ("op", "name") and self.tok.text in texts

    def take(self) -> _Tok:
        t = self.tok
        if t.kind != "end":
            self.i += 1
        return t

    def expect(self, text: str) -> None:
        if not self.at(text):
            raise self.error(f"expected {text!r}")
        self.take()

    def enter(self) -> None:
        """Count one nesting level (undone by :meth:`leave`); refuse more than MAX_NESTING."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(f"nested too deeply (max {MAX_NESTING} levels)")

    def leave(self) -> None:
        self.depth -= 1

    def error(self, message: str) -> ExpressionError:
        near = self.tok.text or "the end"
        return ExpressionError(f"JavaScript: {message} at {near!r} (in {self.source.strip()!r})")

    # ---- expressions ----------------------------------------------------------------------

    def expression(self) -> ast.expr:
        self.enter()
        try:
            return self.conditional()
        finally:
            self.leave()

    def conditional(self) -> ast.expr:
        test = self.logical_or()
        if self.at("?"):
            self.take()
            body = self.expression()
            self.expect(":")
            orelse = self.expression()
            return ast.IfExp(test=test, body=body, orelse=orelse)
        return test

    def logical_or(self) -> ast.expr:
        left = self.logical_and()
        values = [left]
        while self.at("||"):
            self.take()
            values.append(self.logical_and())
        return left if len(values) == 1 else ast.BoolOp(op=ast.Or(), values=values)

    def logical_and(self) -> ast.expr:
        left = self.equality()
        values = [left]
        while self.at("&&"):
            self.take()
            values.append(self.equality())
        return left if len(values) == 1 else ast.BoolOp(op=ast.And(), values=values)

    def equality(self) -> ast.expr:
        left = self.relational()
        while self.at("==", "!=", "===", "!=="):
            op = _COMPARE[self.take().text]
            left = ast.Compare(left=left, ops=[op], comparators=[self.relational()])
        return left

    def relational(self) -> ast.expr:
        left = self.additive()
        while self.at("<", "<=", ">", ">="):
            op = _COMPARE[self.take().text]
            left = ast.Compare(left=left, ops=[op], comparators=[self.additive()])
        return left

    def additive(self) -> ast.expr:
        left = self.multiplicative()
        while self.at("+", "-"):
            op = _ARITH[self.take().text]
            left = ast.BinOp(left=left, op=op, right=self.multiplicative())
        return left

    def multiplicative(self) -> ast.expr:
        left = self.unary()
        while self.at("*", "/", "%"):
            op = _ARITH[self.take().text]
            left = ast.BinOp(left=left, op=op, right=self.unary())
        return left

    def unary(self) -> ast.expr:
        if self.at("!", "-", "+"):
            self.enter()
            try:
                if self.take().text == "!":
                    return _not(self.unary())
                op: ast.unaryop = ast.USub() if self.toks[self.i - 1].text == "-" else ast.UAdd()
                return ast.UnaryOp(op=op, operand=self.unary())
            finally:
                self.leave()
        if self.at("++", "--"):
            raise self.error("++ / -- are statements, not expressions")
        return self.primary()

    def primary(self) -> ast.expr:
        t = self.tok
        if t.kind in ("number", "string"):
            self.take()
            return ast.Constant(value=t.value)
        if self.at("("):
            self.take()
            inner = self.expression()
            self.expect(")")
            return inner
        if t.kind == "name":
            if t.text in _KEYWORDS:
                self.take()
                return ast.Constant(value=_KEYWORDS[t.text])
            path, length = self.path()
            node = path.load()
            return _call("len", node) if length else node
        raise self.error("expected a value")

    def path(self) -> tuple[_Path, bool]:
        """A variable path (``.length`` at its end is reported separately)."""
        root = self.root()
        parts, length = self.members()
        if self.at("("):
            raise self.error("calling methods is not allowed")
        if not parts:
            raise self.error("name a variable after " + ".".join(root))
        head = parts[0]
        if not isinstance(head, str):
            raise self.error("a variable name must be a literal")
        if head.startswith("_") or not head.isidentifier() or keyword.iskeyword(head):
            raise self.error(f"variable name {head!r} is not allowed")
        return _Path(tuple(parts)), length

    def root(self) -> tuple[str, ...]:
        """``this.variables`` / ``variables`` / ``environment.variables``; nothing else."""
        start = self.tok
        if start.kind != "name":
            raise self.error("expected a variable")
        if start.text in _REFUSED_WORDS:
            raise self.error(_REFUSED_WORDS[start.text])
        names = [self.take().text]
        while (
            self.at(".") and self.peek().kind == "name" and (*names, self.peek().text) in _PREFIXES
        ):
            self.take()
            names.append(self.take().text)
        root = tuple(names)
        if root in _SERVICE_ROOTS:
            raise self.error("host services (environment.services) are not expressions")
        if root not in _ROOTS:
            what = ".".join(root)
            if self.at("("):
                raise self.error(f"calling {what}() is not allowed")
            raise self.error(
                f"{what!r} is not a variable (read this.variables.x, variables.x "
                "or environment.variables.x)"
            )
        return root

    def members(self) -> tuple[list[str | int | ast.expr], bool]:
        parts: list[str | int | ast.expr] = []
        length = False
        while self.at(".", "["):
            if self.take().text == ".":
                if self.tok.kind != "name":
                    raise self.error("expected a property name")
                name = self.take().text
                if name == "length" and parts and not self.at(".", "[", "("):
                    length = True
                    break
                parts.append(name)
            else:
                key = self.expression()
                self.expect("]")
                if isinstance(key, ast.Constant) and isinstance(key.value, str | int):
                    parts.append(key.value)
                else:
                    parts.append(key)
        return parts, length

    def end_of_expression(self) -> None:
        while self.at(";"):
            self.take()
        if self.tok.kind != "end":
            raise self.error("unexpected text after the expression")

    # ---- statements -----------------------------------------------------------------------

    def statements(self, until: str | None = None) -> list[_Op]:
        ops: list[_Op] = []
        while not (self.tok.kind == "end" or (until is not None and self.at(until))):
            op = self.statement()
            if op is not None:
                ops.append(op)
        return ops

    def statement(self) -> _Op | None:
        self.enter()
        try:
            return self.one_statement()
        finally:
            self.leave()

    def one_statement(self) -> _Op | None:
        if self.at(";"):
            self.take()
            return None
        if self.at("{"):
            self.take()
            body = self.statements("}")
            self.expect("}")
            return _sequence(body)
        if self.at("if") and self.tok.kind == "name":
            return self.branch()
        if self.at("else"):
            raise self.error("else without if")
        if self.tok.kind == "name" and self.tok.text == "next" and self.peek().text == "(":
            op = self.next_call()
        elif self.at("++", "--"):
            step = self.take().text
            path, length = self.path()
            op = self.update(path, length, "+" if step == "++" else "-", ast.Constant(value=1))
        else:
            path, length = self.path()
            if self.at("++", "--"):
                step = self.take().text
                op = self.update(path, length, "+" if step == "++" else "-", ast.Constant(value=1))
            elif self.tok.kind == "op" and self.tok.text in _ASSIGN_OPS:
                operator = _ASSIGN_OPS[self.take().text]
                value = self.expression()
                if operator is None:
                    op = self.update(path, length, None, value)
                else:
                    op = self.update(path, length, operator, value)
            else:
                raise self.error("a statement must assign a variable, call next() or be an if")
        if self.at(";"):
            self.take()
        return op

    def branch(self) -> _Op:
        self.take()
        self.expect("(")
        test = _compile(self.expression())
        self.expect(")")
        body = self.statement()
        orelse: _Op | None = None
        if self.at("else"):
            self.take()
            orelse = self.statement()

        def branch(run: _Run) -> None:
            chosen = body if test.test(run.variables) else orelse
            if chosen is not None:
                chosen(run)

        return branch

    def next_call(self) -> _Op:
        self.take()
        self.expect("(")
        args: list[ast.expr | _Thrown] = []
        while not self.at(")"):
            args.append(self.new_error() if self.at("new") else self.expression())
            if not self.at(")"):
                self.expect(",")
        self.expect(")")
        first = args[0] if args else None
        if isinstance(first, _Thrown):
            thrown = _compile(first.message)

            def fail(run: _Run) -> None:
                if run.outcome is None:
                    run.outcome = "error"
                    run.message = str(thrown.evaluate(run.variables))

            return fail
        if first is not None and not (isinstance(first, ast.Constant) and first.value is None):
            raise self.error("next(err) needs null or new Error(...) as the error")
        for extra in args[1:]:
            if isinstance(extra, ast.expr):
                _compile(extra)  # checked; the result value is not used

        def done(run: _Run) -> None:
            if run.outcome is None:
                run.outcome = "done"

        return done

    def new_error(self) -> _Thrown:
        """``new Error(message)`` (any ``...Error``), only as the argument of ``next``."""
        self.take()
        if not (self.tok.kind == "name" and self.tok.text.endswith("Error")):
            raise self.error("only new Error(...) can be passed to next()")
        kind = self.take().text
        self.expect("(")
        message: ast.expr = ast.Constant(value=kind)
        if not self.at(")"):
            message = self.expression()
        self.expect(")")
        return _Thrown(message if _is_text(message) else _call("str", message))

    def update(self, path: _Path, length: bool, operator: str | None, value: ast.expr) -> _Op:
        if length:
            raise self.error("assigning to .length is not allowed")
        if operator is not None:
            value = ast.BinOp(left=path.load(), op=_ARITH[operator], right=value)
        compiled = _compile(value)
        keys = [_compile(p) if isinstance(p, ast.expr) else p for p in path.parts]

        def store(run: _Run) -> None:
            result = compiled.evaluate(run.variables)
            holder: Any = run.variables
            resolved: list[str] = []
            for part in keys:
                k = part.evaluate(run.variables) if isinstance(part, Expression) else part
                if not isinstance(k, str):
                    raise ScriptError(
                        f"cannot set a variable: a property name must be text, "
                        f"not {type(k).__name__}"
                    )
                resolved.append(k)
            for k in resolved[:-1]:
                holder = holder.get(k) if isinstance(holder, dict) else None
                if not isinstance(holder, dict):
                    raise ScriptError(f"cannot set {_dotted(resolved)}: {k} is not an object")
            if len(resolved) == 1:
                holder[resolved[0]] = checked_value(result)
            else:
                set_checked(holder, resolved[-1], result, run.variables[resolved[0]])

        return store


@dataclass(eq=False)
class _Thrown:
    message: ast.expr


@dataclass
class _Run:
    variables: MutableMapping[str, Any]
    outcome: str | None = None
    message: str = ""


_Op = Callable[[_Run], None]


def _sequence(ops: list[_Op]) -> _Op:
    def run_all(run: _Run) -> None:
        for op in ops:
            op(run)

    return run_all


def _dotted(keys: list[Any]) -> str:
    return ".".join(str(k) for k in keys)


def _is_text(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _compile(tree: ast.expr) -> Expression:
    try:
        node = ast.fix_missing_locations(ast.Expression(body=tree))
        source = ast.unparse(node.body)
    except RecursionError:  # a long chain of binary operators makes a deep tree
        raise ExpressionError("JavaScript: the expression is nested too deeply") from None
    return compile_expression(source, names=free_names(node))


def _strip_next(p: _Parser) -> None:
    """``next(null, EXPR)`` as a whole condition: position the parser on EXPR."""
    if p.at("next") and p.peek().text == "(":
        p.take()
        p.take()
        if not (p.tok.kind == "name" and p.tok.text in ("null", "undefined")):
            raise p.error("a condition of the form next(err, value) needs null as err")
        p.take()
        p.expect(",")


def compile_js_expression(source: str) -> Expression:
    """A JavaScript condition or value of the safe subset as a checked flowlane expression."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("JavaScript expression is empty")
    p = _Parser(source)
    wrapped = p.at("next") and p.peek().text == "("
    _strip_next(p)
    tree = p.expression()
    if wrapped:
        p.expect(")")
    p.end_of_expression()
    return _compile(tree)


_PLACEHOLDER = re.compile(r"\$\{([^{}]*)\}")


def service_name(text: str) -> str | None:
    """``${environment.services.fn}`` (or ``...fn()``) → ``fn``; None for anything else."""
    m = re.fullmatch(
        r"\s*\$\{\s*(?:this\.)?environment\.services\.([A-Za-z_$][\w$]*)\s*(?:\(\s*\))?\s*\}\s*",
        text or "",
    )
    return m.group(1) if m else None


def has_placeholder(text: str) -> bool:
    return bool(_PLACEHOLDER.search(text or ""))


def compile_placeholder(text: str) -> Expression:
    """Text with ``${expr}`` placeholders as one checked expression (see the module doc)."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("expression is empty")
    stripped = text.strip()
    pieces: list[ast.expr] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(stripped):
        if m.start() > pos:
            pieces.append(ast.Constant(value=stripped[pos : m.start()]))
        inner = m.group(1)
        if service_name(m.group()) is not None:
            raise ExpressionError(f"{m.group()} names a host service, not a value")
        p = _Parser(inner)
        value = p.expression()
        p.end_of_expression()
        pieces.append(value)
        pos = m.end()
    if not pieces:
        raise ExpressionError(f"no ${{...}} placeholder in {stripped!r}")
    if pos < len(stripped):
        pieces.append(ast.Constant(value=stripped[pos:]))
    if len(pieces) == 1:
        return _compile(pieces[0])
    node: ast.expr | None = None
    for piece in pieces:
        text_piece = piece if _is_text(piece) else _call("str", piece)
        node = text_piece if node is None else ast.BinOp(left=node, op=ast.Add(), right=text_piece)
    assert node is not None
    return _compile(node)


class ScriptThrow(ScriptError):
    """A JavaScript script called ``next(new Error(message))``: the task throws."""

    code = "script_threw"


@dataclass(frozen=True)
class JsScript:
    """A checked script body; :meth:`run` changes the variables in place."""

    source: str
    _ops: tuple[_Op, ...] = field(repr=False, compare=False)

    def run(self, variables: MutableMapping[str, Any]) -> str:
        """``done`` when the script called ``next()``, ``pending`` when it never did.

        Raises :class:`ScriptThrow` for ``next(new Error(...))`` and :class:`ScriptError`
        (an :class:`ExpressionError`) when a statement cannot run.
        """
        run = _Run(variables)
        for op in self._ops:
            op(run)
        if run.outcome == "error":
            raise ScriptThrow(run.message or "Error")
        return run.outcome or "pending"


def compile_js_script(source: str) -> JsScript:
    """Check and compile a script body; raises :class:`ExpressionError` naming what is refused."""
    p = _Parser(source)
    ops = p.statements()
    count = sum(1 for t in p.toks if t.kind == "op" and t.text == ";") + len(ops)
    if count > MAX_STATEMENTS * 2:
        raise ExpressionError(f"script has too many statements (max {MAX_STATEMENTS})")
    return JsScript(source, tuple(ops))
