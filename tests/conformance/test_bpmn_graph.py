"""flowlane.model.bpmn_graph on small hand-written documents: safety, prefixes, every
element family of the typed view, references, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowlane.core.errors import ValidationError
from flowlane.model.bpmn_graph import (
    XmlNode,
    check_graph,
    element_counts,
    load_bpmn,
    load_bpmn_files,
    parse_bpmn,
    to_xml,
)

B = "http://www.omg.org/spec/BPMN/20100524/MODEL"
HEAD = (
    f'<bpmn:definitions xmlns:bpmn="{B}" '
    'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" '
    'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" '
    'xmlns:di="http://www.omg.org/spec/DD/20100524/DI" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:acme="urn:acme" id="defs" targetNamespace="urn:t">'
)

RICH = (
    HEAD
    + """
  <bpmn:message id="m1" name="Order placed"/>
  <bpmn:signal id="s1" name="Go"/>
  <bpmn:error id="e1" name="Boom" errorCode="E1"/>
  <bpmn:escalation id="x1" name="Late" escalationCode="X1"/>
  <bpmn:timerEventDefinition id="shared_timer">
    <bpmn:timeDate>2026-01-01T00:00:00Z</bpmn:timeDate></bpmn:timerEventDefinition>
  <bpmn:collaboration id="c1">
    <bpmn:participant id="p1" name="Shop" processRef="main"/>
    <bpmn:participant id="p2" name="Customer"/>
    <bpmn:messageFlow id="mf1" sourceRef="p2" targetRef="start" messageRef="m1"/>
  </bpmn:collaboration>
  <bpmn:process id="main" name="Main" isExecutable="true" acme:owner="ops">
    <bpmn:extensionElements><acme:config level="3"><acme:item>a &amp; b</acme:item></acme:config>
      </bpmn:extensionElements>
    <bpmn:laneSet id="ls"><bpmn:lane id="lane1" name="Desk">
      <bpmn:flowNodeRef>work</bpmn:flowNodeRef>
      <bpmn:childLaneSet id="cls"><bpmn:lane id="lane2"><bpmn:flowNodeRef>gw</bpmn:flowNodeRef>
        </bpmn:lane></bpmn:childLaneSet>
    </bpmn:lane></bpmn:laneSet>
    <bpmn:dataObject id="do1" name="Order" isCollection="true"/>
    <bpmn:dataObjectReference id="dor1" dataObjectRef="do1"><bpmn:dataState name="new"/>
      </bpmn:dataObjectReference>
    <bpmn:startEvent id="start" name="Order&#13;&#10;placed">
      <bpmn:messageEventDefinition messageRef="m1"/></bpmn:startEvent>
    <bpmn:userTask id="work" name="Work&#10;it" default="f3">
      <bpmn:multiInstanceLoopCharacteristics isSequential="true">
        <bpmn:loopCardinality xsi:type="bpmn:tFormalExpression">3</bpmn:loopCardinality>
        <bpmn:loopDataInputRef>items</bpmn:loopDataInputRef>
        <bpmn:inputDataItem id="item"/>
        <bpmn:completionCondition>done</bpmn:completionCondition>
      </bpmn:multiInstanceLoopCharacteristics>
    </bpmn:userTask>
    <bpmn:boundaryEvent id="b1" attachedToRef="work" cancelActivity="false">
      <bpmn:timerEventDefinition><bpmn:timeCycle>R3/PT1H</bpmn:timeCycle>
        </bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:boundaryEvent id="b2" attachedToRef="work"><bpmn:errorEventDefinition errorRef="e1"/>
      </bpmn:boundaryEvent>
    <bpmn:intermediateCatchEvent id="at">
      <bpmn:eventDefinitionRef>shared_timer</bpmn:eventDefinitionRef>
      </bpmn:intermediateCatchEvent>
    <bpmn:exclusiveGateway id="gw" default="f5"/>
    <bpmn:scriptTask id="calc" scriptFormat="python">
      <bpmn:standardLoopCharacteristics testBefore="true" loopMaximum="3">
      <bpmn:loopCondition>not done</bpmn:loopCondition></bpmn:standardLoopCharacteristics>
      <bpmn:script><![CDATA[x = 1 < 2]]></bpmn:script></bpmn:scriptTask>
    <bpmn:transaction id="tx">
      <bpmn:startEvent id="tx_start"/>
      <bpmn:endEvent id="tx_cancel"><bpmn:cancelEventDefinition/></bpmn:endEvent>
      <bpmn:sequenceFlow id="tf1" sourceRef="tx_start" targetRef="tx_cancel"/>
      <bpmn:subProcess id="esp" triggeredByEvent="true">
        <bpmn:startEvent id="esp_start" isInterrupting="false">
          <bpmn:signalEventDefinition signalRef="s1"/></bpmn:startEvent>
        <bpmn:endEvent id="esp_end"><bpmn:escalationEventDefinition escalationRef="x1"/>
          </bpmn:endEvent>
        <bpmn:sequenceFlow id="ef1" sourceRef="esp_start" targetRef="esp_end"/>
      </bpmn:subProcess>
    </bpmn:transaction>
    <bpmn:callActivity id="call" calledElement="other"/>
    <bpmn:intermediateThrowEvent id="link_out"><bpmn:linkEventDefinition name="L">
      <bpmn:target>link_in</bpmn:target></bpmn:linkEventDefinition>
      </bpmn:intermediateThrowEvent>
    <bpmn:intermediateCatchEvent id="link_in"><bpmn:linkEventDefinition name="L">
      <bpmn:source>link_out</bpmn:source></bpmn:linkEventDefinition>
      </bpmn:intermediateCatchEvent>
    <bpmn:intermediateCatchEvent id="cond"><bpmn:conditionalEventDefinition>
      <bpmn:condition language="python">x &gt; 1</bpmn:condition>
      </bpmn:conditionalEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="stop"><bpmn:terminateEventDefinition/></bpmn:endEvent>
    <bpmn:endEvent id="comp"><bpmn:compensateEventDefinition activityRef="work"/></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="gw">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression"
        language="https://www.omg.org/spec/DMN/20191111/FEEL/">= ok</bpmn:conditionExpression>
      </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f3" sourceRef="work" targetRef="calc"/>
    <bpmn:sequenceFlow id="f4" sourceRef="gw" targetRef="stop" acme:weight="2"/>
    <bpmn:sequenceFlow id="f5" sourceRef="gw" targetRef="tx"/>
    <bpmn:textAnnotation id="ta"><bpmn:text>Note</bpmn:text></bpmn:textAnnotation>
    <bpmn:association id="as" sourceRef="ta" targetRef="work"/>
  </bpmn:process>
  <bpmndi:BPMNDiagram id="d1" name="One"><bpmndi:BPMNPlane id="pl1" bpmnElement="c1">
    <bpmndi:BPMNShape id="work_di" bpmnElement="work" isHorizontal="true">
      <dc:Bounds x="1" y="2" width="100" height="80"/>
      <bpmndi:BPMNLabel><dc:Bounds x="5" y="6" width="7" height="8"/></bpmndi:BPMNLabel>
        </bpmndi:BPMNShape>
    <bpmndi:BPMNEdge id="f1_di" bpmnElement="f1"><di:waypoint x="0" y="0"/>
      <di:waypoint x="10.5" y="0"/></bpmndi:BPMNEdge>
  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
  <bpmndi:BPMNDiagram id="d2"><bpmndi:BPMNPlane id="pl2" bpmnElement="main"/></bpmndi:BPMNDiagram>
</bpmn:definitions>
"""
)


def test_the_typed_view_covers_every_family() -> None:
    g = parse_bpmn(RICH, source="rich.bpmn")
    d = g.definitions
    assert [m.name for m in d.messages] == ["Order placed"]
    assert [(e.code, x.code) for e, x in zip(d.errors, d.escalations, strict=True)] == [
        ("E1", "X1")
    ]
    (collab,) = d.collaborations
    assert [p.process_ref for p in collab.participants] == ["main", None]
    assert collab.message_flows[0].message_ref == "m1"
    (proc,) = d.processes
    assert proc.is_executable is True
    assert proc.body.lanes[0].children[0].flow_nodes == ("gw",)
    nodes = {n.id: n for _, n in g.walk_nodes()}
    assert nodes["start"].name == "Order\r\nplaced"
    assert nodes["work"].name == "Work\nit"
    loop = nodes["work"].loop
    assert loop is not None and loop.marker == "MI-sequential"
    assert loop.cardinality is not None and loop.cardinality.text == "3"
    assert (loop.collection, loop.input_item) == ("items", "item")
    assert loop.completion_condition is not None and loop.completion_condition.text == "done"
    assert nodes["work"].default == "f3"
    assert nodes["b1"].label == "boundaryEvent(timer,non-interrupting)"
    assert nodes["b1"].event_definitions[0].timers[0].kind == "cycle"
    assert (nodes["b2"].attached_to, nodes["b2"].event_definitions[0].ref) == ("work", "e1")
    at = nodes["at"].event_definitions[0]
    assert (at.kind, at.by_ref, at.timers[0].kind) == ("timer", True, "date")
    std = nodes["calc"].loop
    assert std is not None and (std.marker, std.test_before, std.loop_maximum) == (
        "standardLoop",
        True,
        "3",
    )
    assert nodes["calc"].script is not None and nodes["calc"].script.text == "x = 1 < 2"
    assert nodes["calc"].script.language == "python"
    assert nodes["tx"].body is not None and nodes["esp"].is_event_subprocess
    assert nodes["esp_start"].label == "startEvent(signal,non-interrupting)"
    assert nodes["tx_cancel"].label == "endEvent(cancel)"
    assert nodes["link_out"].event_definitions[0].link_target == "link_in"
    cond = nodes["cond"].event_definitions[0].condition
    assert cond is not None and (cond.text, cond.language) == ("x > 1", "python")
    assert nodes["comp"].event_definitions[0].ref == "work"
    f2 = next(f for f in proc.body.flows if f.id == "f2")
    assert f2.condition is not None and f2.condition.text == "= ok"
    assert f2.condition.language == "https://www.omg.org/spec/DMN/20191111/FEEL/"
    assert proc.body.data[1].state == "new" and proc.body.data[0].is_collection
    assert [a.kind for a in proc.body.artifacts] == ["textAnnotation", "association"]
    assert proc.extensions[0].tag == "{urn:acme}config"
    assert ("{urn:acme}owner", "ops") in proc.attrs
    d1, d2 = d.diagrams
    assert d1.shapes[0].bounds is not None and d1.shapes[0].bounds.width == 100
    assert d1.shapes[0].label is not None and d1.shapes[0].label.x == 5
    assert d1.edges[0].waypoints == ((0.0, 0.0), (10.5, 0.0))
    assert d2.plane_element == "main"
    counts = element_counts(g)
    assert counts["MI-sequential"] == 1 and counts["standardLoop"] == 1
    assert counts["eventSubProcess"] == 1 and counts["transaction"] == 1
    assert counts["lane"] == 2 and counts["sequenceFlow"] == 7


def test_round_trip_keeps_vendor_extensions_and_line_breaks() -> None:
    g = parse_bpmn(RICH, source="rich.bpmn")
    xml = to_xml(g)
    assert "urn:acme" in xml and "a &amp; b" in xml and 'level="3"' in xml
    assert "Order&#13;&#10;placed" in xml
    again = parse_bpmn(xml, source="again.bpmn")
    assert again == g
    assert to_xml(again) == xml


def test_references_are_checked() -> None:
    g = parse_bpmn(RICH, source="rich.bpmn")
    assert [(p.element, p.attribute, p.value) for p in check_graph(g)] == [
        ("call", "calledElement", "other")
    ]
    broken = RICH.replace('targetRef="calc"', 'targetRef="nowhere"').replace('id="f5"', 'id="f4"')
    found = {(p.element, p.attribute, p.value) for p in check_graph(parse_bpmn(broken))}
    assert ("f3", "targetRef", "nowhere") in found
    assert ("f4", "id", "f4") in found  # the id used twice
    assert ("gw", "default", "f5") in found


def test_prefix_agnostic_with_a_foreign_default_namespace() -> None:
    xml = (
        f'<?xml version="1.0"?><bpmn2:definitions xmlns="urn:not-bpmn" xmlns:bpmn2="{B}" '
        'id="d"><bpmn2:process id="p"><bpmn2:task id="t"/><task id="ignored"/>'
        '<bpmn2:sequenceFlow id="f" sourceRef="t" targetRef="t"/></bpmn2:process>'
        "<other/></bpmn2:definitions>"
    )
    g = parse_bpmn(xml)
    assert [n.id for _, n in g.walk_nodes()] == ["t"]
    again = parse_bpmn(to_xml(g))
    assert again == g
    assert again.root.children[-1] == XmlNode("{urn:not-bpmn}other")


def test_the_default_namespace_form_also_reads() -> None:
    xml = f'<definitions xmlns="{B}"><process id="p"><startEvent id="s"/></process></definitions>'
    g = parse_bpmn(xml)
    assert element_counts(g)["startEvent(none)"] == 1
    assert parse_bpmn(to_xml(g)) == g


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="p" name="&lol3;"/>
  </definitions>
"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="p" name="&xxe;"/>
  </definitions>
"""
DTD = """<?xml version="1.0"?>
<!DOCTYPE definitions SYSTEM "http://example.com/bpmn.dtd">
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"/>
"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, XXE, DTD], ids=["billion-laughs", "xxe", "dtd"])
def test_unsafe_files_are_refused_naming_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "evil.bpmn"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        load_bpmn(path)
    message = str(info.value)
    assert str(path) in message
    assert "refused" in message and "DTD" in message
    with pytest.raises(ValidationError):
        load_bpmn_files([path])


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("<definitions", "not well-formed"),
        ('<x xmlns="urn:x"/>', "not a BPMN 2.0 document"),
    ],
)
def test_bad_documents_name_the_problem(text: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why) as info:
        parse_bpmn(text, source="bad.bpmn")
    assert "bad.bpmn" in str(info.value)


def test_calls_resolve_across_files_and_duplicates_are_reported(tmp_path: Path) -> None:
    def write(name: str, body: str) -> Path:
        path = tmp_path / name
        path.write_text(f'<definitions xmlns="{B}">{body}</definitions>', encoding="utf-8")
        return path

    a = write("a.bpmn", '<process id="a"><callActivity id="ca" calledElement="b"/></process>')
    b = write("b.bpmn", '<process id="b"><callActivity id="cb" calledElement="c"/></process>')
    c = write("c.bpmn", '<process id="c"><task id="t"/></process>')
    loaded = load_bpmn_files([a, b, c])
    assert loaded.problems == ()
    assert [(x.called_element, x.resolved_file) for x in loaded.calls] == [
        ("b", str(b)),
        ("c", str(c)),
    ]
    alone = load_bpmn_files([a, b])
    assert [(p.file, p.element, p.value) for p in alone.problems] == [(str(b), "cb", "c")]
    dup = write("d.bpmn", '<process id="c"/>')
    twice = load_bpmn_files([c, dup])
    assert [(p.file, p.element, p.message) for p in twice.problems] == [
        (str(dup), "c", f"process id also defined in {c}")
    ]


def test_text_input_ignores_the_declared_encoding() -> None:
    xml = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>'
        f'<definitions xmlns="{B}"><process id="p" name="Café"/></definitions>'
    )
    assert parse_bpmn(xml).definitions.processes[0].name == "Café"
    assert parse_bpmn(xml.encode("latin-1")).definitions.processes[0].name == "Café"
