"""The benchmark's flows, each written twice: as a flowlane process file and as BPMN XML.

The pairs are the same graph doing the same work. The three branches of W2 each set a
number: a flowlane ``counter`` (``set: 1``) and a BPMN script task (``a = 1``). A plain BPMN
``task`` cannot stand in: SpiffWorkflow treats a ``NoneTask`` as manual, so it would wait.
"""

from __future__ import annotations

# ---- flowlane (process files, FORMATS.md) -----------------------------------------------

FLOWLANE_W1 = """
key: w1
name: operation then condition
object: order
blocks:
  start: {type: start, next: work}
  work: {type: operation, set: {status: in_work}, next: check}
  check:
    type: condition
    branches: [{if: "object.status == 'in_work'", next: done}]
    else: other
  done: {type: end, outcome: positive}
  other: {type: end, outcome: negative}
"""

FLOWLANE_W2 = """
key: w2
name: fork into three and join
object: order
counters: [a, b, c]
blocks:
  start: {type: start, next: split}
  split: {type: fork, next: [a, b, c]}
  a: {type: counter, counter: a, set: 1, next: meet}
  b: {type: counter, counter: b, set: 1, next: meet}
  c: {type: counter, counter: c, set: 1, next: meet}
  meet: {type: join, next: done}
  done: {type: end, outcome: positive}
"""

FLOWLANE_W3 = """
key: w3
name: one question
object: order
blocks:
  start: {type: start, next: ask}
  ask: {type: question, title: "Take it?", assign: "user:boris", options: {yes: done}}
  done: {type: end, outcome: positive}
"""

# ---- BPMN (SpiffWorkflow 3.x, plain BPMN parser) ----------------------------------------

_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
                  id="bench" targetNamespace="http://flowlane.bench">
"""
_TAIL = "</bpmn:definitions>\n"

BPMN_W1 = (
    _HEAD
    + """  <bpmn:process id="w1" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="work">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>status = 'in_work'</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:exclusiveGateway id="check" default="f4">
      <bpmn:incoming>f2</bpmn:incoming>
      <bpmn:outgoing>f3</bpmn:outgoing><bpmn:outgoing>f4</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:endEvent id="done"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="other"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="check"/>
    <bpmn:sequenceFlow id="f3" sourceRef="check" targetRef="done">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">status == 'in_work'\
</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f4" sourceRef="check" targetRef="other"/>
  </bpmn:process>
"""
    + _TAIL
)

BPMN_W2 = (
    _HEAD
    + """  <bpmn:process id="w2" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:parallelGateway id="split">
      <bpmn:incoming>f0</bpmn:incoming>
      <bpmn:outgoing>fa</bpmn:outgoing><bpmn:outgoing>fb</bpmn:outgoing>
      <bpmn:outgoing>fc</bpmn:outgoing>
    </bpmn:parallelGateway>
    <bpmn:scriptTask id="a">
      <bpmn:incoming>fa</bpmn:incoming><bpmn:outgoing>ga</bpmn:outgoing>
      <bpmn:script>a = 1</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:scriptTask id="b">
      <bpmn:incoming>fb</bpmn:incoming><bpmn:outgoing>gb</bpmn:outgoing>
      <bpmn:script>b = 1</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:scriptTask id="c">
      <bpmn:incoming>fc</bpmn:incoming><bpmn:outgoing>gc</bpmn:outgoing>
      <bpmn:script>c = 1</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:parallelGateway id="meet">
      <bpmn:incoming>ga</bpmn:incoming><bpmn:incoming>gb</bpmn:incoming>
      <bpmn:incoming>gc</bpmn:incoming>
      <bpmn:outgoing>f9</bpmn:outgoing>
    </bpmn:parallelGateway>
    <bpmn:endEvent id="done"><bpmn:incoming>f9</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="split"/>
    <bpmn:sequenceFlow id="fa" sourceRef="split" targetRef="a"/>
    <bpmn:sequenceFlow id="fb" sourceRef="split" targetRef="b"/>
    <bpmn:sequenceFlow id="fc" sourceRef="split" targetRef="c"/>
    <bpmn:sequenceFlow id="ga" sourceRef="a" targetRef="meet"/>
    <bpmn:sequenceFlow id="gb" sourceRef="b" targetRef="meet"/>
    <bpmn:sequenceFlow id="gc" sourceRef="c" targetRef="meet"/>
    <bpmn:sequenceFlow id="f9" sourceRef="meet" targetRef="done"/>
  </bpmn:process>
"""
    + _TAIL
)

BPMN_W3 = (
    _HEAD
    + """  <bpmn:process id="w3" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="ask" name="Take it?">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="done"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="ask"/>
    <bpmn:sequenceFlow id="f2" sourceRef="ask" targetRef="done"/>
  </bpmn:process>
"""
    + _TAIL
)

# The same question flow serves W3 (answered) and W4 (left waiting).
FLOWLANE_W4 = FLOWLANE_W3
BPMN_W4 = BPMN_W3
