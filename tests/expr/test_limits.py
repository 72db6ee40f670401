"""Resource limits of the expression front ends (imported BPMN / DMN text is untrusted).

Every test checks that the limit is hit early: nothing here builds a big value.
"""

from __future__ import annotations

from typing import Any

import pytest

from flowlane.core.errors import ExpressionError
from flowlane.expr import runtime
from flowlane.expr.feel import compile_feel, feel_to_python, unary_tests_to_python
from flowlane.expr.js import compile_js_expression, compile_js_script
from flowlane.expr.script import ScriptError, compile_python_expression, compile_script

# --- 1. FEEL exponential blow-up ---------------------------------------------------------


def test_feel_nested_in_tests_do_not_blow_up() -> None:
    depth = 22  # 84 MB of Python text without the output check
    with pytest.raises(ExpressionError, match="too long"):
        feel_to_python("(" * depth + "a" + " in [1..2])" * depth)


def test_feel_input_length_is_capped() -> None:
    with pytest.raises(ExpressionError, match="too long"):
        feel_to_python("a + " * 600 + "1")
    with pytest.raises(ExpressionError, match="too long"):
        unary_tests_to_python(",".join(["[1..2]"] * 400))


def test_feel_many_unary_tests_stop_at_the_output_limit() -> None:
    subject = "(" * 8 + "a" + " in [1..2])" * 8
    with pytest.raises(ExpressionError, match="too long"):
        feel_to_python(f"{subject} in ({', '.join(['1'] * 150)})")


def test_feel_ordinary_unary_tests_still_work() -> None:
    tests = unary_tests_to_python("[1..5], > 10, 7")
    assert tests is not None
    assert compile_feel("if 2 in [1..3] then 1 else 0").evaluate({}) == 1


# --- 2. unbounded growth in scripts ------------------------------------------------------


def test_add_refuses_long_text_and_lists() -> None:
    text = "x" * (runtime.MAX_TEXT_LENGTH // 2 + 1)
    with pytest.raises(ExpressionError):
        runtime.add(text, text)
    items = [0] * (runtime.MAX_REPEAT_ITEMS // 2 + 1)
    with pytest.raises(ExpressionError):
        runtime.add(items, items)
    assert runtime.add("a", "b") == "ab"
    assert runtime.add([1], [2]) == [1, 2]


def test_integer_products_are_bounded() -> None:
    with pytest.raises(ExpressionError, match=r"\*"):
        runtime.multiply(10**60, 10**60)
    assert runtime.multiply(10**50, 10**50) == 10**100
    assert runtime.multiply(3, 4) == 12
    assert runtime.multiply(2.5, 2) == 5.0


def test_python_script_doubling_text_stops() -> None:
    script = compile_script("s = 'abcdefgh'\n" + "s = s + s\n" * 40)
    with pytest.raises(ExpressionError, match="longer than"):
        script.run({})


def test_python_script_squaring_integers_stops() -> None:
    script = compile_script("x = 3\n" + "x = x * x\n" * 40)
    with pytest.raises(ExpressionError):
        script.run({})


def test_python_script_list_doubling_stops() -> None:
    script = compile_script("l = [1, 2, 3, 4]\n" + "l = l + l\n" * 40)
    with pytest.raises(ExpressionError):
        script.run({})


def test_python_script_nested_sharing_stops() -> None:
    # each statement doubles the JSON size, but not the memory: the size check counts it
    script = compile_script("d = [1]\n" + "d = [d, d]\n" * 40)
    with pytest.raises(ScriptError):
        script.run({})


def test_python_script_growing_a_dict_key_is_undone() -> None:
    text = "x" * (runtime.MAX_TEXT_LENGTH // 2 + 10)
    script = compile_script("d['a'] = t\nd['b'] = t\n")
    variables: dict[str, Any] = {"d": {}, "t": text}
    with pytest.raises(ScriptError):
        script.run(variables)
    assert set(variables["d"]) == {"a"}


def test_js_script_doubling_stops() -> None:
    script = compile_js_script("variables.s = 'abcdefgh';" + "variables.s += variables.s;" * 40)
    with pytest.raises(ExpressionError, match="longer than"):
        script.run({})


def test_js_script_growing_a_nested_object_is_undone() -> None:
    text = "x" * (runtime.MAX_TEXT_LENGTH // 2 + 10)
    script = compile_js_script("variables.o.a.x = variables.t; variables.o.b = variables.t;")
    variables: dict[str, Any] = {"o": {"a": {}}, "t": text}
    with pytest.raises(ScriptError, match="characters"):
        script.run(variables)
    assert variables["o"] == {"a": {"x": text}}


def test_ordinary_scripts_keep_working() -> None:
    variables: dict[str, Any] = {"n": 2, "d": {}, "l": [1, 2]}
    compile_script("n = n * 21\nd['k'] = 'v'\nl[0] = 5\ns = 'a' + 'b'").run(variables)
    assert variables == {"n": 42, "d": {"k": "v"}, "l": [5, 2], "s": "ab"}
    js = {"a": {"b": 1}}
    assert compile_js_script("variables.a.b += 1; variables.c = 'x'; next();").run(js) == "done"
    assert js == {"a": {"b": 2}, "c": "x"}


# --- 3. non-hashable and non-text keys ---------------------------------------------------


@pytest.mark.parametrize("key", ["[1]", "{'a': 1}", "1"])
def test_python_script_refuses_non_text_dict_keys(key: str) -> None:
    script = compile_script(f"d[{key}] = 1")
    variables: dict[str, Any] = {"d": {}}
    with pytest.raises(ScriptError, match="key must be text"):
        script.run(variables)
    assert variables == {"d": {}}


@pytest.mark.parametrize("key", [[1], {"a": 1}, 1])
def test_js_script_refuses_non_text_keys(key: Any) -> None:
    script = compile_js_script("variables.d[variables.k] = 1;")
    variables: dict[str, Any] = {"d": {}, "k": key}
    with pytest.raises(ScriptError, match="must be text"):
        script.run(variables)
    assert variables["d"] == {}


# --- 4. deep nesting ---------------------------------------------------------------------


@pytest.mark.parametrize("source", ["(" * 5000, "!" * 15000, "- " * 5000 + "1", "1+" * 9000 + "1"])
def test_js_expression_nesting_is_an_expression_error(source: str) -> None:
    with pytest.raises(ExpressionError):
        compile_js_expression(source)


@pytest.mark.parametrize("source", ["{" * 5000, "if(1)" * 3000])
def test_js_script_nesting_is_an_expression_error(source: str) -> None:
    with pytest.raises(ExpressionError, match="nested too deeply"):
        compile_js_script(source)


@pytest.mark.parametrize("source", ["(" * 1500, "-" * 1999 + "1", "2" + "**2" * 500])
def test_feel_nesting_is_an_expression_error(source: str) -> None:
    with pytest.raises(ExpressionError, match="nested too deeply"):
        feel_to_python(source)


@pytest.mark.parametrize("source", ["(" * 3000, "-" * 5000])
def test_feel_long_nesting_is_refused(source: str) -> None:
    with pytest.raises(ExpressionError):
        feel_to_python(source)
    with pytest.raises(ExpressionError):
        unary_tests_to_python(source)


def test_python_expression_length_and_depth() -> None:
    with pytest.raises(ExpressionError, match="too long"):
        compile_python_expression("-" * 100000 + "1")
    with pytest.raises(ExpressionError, match="nested too deeply"):
        compile_python_expression("-" * 19000 + "1")
    with pytest.raises(ExpressionError, match="nested too deeply"):
        compile_python_expression("1+" * 9000 + "1")


def test_python_script_depth() -> None:
    with pytest.raises(ExpressionError, match="nested too deeply"):
        compile_script("x = " + "-" * 19000 + "1")


def _deep(*args: object) -> Any:
    raise RecursionError("maximum recursion depth exceeded")


_DMN = (
    '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="defs" name="n" '
    'namespace="x"><decision id="d" name="D"><decisionTable id="t">'
    '<input id="i1" label="x"><inputExpression id="e1"><text>x</text></inputExpression>'
    '</input><output id="o1" name="y"/><rule id="r1"><inputEntry id="r1i"><text>1</text>'
    '</inputEntry><outputEntry id="r1o"><text>2</text></outputEntry></rule>'
    "</decisionTable></decision></definitions>"
)


@pytest.mark.parametrize("target", ["compile_feel", "compile_unary_tests"])
def test_dmn_compile_sites_report_recursion_as_located_problems(
    monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    from flowlane.model import dmn

    monkeypatch.setattr(dmn, target, _deep)
    with pytest.raises(dmn.DmnError, match="nested too deeply"):
        dmn.parse_dmn(_DMN)


_BPMN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">'
    '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="start"/>'
    '<bpmn:exclusiveGateway id="gw"/><bpmn:scriptTask id="s" scriptFormat="python">'
    '<bpmn:script>x = 1</bpmn:script></bpmn:scriptTask><bpmn:endEvent id="end"/>'
    '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="s"/>'
    '<bpmn:sequenceFlow id="f2" sourceRef="s" targetRef="gw"/>'
    '<bpmn:sequenceFlow id="f3" sourceRef="gw" targetRef="end">'
    "<bpmn:conditionExpression>x &gt; 0</bpmn:conditionExpression></bpmn:sequenceFlow>"
    "</bpmn:process></bpmn:definitions>"
)


@pytest.mark.parametrize(
    ("target", "element"), [("compile_python_expression", "f3"), ("compile_script", "s")]
)
def test_bpmn_compile_sites_report_recursion_as_located_problems(
    monkeypatch: pytest.MonkeyPatch, target: str, element: str
) -> None:
    from flowlane.model import bpmn_compile
    from flowlane.model.bpmn_graph import check_set, parse_bpmn

    bpmn = check_set([parse_bpmn(_BPMN, source="f.bpmn")])
    assert bpmn.problems == ()
    bpmn_compile.compile_bpmn(bpmn, "p", bpmn_compile.CompileOptions())
    monkeypatch.setattr(bpmn_compile, target, _deep)
    with pytest.raises(bpmn_compile.BpmnImportError) as info:
        bpmn_compile.compile_bpmn(bpmn, "p", bpmn_compile.CompileOptions())
    assert [p.element for p in info.value.problems] == [element]
    assert "nested too deeply" in str(info.value)
