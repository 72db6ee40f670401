"""The process designer in a real browser: draw a process with the palette, set its
properties, validate and save it; test-run a recipe process and see its trace on the diagram."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect
from tests.browser.conftest import Live, login

KEY = "welcome-call"


def _ready(page: Page) -> None:
    expect(page.locator("#canvas[data-ready=true]")).to_be_visible()


def _shape(page: Page, element_id: str) -> Any:
    return page.locator(f'.djs-element[data-element-id="{element_id}"]')


def _center(page: Page, element_id: str) -> tuple[float, float]:
    box = _shape(page, element_id).bounding_box()
    assert box is not None, element_id
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _click_at(page: Page, x: float, y: float) -> None:
    # diagram-js swallows the first click within 400 ms after a drag (its click trap): a
    # person never clicks that fast after placing a block, a test does.
    page.wait_for_timeout(450)
    page.mouse.move(x - 20, y - 10)
    page.mouse.move(x, y, steps=4)
    page.mouse.down()
    page.mouse.up()


def _create(page: Page, action: str, x: float, y: float) -> str:
    """Click a palette entry, then the canvas at (x, y): the new block's id."""
    before = set(_ids(page))
    page.click(f'.djs-palette .entry[data-action="{action}"]')
    _click_at(page, x, y)
    created = [i for i in _ids(page) if i not in before and not i.endswith("_label")]
    assert len(created) == 1, created
    return created[0]


def _ids(page: Page) -> list[str]:
    ids: list[str] = page.evaluate(
        "() => window.bpmnjs.get('elementRegistry').getAll().map(e => e.id)"
    )
    return ids


def _connect(page: Page, source: str, target: str) -> str:
    """Connect two blocks through the context pad's connect tool: the new flow's id."""
    before = set(_ids(page))
    x, y = _center(page, source)
    _click_at(page, x, y)
    page.click('.djs-context-pad .entry[data-action="connect"]')
    tx, ty = _center(page, target)
    _click_at(page, tx, ty)
    created = [i for i in _ids(page) if i not in before and not i.endswith("_label")]
    assert len(created) == 1, created
    return created[0]


def _select_flow(page: Page, flow: str) -> None:
    """Click the middle of a flow's longest segment on the screen."""
    point = page.evaluate(
        """(id) => {
          const c = window.bpmnjs.get('canvas');
          const w = window.bpmnjs.get('elementRegistry').get(id).waypoints;
          let best = [w[0], w[1]], len = -1;
          for (let i = 0; i + 1 < w.length; i++) {
            const l = Math.hypot(w[i + 1].x - w[i].x, w[i + 1].y - w[i].y);
            if (l > len) { len = l; best = [w[i], w[i + 1]]; }
          }
          const vb = c.viewbox(), rect = c._container.getBoundingClientRect();
          const mx = (best[0].x + best[1].x) / 2, my = (best[0].y + best[1].y) / 2;
          return [rect.left + (mx - vb.x) * vb.scale, rect.top + (my - vb.y) * vb.scale];
        }""",
        flow,
    )
    _click_at(page, point[0], point[1])
    expect(page.locator("#fl-flow-exit")).to_be_visible()


def test_draw_validate_and_save_a_new_process(live_server: Callable[..., Live], page: Page) -> None:
    live = live_server("homework")
    login(page, live, "owner")
    page.goto(f"{live.url}/processes/new")
    _ready(page)
    # the palette offers flowlane's blocks, not generic BPMN ones
    palette = page.locator(".djs-palette")
    expect(palette.locator('[data-action="create.fl-question"]')).to_have_attribute(
        "aria-label", "Question"
    )
    expect(palette.locator('[data-action="create.fl-end-negative"]')).to_be_visible()
    expect(palette.locator('[data-action="global-connect-tool"]')).to_be_visible()
    expect(palette.locator('[data-action="create.task"]')).to_have_count(0)

    # the new process: key, name and object type in the panel (nothing selected)
    page.fill("#fl-process-key", KEY)
    page.press("#fl-process-key", "Enter")
    page.fill("#fl-process-name", "Welcome call")
    page.press("#fl-process-name", "Enter")
    expect(page.locator("#fl-process-object")).to_have_value("user")  # as most processes
    page.select_option("#fl-process-object", "order")
    page.select_option("#fl-process-object", "user")

    # start -> end becomes start -> question -> two ends: the end goes first
    ex, ey = _center(page, "end")
    _click_at(page, ex, ey)
    page.click('.djs-context-pad .entry[data-action="delete"]')
    expect(_shape(page, "end")).to_have_count(0)
    sx, sy = _center(page, "start")
    question = _create(page, "create.fl-question", sx + 180, sy)
    assert question.startswith("question")
    expect(page.locator("#fl-block-type")).to_have_value("question")
    yes_end = _create(page, "create.fl-end-positive", sx + 400, sy - 100)
    no_end = _create(page, "create.fl-end-negative", sx + 400, sy + 120)
    _connect(page, "start", question)
    yes_flow = _connect(page, question, yes_end)
    no_flow = _connect(page, question, no_end)

    # the question's title in the properties panel
    _click_at(page, *_center(page, question))
    expect(page.locator("#fl-block-id")).to_have_value(question)
    page.fill("#fl-param-title", "Did the client pick up?")
    page.press("#fl-param-title", "Enter")
    expect(page.locator("#fl-options-0")).to_have_value("yes")
    # the flows' exits: the no-flow is the answer "no", the yes-flow the answer "yes"
    _select_flow(page, no_flow)
    page.select_option("#fl-flow-exit", "options.no")
    expect(page.locator("#fl-flow-label")).to_have_value("no")
    _select_flow(page, yes_flow)
    page.select_option("#fl-flow-exit", "options.yes")
    expect(page.locator("#fl-flow-label")).to_have_value("yes")

    page.click("#btn-validate")
    expect(page.locator("#designer-status")).to_have_text("The process is valid.")
    expect(page.locator(".fl-error")).to_have_count(0)

    page.click("#btn-save")
    expect(page.locator("#designer-status")).to_have_text("Saved as version 1.")
    assert page.url.endswith(f"/processes/{KEY}/designer")
    found = page.request.get(f"{live.url}/api/v1/processes/{KEY}")
    assert found.status == 200, found.text()
    assert found.json()["name"] == "Welcome call" and found.json()["version"] == 1
    spec = page.request.get(f"{live.url}/api/v1/processes/{KEY}/versions/1").json()["spec"]
    blocks = spec["blocks"]
    assert blocks["start"]["next"] == question
    assert blocks[question]["title"] == "Did the client pick up?"
    assert blocks[question]["options"] == {"yes": yes_end, "no": no_end}
    assert blocks[yes_end]["outcome"] == "positive" and blocks[no_end]["outcome"] == "negative"


def test_validation_marks_the_blocks_with_errors(
    live_server: Callable[..., Live], page: Page
) -> None:
    live = live_server("homework")
    login(page, live, "owner")
    page.goto(f"{live.url}/processes/new")
    _ready(page)
    sx, sy = _center(page, "start")
    wait = _create(page, "create.fl-wait_for", sx + 120, sy + 150)  # its `until` is empty
    page.click("#btn-validate")
    expect(page.locator("#designer-status")).to_have_text("The process has errors.")
    expect(_shape(page, wait)).to_have_class(re.compile(r"\bfl-error\b"))
    problem = page.locator(f'#problem-list li[data-block="{wait}"]').first
    expect(problem).to_be_visible()
    problem.click()
    expect(page.locator("#fl-block-id")).to_have_value(wait)


def test_test_run_draws_the_trace_on_the_diagram(
    live_server: Callable[..., Live], page: Page
) -> None:
    live = live_server("homework")
    login(page, live, "owner")
    page.goto(f"{live.url}/processes/homework/designer")
    _ready(page)
    page.fill("#testrun-object", live.users["client"])
    page.click("#btn-test-run")
    expect(page.locator("#testrun-status")).to_contain_text(": running")
    expect(_shape(page, "start")).to_have_class(re.compile(r"\bfl-visited\b"))
    expect(_shape(page, "homework")).to_have_class(re.compile(r"\bfl-waiting\b"))
    expect(page.locator(".fl-visited")).to_have_count(1)
    assert "fl-visited" not in (_shape(page, "finish").get_attribute("class") or "")
    expect(page.locator("#trace li", has_text="entered")).to_have_count(2)


PLAIN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="x">
  <bpmn:process id="approve_leave" name="Approve leave" isExecutable="true">
    <bpmn:startEvent id="asked"/>
    <bpmn:userTask id="decide" name="Decide" camunda:assignee="boss"/>
    <bpmn:endEvent id="done"/>
    <bpmn:sequenceFlow id="f1" sourceRef="asked" targetRef="decide"/>
    <bpmn:sequenceFlow id="f2" sourceRef="decide" targetRef="done"/>
  </bpmn:process>
</bpmn:definitions>
"""


def test_open_a_bpmn_file_of_another_tool(
    live_server: Callable[..., Live], page: Page, tmp_path: Any
) -> None:
    live = live_server("homework")
    login(page, live, "owner")
    page.goto(f"{live.url}/processes/new")
    _ready(page)
    plain = tmp_path / "approve_leave.bpmn"
    plain.write_text(PLAIN)
    page.set_input_files("#file-open", str(plain))
    expect(page.locator("#designer-status")).to_have_text(
        "Opened approve_leave.bpmn: check its blocks, then save."
    )
    expect(_shape(page, "decide")).to_be_visible()
    expect(page.locator("#fl-process-key")).to_have_value("approve_leave")
    _click_at(page, *_center(page, "decide"))
    expect(page.locator("#fl-block-type")).to_have_value("task")
    # what flowlane cannot run is refused, naming the element
    odd = tmp_path / "odd.bpmn"
    odd.write_text(PLAIN.replace('<bpmn:endEvent id="done"/>', '<bpmn:complexGateway id="done"/>'))
    page.set_input_files("#file-open", str(odd))
    expect(page.locator("#designer-status")).to_contain_text(
        "element done: cannot map bpmn:complexGateway"
    )
    expect(_shape(page, "decide")).to_be_visible()  # the diagram shown before stays


STANDARD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
    xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
    xmlns:di="http://www.omg.org/spec/DD/20100524/DI" id="d" targetNamespace="x">
  <bpmn:process id="Leave_Review" name="Leave review" isExecutable="true">
    <bpmn:startEvent id="asked"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="decide" name="Decide">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:boundaryEvent id="slow" attachedToRef="decide">
      <bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:endEvent id="done"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="late"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="asked" targetRef="decide"/>
    <bpmn:sequenceFlow id="f2" sourceRef="decide" targetRef="done"/>
    <bpmn:sequenceFlow id="f3" sourceRef="slow" targetRef="late"/>
  </bpmn:process>
  <bpmndi:BPMNDiagram id="dia">
    <bpmndi:BPMNPlane id="plane" bpmnElement="Leave_Review">
      <bpmndi:BPMNShape id="asked_di" bpmnElement="asked">
        <dc:Bounds x="100" y="100" width="36" height="36"/></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="decide_di" bpmnElement="decide">
        <dc:Bounds x="200" y="78" width="100" height="80"/></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="slow_di" bpmnElement="slow">
        <dc:Bounds x="232" y="140" width="36" height="36"/></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="done_di" bpmnElement="done">
        <dc:Bounds x="370" y="100" width="36" height="36"/></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="late_di" bpmnElement="late">
        <dc:Bounds x="370" y="220" width="36" height="36"/></bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="f1_di" bpmnElement="f1">
        <di:waypoint x="136" y="118"/><di:waypoint x="200" y="118"/></bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="f2_di" bpmnElement="f2">
        <di:waypoint x="300" y="118"/><di:waypoint x="370" y="118"/></bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="f3_di" bpmnElement="f3">
        <di:waypoint x="250" y="176"/><di:waypoint x="250" y="238"/>
        <di:waypoint x="370" y="238"/></bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
"""


def test_open_a_standard_diagram_and_deploy_it_as_it_is(
    live_server: Callable[..., Live], page: Page, tmp_path: Any
) -> None:
    live = live_server("homework")
    login(page, live, "owner")
    page.goto(f"{live.url}/processes/new")
    _ready(page)
    diagram = tmp_path / "leave.bpmn"
    diagram.write_text(STANDARD)
    page.set_input_files("#file-open", str(diagram))
    # a boundary timer has no block, but the diagram runs as standard BPMN
    status = page.locator("#designer-status")
    expect(status).to_contain_text("leave.bpmn cannot be mapped to flowlane blocks")
    expect(status).to_contain_text("slow")
    expect(status).to_contain_text("runs as a standard BPMN process")
    expect(_shape(page, "slow")).to_be_visible()  # bpmn-js shows it as it is
    page.select_option("#fl-standard-object", "user")
    page.click("#btn-deploy-standard")
    # the new process's page shows its diagram, read-only
    page.wait_for_url(re.compile(r"/processes/leave_review/designer$"))
    _ready(page)
    expect(status).to_have_text(
        "A standard BPMN process: its diagram is shown as deployed and cannot be edited here."
    )
    expect(_shape(page, "decide")).to_be_visible()
    expect(_shape(page, "slow")).to_be_visible()
    expect(page.locator(".djs-palette")).to_be_hidden()
    expect(page.locator("#btn-save")).to_have_count(0)
    page.goto(f"{live.url}/processes")
    expect(page.locator("main")).to_contain_text("Leave review")
