"""flowlane processes as BPMN 2.0 XML and back (flowlane.model.bpmn, ADR 0010)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlane.core.errors import ValidationError
from flowlane.model.bpmn import (
    BPMN_NS,
    FLOWLANE_NS,
    bpmn_to_process,
    bpmn_to_yaml,
    layout_bpmn,
    process_to_bpmn,
    yaml_to_bpmn,
)
from flowlane.model.process import BLOCK_TYPES, ProcessFile
from flowlane.model.yamlio import load_file, parse_text

ROOT = Path(__file__).resolve().parents[2]
NS = {
    "bpmn": BPMN_NS,
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
}
FL = f"{{{FLOWLANE_NS}}}"


def _files() -> list[Path]:
    """Every recipe process file (each must load) and the process files among the fixtures
    (which also hold objects, forms, recipes and files broken on purpose); standard BPMN
    processes are left out: they are their diagram already (ADR 0012)."""
    out = []
    for path in sorted(ROOT.glob("recipes/*/processes/*.yaml")):
        if ProcessFile.model_validate(load_file(path)).bpmn is None:
            out.append(path)
    for path in sorted((ROOT / "tests" / "fixtures").rglob("*.y*ml")):
        try:
            spec = ProcessFile.model_validate(load_file(path))
        except Exception:  # not a process file, or broken on purpose
            continue
        if spec.bpmn is None:
            out.append(path)
    return out


FILES = _files()


def norm(data: dict[str, Any]) -> dict[str, Any]:
    return ProcessFile.model_validate(data).model_dump(by_alias=True)


def roundtrip(data: dict[str, Any]) -> dict[str, Any]:
    return bpmn_to_process(process_to_bpmn(data), source="diagram.bpmn")


def test_there_are_process_files_to_check() -> None:
    assert len(FILES) >= 20
    assert any(p.name == "new-order.yaml" for p in FILES)
    assert any("fixtures" in p.parts for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_process_file_survives_the_round_trip(path: Path) -> None:
    data = load_file(path)
    assert norm(roundtrip(data)) == norm(data)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_process_file_survives_yaml_to_bpmn_to_yaml(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    back = bpmn_to_yaml(yaml_to_bpmn(text, source=path.name), source="x.bpmn")
    assert norm(parse_text(back, source="x.yaml")) == norm(parse_text(text, source=path.name))
    again = layout_bpmn(yaml_to_bpmn(text, source=path.name))
    assert norm(bpmn_to_process(again, source="x.bpmn")) == norm(load_file(path))


# ---- the written document --------------------------------------------------------------------

SIMPLE = """\
key: reach
name: Reach the client
object: order
task: {title: "Order {{ object.number }}", priority: high}
counters: [calls]
blocks:
  start: {type: start, next: call}
  call:
    type: call
    title: Call the client
    options: {reached: done, not_reached: missed, wrong: null}
  missed: {type: counter, counter: calls, add: 1, next: left}
  left:
    type: condition
    name: Calls left?
    branches: [{if: "counters.calls < 3", next: pause}]
    else: failed
  pause: {type: delay, for: 30m, next: call}
  done: {type: end, outcome: positive, result: reached}
  failed: {type: end, outcome: negative, result: failed}
"""


def _doc(xml: str) -> ET.Element:
    return ET.fromstring(xml)


def _by_id(root: ET.Element) -> dict[str, ET.Element]:
    return {el.get("id", ""): el for el in root.iter() if el.get("id")}


def test_the_document_follows_the_contract() -> None:
    xml = yaml_to_bpmn(SIMPLE, source="reach.yaml")
    root = _doc(xml)
    proc = root.find("bpmn:process", NS)
    assert proc is not None
    assert proc.get("id") == "reach" and proc.get("name") == "Reach the client"
    assert parse_text(proc.get(f"{FL}settings", ""), source="s.json") == {
        "object": "order",
        "task": {"title": "Order {{ object.number }}", "priority": "high"},
        "counters": ["calls"],
    }
    els = _by_id(root)
    call = els["call"]
    assert call.tag == f"{{{BPMN_NS}}}userTask"
    assert call.get(f"{FL}type") == "call"
    assert call.get("name") == "Call the client"  # no name: the title
    assert parse_text(call.get(f"{FL}params", ""), source="p.json") == {
        "title": "Call the client",
        "options": {"reached": None, "not_reached": None, "wrong": None},
    }
    assert els["done"].find("bpmn:terminateEventDefinition", NS) is not None
    assert els["pause"].find("bpmn:timerEventDefinition", NS) is not None
    assert els["left"].tag == f"{{{BPMN_NS}}}exclusiveGateway"
    assert els["left"].get("name") == "Calls left?"
    flows = {
        f.get(f"{FL}exit"): f
        for f in proc.findall("bpmn:sequenceFlow", NS)
        if f.get("sourceRef") in ("call", "left")
    }
    assert set(flows) == {"options.reached", "options.not_reached", "branches[0]", "else"}
    assert flows["options.reached"].get("name") == "reached"
    assert flows["else"].get("name") == "else"
    assert els["left"].get("default") == flows["else"].get("id")
    cond = flows["branches[0]"].find("bpmn:conditionExpression", NS)
    assert cond is not None and cond.text == "counters.calls < 3"
    # the undrawn exit 'wrong' has no flow but stays an option
    back = bpmn_to_process(xml, source="reach.bpmn")
    assert back["blocks"]["call"]["options"] == {
        "reached": "done",
        "not_reached": "missed",
        "wrong": None,
    }


def _waypoints(edge: ET.Element) -> list[tuple[float, float]]:
    return [(float(w.get("x", "")), float(w.get("y", ""))) for w in edge.findall("di:waypoint", NS)]


def test_layout_shapes_edges_and_labels() -> None:
    root = _doc(yaml_to_bpmn(SIMPLE, source="reach.yaml"))
    plane = root.find("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS)
    assert plane is not None and plane.get("bpmnElement") == "reach"
    shapes = {s.get("bpmnElement"): s for s in plane.findall("bpmndi:BPMNShape", NS)}
    assert set(shapes) == {"start", "call", "missed", "left", "pause", "done", "failed"}

    def box(el: str) -> tuple[float, float, float, float]:
        b = shapes[el].find("dc:Bounds", NS)
        assert b is not None
        return tuple(float(b.get(k, "")) for k in ("x", "y", "width", "height"))  # type: ignore[return-value]

    assert box("start")[2:] == (36, 36) and box("done")[2:] == (36, 36)
    assert box("left")[2:] == (50, 50)
    assert box("call")[2:] == (100, 80) and box("missed")[2:] == (100, 80)
    # layers left to right by the longest path; the loop back to 'call' is ignored
    order = ["start", "call", "missed", "left", "pause"]
    xs = [box(b)[0] for b in order]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    edges = {e.get("bpmnElement"): e for e in plane.findall("bpmndi:BPMNEdge", NS)}
    flows = root.findall("bpmn:process/bpmn:sequenceFlow", NS)
    assert set(edges) == {f.get("id") for f in flows}
    for f in flows:
        points = _waypoints(edges[f.get("id")])
        assert len(points) >= 2
        for (x1, y1), (x2, y2) in itertools.pairwise(points):
            assert x1 == x2 or y1 == y2, f"{f.get('id')} is not orthogonal: {points}"
        named = f.get("name") is not None
        assert (edges[f.get("id")].find("bpmndi:BPMNLabel", NS) is not None) == named
    # the loop pause -> call runs below the diagram and comes in from the left
    loop = next(f for f in flows if f.get("sourceRef") == "pause")
    points = _waypoints(edges[loop.get("id")])
    assert max(y for _, y in points) > max(box(b)[1] + box(b)[3] for b in order)
    assert points[-1][0] == box("call")[0]


def test_layout_bpmn_renews_the_layout_and_keeps_the_process() -> None:
    xml = yaml_to_bpmn(SIMPLE, source="reach.yaml")
    moved = re.sub(r'x="\d+"', 'x="7"', xml)
    fresh = layout_bpmn(moved)
    assert fresh == xml
    assert norm(bpmn_to_process(fresh, source="x.bpmn")) == norm(parse_text(SIMPLE, source="s"))


def test_bpmn_to_yaml_keeps_a_readable_key_order() -> None:
    text = """\
blocks:
  done: {type: end}
  start: {next: done, type: start, name: Go}
counters: [a]
object: user
name: Hello
key: hello
description: Says hello
"""
    out = bpmn_to_yaml(yaml_to_bpmn(text, source="h.yaml"), source="h.bpmn")
    keys = [line.split(":")[0] for line in out.splitlines() if not line.startswith((" ", "-"))]
    assert keys == ["key", "name", "description", "object", "counters", "blocks"]
    blocks = parse_text(out, source="h.yaml")["blocks"]
    assert list(blocks) == ["start", "done"]
    assert list(blocks["start"]) == ["type", "name", "next"]


def test_awkward_ids_and_names_survive() -> None:
    data = {
        "key": "1st-process",
        "name": "First",
        "object": "user",
        "blocks": {
            "start": {"type": "start", "next": "1st step"},
            "1st step": {"type": "task", "title": "Do it", "name": "Do it", "next": "Flow_start"},
            "Flow_start": {"type": "end", "name": "end"},
            "1st-process": {"type": "delay", "for": "1h", "name": "Line 1\nline 2 & <more>"},
        },
    }
    xml = process_to_bpmn(data)
    els = _by_id(_doc(xml))
    ids = [el.get("id") for el in _doc(xml).iter() if el.get("id")]
    assert len(ids) == len(set(ids))
    step = next(el for el in els.values() if el.get(f"{FL}block") == "1st step")
    assert step.get(f"{FL}named") == "true"  # its name equals its title
    assert els["Flow_start"].get(f"{FL}named") == "true"  # its name equals its type
    assert norm(bpmn_to_process(xml, source="x.bpmn")) == norm(data)


def test_name_like_the_fallback_without_the_mark_is_no_name() -> None:
    xml = yaml_to_bpmn(SIMPLE, source="reach.yaml")
    assert "name" not in bpmn_to_process(xml, source="x.bpmn")["blocks"]["call"]


# ---- reading what a designer draws ------------------------------------------------------------

HEAD = f"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="{BPMN_NS}" xmlns:fl="{FLOWLANE_NS}"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d" targetNamespace="x">
"""


def _diagram(body: str, settings: str = '{"object": "user"}') -> str:
    process = f"<process id='p' name='P' fl:settings='{settings}'>{body}</process>"
    return HEAD + process + "</definitions>"


def test_a_flow_without_exit_from_a_single_exit_block_is_next() -> None:
    xml = _diagram(
        """
        <startEvent id="start" fl:type="start"/>
        <userTask id="work" name="Work" fl:type="task" fl:params='{"title": "W"}'/>
        <endEvent id="done" fl:type="end"/>
        <sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
        <sequenceFlow id="f2" sourceRef="work" targetRef="done"/>
        """
    )
    data = bpmn_to_process(xml, source="d.bpmn")
    assert data == {
        "key": "p",
        "name": "P",
        "object": "user",
        "blocks": {
            "start": {"type": "start", "next": "work"},
            "work": {"type": "task", "name": "Work", "title": "W", "next": "done"},
            "done": {"type": "end"},
        },
    }


def test_two_flows_claiming_one_exit_is_an_error_naming_both() -> None:
    xml = _diagram(
        """
        <startEvent id="start" fl:type="start"/>
        <endEvent id="a" fl:type="end"/><endEvent id="b" fl:type="end"/>
        <sequenceFlow id="f1" sourceRef="start" targetRef="a" fl:exit="next"/>
        <sequenceFlow id="f2" sourceRef="start" targetRef="b"/>
        """
    )
    with pytest.raises(ValidationError) as exc:
        bpmn_to_process(xml, source="d.bpmn")
    assert str(exc.value) == "d.bpmn: element start: flows f1 and f2 both claim exit 'next'"


def test_an_unlabelled_flow_from_a_block_with_several_exits_is_an_error() -> None:
    xml = _diagram(
        """
        <startEvent id="start" fl:type="start"/>
        <intermediateCatchEvent id="w" fl:type="wait_for"
          fl:params='{"until": "x", "timeout": "1d"}'/>
        <endEvent id="a" fl:type="end"/>
        <sequenceFlow id="f1" sourceRef="start" targetRef="w"/>
        <sequenceFlow id="f2" sourceRef="w" targetRef="a"/>
        """
    )
    with pytest.raises(ValidationError, match=r"element f2: no flowlane:exit.*next, on_timeout"):
        bpmn_to_process(xml, source="d.bpmn")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '<userTask id="Task_1" fl:type="task" fl:params="{oops"/>',
            "d.bpmn: element Task_1: flowlane:params is not JSON",
        ),
        (
            '<userTask id="Task_1" fl:type="task" fl:params="[1]"/>',
            "d.bpmn: element Task_1: flowlane:params must be a JSON object",
        ),
        (
            '<userTask id="Task_1" fl:type="robot"/>',
            "d.bpmn: element Task_1: flowlane:type 'robot' is not a block type",
        ),
        (
            '<scriptTask id="Script_1"/>',
            "d.bpmn: element Script_1: cannot map bpmn:scriptTask; give it a flowlane:type",
        ),
        (
            '<subProcess id="Sub_1"/>',
            "d.bpmn: element Sub_1: cannot map bpmn:subProcess; give it a flowlane:type",
        ),
        (
            '<startEvent id="S"><timerEventDefinition/></startEvent>',
            "d.bpmn: element S: cannot map bpmn:startEvent with timerEventDefinition; "
            "give it a flowlane:type",
        ),
        (
            '<startEvent id="S"/><sequenceFlow id="F" sourceRef="S" targetRef="nowhere"/>',
            "d.bpmn: element F: targetRef 'nowhere' is not a block of the process",
        ),
        (
            '<startEvent id="S" fl:type="start"/><endEvent id="E" fl:type="end"/>'
            '<sequenceFlow id="F" sourceRef="S" targetRef="E" fl:exit="options.yes"/>',
            "d.bpmn: element F: flowlane:exit 'options.yes' is not an exit of block S (start)",
        ),
        (
            '<endEvent id="E" fl:type="end"/><startEvent id="S" fl:type="start"/>'
            '<sequenceFlow id="F" sourceRef="E" targetRef="S"/>',
            "d.bpmn: element F: block E (end) has no exits",
        ),
    ],
)
def test_what_cannot_be_read_is_an_error_naming_the_element(body: str, message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        bpmn_to_process(_diagram(body), source="d.bpmn")
    assert str(exc.value) == message


def test_settings_that_are_not_json_name_the_process() -> None:
    with pytest.raises(
        ValidationError, match=re.escape("d.bpmn: element p: flowlane:settings is not JSON")
    ):
        bpmn_to_process(_diagram("", settings="{nope"), source="d.bpmn")


def test_any_prefix_works() -> None:
    xml = yaml_to_bpmn(SIMPLE, source="reach.yaml")
    renamed = (
        xml.replace("bpmn:", "b2:")
        .replace("xmlns:bpmn=", "xmlns:b2=")
        .replace("flowlane:", "zz:")
        .replace("xmlns:flowlane=", "xmlns:zz=")
    )
    assert "flowlane:" not in renamed and "bpmn:" not in renamed
    assert bpmn_to_process(renamed, source="x.bpmn") == bpmn_to_process(xml, source="x.bpmn")
    assert bpmn_to_process(renamed.encode(), source="x.bpmn") == bpmn_to_process(
        xml, source="x.bpmn"
    )


def test_a_plain_bpmn_diagram_maps_by_element_kind() -> None:
    xml = _diagram(
        """
        <startEvent id="Start_1" name="Begin"/>
        <parallelGateway id="Split"/>
        <userTask id="Check" name="Check the order"/>
        <intermediateCatchEvent id="Wait"><timerEventDefinition>
          <timeDuration xsi:type="tFormalExpression">PT30M</timeDuration>
        </timerEventDefinition></intermediateCatchEvent>
        <parallelGateway id="Both"/>
        <exclusiveGateway id="Paid" default="F_no"/>
        <userTask id="Ask" name="Happy?"/>
        <serviceTask id="Mark"/>
        <sendTask id="Mail"/>
        <callActivity id="Sub" calledElement="reach-by-phone"/>
        <intermediateCatchEvent id="Until"><conditionalEventDefinition>
          <condition xsi:type="tFormalExpression">object.paid</condition>
        </conditionalEventDefinition></intermediateCatchEvent>
        <endEvent id="End_1"><terminateEventDefinition/></endEvent>
        <textAnnotation id="Note_1"><text>ignored</text></textAnnotation>
        <sequenceFlow id="F1" sourceRef="Start_1" targetRef="Split"/>
        <sequenceFlow id="F2" sourceRef="Split" targetRef="Check"/>
        <sequenceFlow id="F3" sourceRef="Split" targetRef="Wait"/>
        <sequenceFlow id="F4" sourceRef="Check" targetRef="Both"/>
        <sequenceFlow id="F5" sourceRef="Wait" targetRef="Both"/>
        <sequenceFlow id="F6" sourceRef="Both" targetRef="Paid"/>
        <sequenceFlow id="F_yes" sourceRef="Paid" targetRef="Ask">
          <conditionExpression xsi:type="tFormalExpression">object.paid</conditionExpression>
        </sequenceFlow>
        <sequenceFlow id="F_no" sourceRef="Paid" targetRef="Mark"/>
        <sequenceFlow id="F7" sourceRef="Ask" targetRef="Mail" name="yes"/>
        <sequenceFlow id="F8" sourceRef="Ask" targetRef="Sub" name="no"/>
        <sequenceFlow id="F9" sourceRef="Mark" targetRef="Until"/>
        <sequenceFlow id="F10" sourceRef="Until" targetRef="End_1"/>
        """
    )
    blocks = bpmn_to_process(xml, source="d.bpmn")["blocks"]
    assert blocks == {
        "Start_1": {"type": "start", "name": "Begin", "next": "Split"},
        "Split": {"type": "fork", "next": ["Check", "Wait"]},
        "Check": {"type": "task", "name": "Check the order", "next": "Both"},
        "Wait": {"type": "delay", "for": "PT30M", "next": "Both"},
        "Both": {"type": "join", "next": "Paid"},
        "Paid": {
            "type": "condition",
            "branches": [{"if": "object.paid", "next": "Ask"}],
            "else": "Mark",
        },
        "Ask": {"type": "question", "name": "Happy?", "options": {"yes": "Mail", "no": "Sub"}},
        "Mark": {"type": "operation", "next": "Until"},
        "Mail": {"type": "message"},
        "Sub": {"type": "subprocess", "process": "reach-by-phone"},
        "Until": {"type": "wait_for", "until": "object.paid", "next": "End_1"},
        "End_1": {"type": "end"},
    }
    # and it validates as a process file
    ProcessFile.model_validate(bpmn_to_process(xml, source="d.bpmn"))


def test_designer_drawn_flows_are_matched_by_name_and_condition() -> None:
    xml = _diagram(
        """
        <startEvent id="start" fl:type="start"/>
        <userTask id="ask" fl:type="question"
          fl:params='{"title": "Ok?", "options": {"yes": null}}'/>
        <exclusiveGateway id="gw" fl:type="condition" fl:params='{"branches": [{"if": "a"}]}'/>
        <parallelGateway id="fork" fl:type="fork" fl:params='{"next": [null, null]}'/>
        <endEvent id="e1" fl:type="end"/><endEvent id="e2" fl:type="end"/>
        <endEvent id="e3" fl:type="end"/>
        <sequenceFlow id="f0" sourceRef="start" targetRef="ask"/>
        <sequenceFlow id="f1" sourceRef="ask" targetRef="gw" name="yes"/>
        <sequenceFlow id="f2" sourceRef="ask" targetRef="fork" name="maybe"/>
        <sequenceFlow id="f3" sourceRef="gw" targetRef="e1">
          <conditionExpression>a</conditionExpression></sequenceFlow>
        <sequenceFlow id="f4" sourceRef="gw" targetRef="e2">
          <conditionExpression>b</conditionExpression></sequenceFlow>
        <sequenceFlow id="f5" sourceRef="gw" targetRef="e3" name="else"/>
        <sequenceFlow id="f6" sourceRef="fork" targetRef="e3"/>
        """
    )
    blocks = bpmn_to_process(xml, source="d.bpmn")["blocks"]
    assert blocks["ask"]["options"] == {"yes": "gw", "maybe": "fork"}
    assert blocks["gw"]["branches"] == [{"if": "a", "next": "e1"}, {"if": "b", "next": "e2"}]
    assert blocks["gw"]["else"] == "e3"
    assert blocks["fork"]["next"] == ["e3", None]


def test_a_labelled_branch_takes_the_expression_drawn_on_its_flow() -> None:
    xml = yaml_to_bpmn(SIMPLE, source="reach.yaml").replace(
        ">counters.calls &lt; 3<", ">counters.calls &lt; 5<"
    )
    left = bpmn_to_process(xml, source="x.bpmn")["blocks"]["left"]
    assert left["branches"] == [{"if": "counters.calls < 5", "next": "pause"}]


def test_documentation_becomes_the_note() -> None:
    xml = _diagram('<startEvent id="s"><documentation>Begins here</documentation></startEvent>')
    assert bpmn_to_process(xml, source="d.bpmn")["blocks"]["s"] == {
        "type": "start",
        "note": "Begins here",
    }


def test_not_bpmn_and_not_xml_are_errors() -> None:
    with pytest.raises(ValidationError, match=r"^d.bpmn: not well-formed XML"):
        bpmn_to_process("<definitions", source="d.bpmn")
    with pytest.raises(ValidationError, match=r"^d.bpmn: not a BPMN 2.0 document"):
        bpmn_to_process("<html/>", source="d.bpmn")
    with pytest.raises(ValidationError, match=r"^d.bpmn: the document has no bpmn:process"):
        bpmn_to_process(HEAD + "</definitions>", source="d.bpmn")


XXE = f"""<?xml version="1.0"?>
<!DOCTYPE definitions [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<definitions xmlns="{BPMN_NS}"><process id="p" name="&xxe;"/></definitions>
"""

LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + f']>\n<definitions xmlns="{BPMN_NS}"><process id="p" name="&lol9;"/></definitions>'
)

EXTERNAL_DTD = f"""<?xml version="1.0"?>
<!DOCTYPE definitions SYSTEM "http://evil.example/x.dtd">
<definitions xmlns="{BPMN_NS}"><process id="p"/></definitions>
"""


@pytest.mark.parametrize("xml", [XXE, LAUGHS, EXTERNAL_DTD], ids=["xxe", "billion-laughs", "dtd"])
def test_dtds_entities_and_external_references_are_refused(xml: str) -> None:
    with pytest.raises(ValidationError) as exc:
        bpmn_to_process(xml, source="d.bpmn")
    assert str(exc.value).startswith("d.bpmn: refused: the document holds a DTD")
    assert "root:" not in str(exc.value)


def test_export_errors_name_the_block() -> None:
    with pytest.raises(
        ValidationError, match=re.escape("p.yaml: block start: next leads to unknown block")
    ):
        process_to_bpmn(
            {"key": "k", "name": "n", "blocks": {"start": {"type": "start", "next": "x"}}},
            source="p.yaml",
        )
    with pytest.raises(
        ValidationError, match=re.escape("p.yaml: block s: unknown block type 'nope'")
    ):
        process_to_bpmn({"key": "k", "blocks": {"s": {"type": "nope"}}}, source="p.yaml")
    with pytest.raises(
        ValidationError, match=re.escape("p.yaml: block s: name holds a character XML")
    ):
        process_to_bpmn(
            {"key": "k", "blocks": {"s": {"type": "start", "name": "a\x01"}}}, source="p.yaml"
        )


# ---- property: random valid processes ---------------------------------------------------------

IDS = ["start", "a", "b_2", "1st", "step two", "Flow_start", "шаг", "x.y", "k", "end"]
NAMES = st.none() | st.sampled_from(["Nice", "task", "Title", "A & <b>", "two\nlines", "", " "])
EXPRS = st.sampled_from(["object.paid", "counters.n < 3", "vars.x == 'a & b'", "not object.x"])


def _exits(draw: st.DrawFn, btype: str, target: st.SearchStrategy[str | None]) -> dict[str, Any]:
    """The exits (and the parameters they need) of a random block of ``btype``."""
    names = st.lists(st.sampled_from(["yes", "no", "a.b", "ok", "x y"]), max_size=3, unique=True)
    b: dict[str, Any] = {}
    if btype == "fork":
        b["next"] = draw(st.lists(target, max_size=4))
    elif btype == "condition":
        b["branches"] = [
            {"if": e, **({"next": t} if t is not None else {})}
            for e, t in draw(st.lists(st.tuples(EXPRS, target), max_size=3))
        ]
        if draw(st.booleans()):
            b["else"] = draw(target)
    elif btype in ("question", "call"):
        b["options"] = {n: draw(target) for n in draw(names)}
    elif btype == "subprocess":
        if draw(st.booleans()):
            b["exits"] = {n: draw(target) for n in draw(names)}
        if draw(st.booleans()):
            b["next"] = draw(target)
    elif btype == "wait_for":
        if draw(st.booleans()):
            b["timeout"] = "1d"
            b["on_timeout"] = draw(target)
        if draw(st.booleans()):
            b["next"] = draw(target)
    elif btype != "end" and draw(st.booleans()):
        b["next"] = draw(target)
    return b


PARAMS: dict[str, dict[str, Any]] = {
    "end": {"outcome": "positive", "result": "done"},
    "wait_for": {"until": "object.paid"},
    "counter": {"counter": "n", "add": 1},
    "for_each": {"query": {"type": "user", "where": "object.x"}, "process": "child"},
    "subprocess": {"process": "child", "vars": {"a": "=object.id"}},
    "delay": {"for": "30m"},
    "message": {"to": "client", "subject": "Hi", "confirm": True},
    "operation": {"set": {"status": "x"}},
    "task": {"wait": True, "workflow": {"statuses": ["open", "done"], "final": ["done"]}},
    "question": {"fields": {"why": {"type": "string"}}},
}


@st.composite
def processes(draw: st.DrawFn) -> dict[str, Any]:
    """A random valid process: blocks of every type, every kind of exit, empty ones too."""
    ids = draw(st.lists(st.sampled_from(IDS[1:]), min_size=1, max_size=8, unique=True))
    ids = ["start", *ids]
    target = st.none() | st.sampled_from(ids)
    blocks: dict[str, Any] = {}
    for i, bid in enumerate(ids):
        btype = "start" if i == 0 else draw(st.sampled_from(BLOCK_TYPES))
        b: dict[str, Any] = {"type": btype}
        name = draw(NAMES)
        if name is not None:
            b["name"] = name
        if btype in ("question", "call", "task") and draw(st.booleans()):
            b["title"] = draw(st.sampled_from(["Title", "Nice", "Call {{ object.name }}"]))
        if draw(st.booleans()):
            b.update(PARAMS.get(btype, {}))
        elif btype in ("wait_for", "counter", "for_each", "subprocess"):
            b.update(
                {
                    k: v
                    for k, v in PARAMS[btype].items()
                    if k in ("until", "counter", "query", "process")
                }
            )
        b.update(_exits(draw, btype, target))
        if draw(st.booleans()):
            b["note"] = "a note"
        blocks[bid] = b
    key = draw(st.sampled_from(["proc", "1-proc", "a", "start", "k"]))
    data = {"key": key, "name": draw(st.sampled_from(["P", "Ünïcode & <x>"])), "object": "user"}
    if draw(st.booleans()):
        data["counters"] = ["n"]
        data["task"] = {"title": "T", "executors": ["group:sales"]}
    data["blocks"] = blocks
    ProcessFile.model_validate(data)
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(processes())
def test_random_processes_survive_the_round_trip(data: dict[str, Any]) -> None:
    xml = process_to_bpmn(data)
    assert norm(bpmn_to_process(xml, source="x.bpmn")) == norm(data)
    root = _doc(xml)
    ids = [el.get("id") for el in root.iter() if el.get("id")]
    assert len(ids) == len(set(ids))
    fresh = layout_bpmn(xml)
    assert layout_bpmn(fresh) == fresh
