"""DMN decision tables (flowlane.model.dmn) and the FEEL subset (flowlane.expr.feel)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowlane.core.errors import ExpressionError
from flowlane.expr.feel import compile_feel, compile_unary_tests
from flowlane.model.dmn import DmnError, is_dmn_file, load_dmn_files, parse_dmn

CORPUS = Path(__file__).resolve().parents[1] / "conformance" / "corpus"


def table(
    rules: str,
    *,
    policy: str = "",
    inputs: str = '<input id="i1" label="x"><inputExpression id="e1"><text>x</text>'
    "</inputExpression></input>",
    outputs: str = '<output id="o1" name="y"/>',
    ns: str = "https://www.omg.org/spec/DMN/20191111/MODEL/",
    prefix: str = "",
) -> str:
    p = f"{prefix}:" if prefix else ""
    xmlns = f"xmlns:{prefix}" if prefix else "xmlns"
    body = f"{inputs}{outputs}{rules}"
    if prefix:
        body = body.replace("<", f"<{p}").replace(f"<{p}/", f"</{p}")
    return (
        f'<{p}definitions {xmlns}="{ns}" id="defs" name="n" namespace="x">'
        f'<{p}decision id="d" name="D"><{p}decisionTable id="t"{policy}>{body}'
        f"</{p}decisionTable></{p}decision></{p}definitions>"
    )


def rule(rid: str, test: str, out: str) -> str:
    return (
        f'<rule id="{rid}"><inputEntry id="{rid}i"><text>{test}</text></inputEntry>'
        f'<outputEntry id="{rid}o"><text>{out}</text></outputEntry></rule>'
    )


def test_corpus_table_with_label_fallback() -> None:
    path = CORPUS / "spiff/camunda/dmn/test_integer_decision.dmn"
    assert is_dmn_file(path)
    decision = load_dmn_files([path])["IntegerDecisionStringOutputTable"]
    assert decision.hit_policy == "UNIQUE"
    assert decision.inputs[0].text == "x"  # empty inputExpression: the label
    got = {x: decision.evaluate({"x": x}).get("y") for x in range(1, 8)}
    assert got == {1: None, 2: None, 3: "A", 4: "B", 5: "C", 6: "D", 7: "D"}


def test_unique_violation_is_an_error_and_first_takes_the_first() -> None:
    rules = rule("r1", "&gt; 1", '"big"') + rule("r2", "&gt; 2", '"bigger"')
    (unique,) = parse_dmn(table(rules))
    assert unique.evaluate({"x": 2}) == {"y": "big"}
    with pytest.raises(DmnError, match="UNIQUE"):
        unique.evaluate({"x": 3})
    (first,) = parse_dmn(table(rules, policy=' hitPolicy="FIRST"'))
    assert first.evaluate({"x": 3}) == {"y": "big"}
    assert first.evaluate({"x": 0}) == {}


def test_priority_follows_output_values() -> None:
    outputs = (
        '<output id="o1" name="y"><outputValues id="v"><text>"high","low"</text>'
        "</outputValues></output>"
    )
    rules = rule("r1", "-", '"low"') + rule("r2", "&gt; 5", '"high"')
    (d,) = parse_dmn(table(rules, policy=' hitPolicy="PRIORITY"', outputs=outputs))
    assert d.evaluate({"x": 9}) == {"y": "high"}
    assert d.evaluate({"x": 1}) == {"y": "low"}


def test_collect_and_aggregations() -> None:
    rules = rule("r1", "-", "1") + rule("r2", "&gt; 1", "10") + rule("r3", "&gt; 2", "100")
    (collect,) = parse_dmn(table(rules, policy=' hitPolicy="COLLECT"'))
    assert collect.evaluate({"x": 3}) == {"y": [1, 10, 100]}
    (total,) = parse_dmn(table(rules, policy=' hitPolicy="COLLECT" aggregation="SUM"'))
    assert total.evaluate({"x": 2}) == {"y": 11}
    (count,) = parse_dmn(table(rules, policy=' hitPolicy="COLLECT" aggregation="COUNT"'))
    assert count.evaluate({"x": 0}) == {"y": 1}
    (order,) = parse_dmn(table(rules, policy=' hitPolicy="RULE ORDER"'))
    assert order.evaluate({"x": 2}) == {"y": [1, 10]}


def test_any_prefix_and_dmn_11_namespace() -> None:
    rules = rule("r1", '"a","b"', '"ab"') + rule("r2", 'not("a","b")', '"other"')
    xml = table(rules, ns="http://www.omg.org/spec/DMN/20151101/dmn.xsd", prefix="dmn")
    (d,) = parse_dmn(xml)
    assert d.evaluate({"x": "b"}) == {"y": "ab"}
    assert d.evaluate({"x": "z"}) == {"y": "other"}


def test_unsafe_or_foreign_documents_are_refused() -> None:
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/">&e;</definitions>'
    )
    with pytest.raises(DmnError, match="refused"):
        parse_dmn(xxe)
    with pytest.raises(DmnError, match="not a DMN document"):
        parse_dmn('<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"/>')
    with pytest.raises(DmnError, match="hit policy"):
        parse_dmn(table(rule("r1", "-", "1"), policy=' hitPolicy="WHATEVER"'))
    with pytest.raises(DmnError, match="input entry"):
        parse_dmn(table(rule("r1", "x y z", "1")))


def test_python_expression_language_and_host_code_refused() -> None:
    inputs = (
        '<input id="i1"><inputExpression id="e1" expressionLanguage="python">'
        "<text>len(items)</text></inputExpression></input>"
    )
    (d,) = parse_dmn(table(rule("r1", "[1..2]", '"few"'), inputs=inputs))
    assert d.evaluate({"items": [1, 2]}) == {"y": "few"}
    bad = inputs.replace("len(items)", "__import__('os')")
    with pytest.raises(DmnError):
        parse_dmn(table(rule("r1", "-", "1"), inputs=bad))


@pytest.mark.parametrize(
    ("tests", "value", "expected"),
    [
        ("-", None, True),
        ("3", 3, True),
        ("3", 4, False),
        (">= 6", 6, True),
        ("< 6", None, False),
        ("[1..5]", 5, True),
        ("[1..5)", 5, False),
        ("]1..5]", 1, False),
        ('"a", "b"', "b", True),
        ("not(1, 2)", 2, False),
        ("not(1, 2)", 3, True),
        ("? > limit", 9, True),
        ("[1, 2]", 2, True),
        ("!= 2", 2, False),
    ],
)
def test_unary_tests(tests: str, value: object, expected: bool) -> None:
    assert compile_unary_tests(tests).matches(value, {"limit": 5}) is expected


def test_feel_expressions() -> None:
    scope = {"a": {"b": [4, 5]}, "x": 3}
    assert compile_feel("a.b[1] + x * 2").evaluate(scope) == 11
    assert compile_feel('if x = 3 then "three" else "other"').evaluate(scope) == "three"
    assert compile_feel("x between 1 and 3 and not(x > 5)").evaluate(scope) is True
    assert compile_feel("x in [1..2]").evaluate(scope) is False
    assert compile_feel("null").evaluate(scope) is None
    for bad in ("for x in y return x", "x.__class__", "system(x)", '"a" "b"'):
        with pytest.raises(ExpressionError):
            compile_feel(bad)
