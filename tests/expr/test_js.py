"""bpmn-engine front ends: ``${...}`` placeholders and the safe JavaScript subset."""

from __future__ import annotations

from typing import Any

import pytest

from flowlane.core.errors import ExpressionError
from flowlane.expr.js import (
    ScriptThrow,
    compile_js_expression,
    compile_js_script,
    compile_placeholder,
    has_placeholder,
    service_name,
)


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        ("this.variables.input < 2", {"input": 1}, True),
        ("this.variables.input < 2", {"input": 2}, False),
        ("variables.input >= 2", {"input": 2}, True),
        ("environment.variables.a === 'x'", {"a": "x"}, True),
        ("environment.variables.a !== 'x'", {"a": "x"}, False),
        ("variables.a == 1 && variables.b != 2", {"a": 1, "b": 3}, True),
        ("variables.a || variables.b", {"a": None, "b": 5}, 5),
        ("!environment.variables.stopLoop", {}, True),
        ("!environment.variables.stopLoop", {"stopLoop": True}, False),
        ("next(null, !environment.variables.stopLoop);", {"stopLoop": True}, False),
        ("next(null, !environment.variables.stopLoop)", {}, True),
        ("variables.list.length > 1", {"list": [1, 2]}, True),
        ("variables.name.length", {"name": "abc"}, 3),
        ("variables.order.lines[0].qty * 2 + 1", {"order": {"lines": [{"qty": 3}]}}, 7),
        ("variables.a['b c']", {"a": {"b c": 4}}, 4),
        ("this.environment.variables.x ? 'yes' : 'no'", {"x": 0}, "no"),
        ("(variables.x + 1) % 3 === 0 && true", {"x": 2}, True),
        ("-variables.x < -1.5", {"x": 2}, True),
        ("variables.missing === null", {}, True),
        ("variables.missing === undefined", {}, True),
        ("variables.deep.missing.path", {}, None),
        ('"a\\"b" === variables.s', {"s": 'a"b'}, True),
        ("/* comment */ variables.x // trailing", {"x": 1}, 1),
    ],
)
def test_js_expressions_translate_into_safe_expressions(
    source: str, data: dict[str, Any], expected: object
) -> None:
    assert compile_js_expression(source).evaluate(data) == expected


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("console.log(1)", "not a variable"),
        ("x < 2", "not a variable"),
        ("this.constructor", "not a variable"),
        ("process.exit(1)", "not a variable"),
        ("require('fs')", "require"),
        ("variables.x.toString()", "calling methods"),
        ("environment.services.fn()", "host services"),
        ("new Date()", "new"),
        ("function () {}", "functions"),
        ("typeof variables.x", "typeof"),
        ("variables.__class__", "not allowed"),
        ("variables.x = 1", "unexpected text"),
        ("variables.x++", "unexpected text"),
        ("++variables.x", "statements"),
        ("variables.x 1", "unexpected text"),
        ("`template`", "unexpected character"),
        ("", "empty"),
        ("next(err, variables.x)", "null"),
    ],
)
def test_anything_else_is_refused_with_a_reason(source: str, needle: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_js_expression(source)
    assert needle in caught.value.message


def test_placeholders() -> None:
    assert compile_placeholder("${environment.variables.catchDate}").evaluate(
        {"catchDate": "1993-06-26"}
    ) == ("1993-06-26")
    assert compile_placeholder("${environment.variables.n}").evaluate({"n": 3}) == 3
    assert compile_placeholder("PT${variables.n}S").evaluate({"n": 3}) == "PT3S"
    assert compile_placeholder(" ${variables.a}-${variables.b} ").evaluate({"a": 1, "b": "x"}) == (
        "1-x"
    )
    assert has_placeholder("PT${x}S") and not has_placeholder("PT1S")
    assert service_name("${environment.services.getSpotPrice}") == "getSpotPrice"
    assert service_name("${environment.services.fn()}") == "fn"
    assert service_name("${environment.variables.fn}") is None
    with pytest.raises(ExpressionError, match="host service"):
        compile_placeholder("${environment.services.fn}")
    with pytest.raises(ExpressionError, match="no"):
        compile_placeholder("PT1S")


def run(source: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    outcome = compile_js_script(source).run(data)
    return outcome, data


def test_scripts_of_the_corpus() -> None:
    assert run("variables.input += 1;\nnext();", {"input": 0}) == ("done", {"input": 1})
    assert run("variables.input++;\nnext();", {"input": 1}) == ("done", {"input": 2})
    assert run("next();", {}) == ("done", {})
    assert run("next()", {"a": 1}) == ("done", {"a": 1})
    assert run("environment.variables.stopLoop = true;\nnext();", {}) == (
        "done",
        {"stopLoop": True},
    )
    init = (
        "if (!this.variables.input) {\n  this.variables.input = 0;\n}\n\n"
        "this.variables.input++;\n\nnext();"
    )
    assert run(init, {}) == ("done", {"input": 1})
    assert run(init, {"input": 1}) == ("done", {"input": 2})
    guarded = "this.variables.subScript = true;\nif (this.variables.input !== 127) next();"
    assert run(guarded, {"input": 1}) == ("done", {"input": 1, "subScript": True})
    assert run(guarded, {"input": 127}) == ("pending", {"input": 127, "subScript": True})


def test_next_with_an_error_throws() -> None:
    check = (
        "if (!variables.input) {\n"
        '  next(new Error("Input is missing"));\n'
        "} else if (variables.input === 2) {\n"
        "} else {\n"
        "  next();\n"
        "}"
    )
    script = compile_js_script(check)
    with pytest.raises(ScriptThrow, match="Input is missing"):
        script.run({})
    assert script.run({"input": 2}) == "pending"
    assert script.run({"input": 1}) == "done"
    with pytest.raises(ScriptThrow, match="Error"):
        compile_js_script("next(new TypeError())").run({})


def test_only_the_first_next_counts_and_statements_after_it_run() -> None:
    data: dict[str, Any] = {}
    assert compile_js_script("next(); variables.after = 1; next(new Error('x'))").run(data) == (
        "done"
    )
    assert data == {"after": 1}


def test_assignment_forms() -> None:
    data: dict[str, Any] = {"n": 10, "o": {"k": 1}}
    compile_js_script(
        "variables.n -= 2; variables.n *= 3; variables.n /= 4; variables.n %= 5;"
        "--variables.m; variables.o.k = variables.o.k + 1; variables.o['j'] = 'x'"
    ).run(data)
    assert data == {"n": 1.0, "m": None, "o": {"k": 2, "j": "x"}}
    with pytest.raises(ExpressionError, match="not an object"):
        compile_js_script("variables.missing.k = 1").run({})


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("var x = 1;", "declarations"),
        ("let x = 1;", "declarations"),
        ("for (;;) {}", "loops"),
        ("while (true) {}", "loops"),
        ("console.log('x'); next();", "not a variable"),
        ("variables.x = require('fs');", "require"),
        ("next(variables.err)", "null or new Error"),
        ("next(new Date())", "new Error"),
        ("variables.list.length = 0", ".length"),
        ("variables.x.push(1)", "calling methods"),
        ("return 1", "return"),
        ("throw new Error('x')", "throw"),
        ("} else {", "expected a variable"),
        ("else next();", "else without if"),
        ("variables.x", "a statement must"),
        ("if (variables.x) { next();", "expected '}'"),
    ],
)
def test_scripts_outside_the_subset_are_refused(source: str, needle: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_js_script(source)
    assert needle in caught.value.message
