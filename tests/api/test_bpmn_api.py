"""Processes as BPMN over the API: validate and deploy a diagram, read a version back as
BPMN, lay a diagram out afresh (flowlane.model.bpmn, ADR 0010)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

from tests.api.conftest import API
from tests.api.helpers import problem

from flowlane.model.bpmn import bpmn_to_process, yaml_to_bpmn
from flowlane.model.process import ProcessFile
from flowlane.model.yamlio import parse_text

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

Headers = Callable[[str], dict[str, str]]
BPMN = {"Content-Type": "application/bpmn+xml"}

HELLO = """\
key: hello-bpmn
name: Hello from the designer
object: user
blocks:
  start: {type: start, next: ask}
  ask:
    type: question
    title: Say hello
    assign: none
    options: {"yes": done, "no": done}
  done: {type: end, outcome: positive, result: greeted}
"""


def _norm(text: str) -> dict[str, object]:
    return ProcessFile.model_validate(parse_text(text, source="x.yaml")).model_dump(by_alias=True)


def test_deploy_from_bpmn_and_read_it_back(client: TestClient, headers: Headers) -> None:
    xml = yaml_to_bpmn(HELLO, source="hello.yaml")
    for kind in ("application/bpmn+xml", "application/xml", "text/xml; charset=utf-8"):
        r = client.post(
            f"{API}/processes/validate",
            content=xml.encode(),
            headers={**headers("manager"), "Content-Type": kind},
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"valid": True, "problems": []}
    r = client.post(f"{API}/processes", content=xml.encode(), headers={**headers("admin"), **BPMN})
    assert r.status_code == 201, r.text
    assert r.json() == {"key": "hello-bpmn", "version": 1, "created": True}
    yaml = client.get(f"{API}/processes/hello-bpmn/versions/1", headers=headers("owner")).json()
    assert _norm(yaml["yaml"]) == _norm(HELLO)

    back = client.get(f"{API}/processes/hello-bpmn/bpmn", headers=headers("employee"))
    assert back.status_code == 200, back.text
    assert back.headers["content-type"].startswith("application/bpmn+xml")
    assert 'filename="hello-bpmn.bpmn"' in back.headers["content-disposition"]
    assert _norm_data(bpmn_to_process(back.content, source="x.bpmn")) == _norm(HELLO)
    assert back.text == xml

    # a second version; ?version= picks one, the default is the current
    changed = HELLO.replace("Say hello", "Say hello again")
    client.post(
        f"{API}/processes",
        content=yaml_to_bpmn(changed, source="x.yaml"),
        headers={**headers("owner"), **BPMN},
    )
    latest = client.get(f"{API}/processes/hello-bpmn/bpmn", headers=headers("owner"))
    assert "Say hello again" in latest.text
    first = client.get(f"{API}/processes/hello-bpmn/bpmn?version=1", headers=headers("owner"))
    assert "Say hello again" not in first.text and "Say hello" in first.text
    problem(client.get(f"{API}/processes/hello-bpmn/bpmn?version=9", headers=headers("owner")), 404)
    problem(client.get(f"{API}/processes/nope/bpmn", headers=headers("owner")), 404)
    problem(client.get(f"{API}/processes/hello-bpmn/bpmn?version=0", headers=headers("owner")), 422)


def _norm_data(data: dict[str, object]) -> dict[str, object]:
    return ProcessFile.model_validate(data).model_dump(by_alias=True)


def test_a_recipe_process_reads_as_bpmn(client: TestClient, headers: Headers) -> None:
    r = client.get(f"{API}/processes/homework/bpmn", headers=headers("manager"))
    assert r.status_code == 200, r.text
    data = bpmn_to_process(r.content, source="homework.bpmn")
    spec = client.get(f"{API}/processes/homework/versions/1", headers=headers("manager")).json()
    assert _norm_data(data) == _norm_data(spec["spec"])
    assert "<bpmndi:BPMNShape" in r.text


def test_validate_bpmn_with_an_empty_exit_names_the_block(
    client: TestClient, headers: Headers
) -> None:
    undrawn = HELLO.replace('"no": done', '"no": null')
    xml = yaml_to_bpmn(undrawn, source="hello.yaml")
    assert 'flowlane:exit="options.no"' not in xml
    r = client.post(f"{API}/processes/validate", content=xml, headers={**headers("owner"), **BPMN})
    assert r.status_code == 200, r.text
    found = r.json()["problems"]
    assert [(p["block"], p["severity"]) for p in found] == [("ask", "warning")]
    assert "options.no" in found[0]["message"]


def test_bad_xml_and_xxe_are_422_problems_naming_the_element(
    client: TestClient, headers: Headers
) -> None:
    def post(path: str, body: str) -> dict[str, object]:
        r = client.post(f"{API}{path}", content=body.encode(), headers={**headers("owner"), **BPMN})
        return problem(r, 422)

    for path in ("/processes/validate", "/processes", "/processes/layout"):
        assert "not well-formed XML" in str(post(path, "<definitions")["detail"])
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"/>'
    )
    body = post("/processes/validate", xxe)
    assert body["detail"] == "process.bpmn: refused: the document holds a DTD (not allowed)"
    assert "root:" not in str(body)
    broken = yaml_to_bpmn(HELLO, source="h.yaml").replace(
        'flowlane:type="question" flowlane:params="{',
        'flowlane:type="question" flowlane:params="{{',
    )
    body = post("/processes", broken)
    assert body["detail"] == "process.bpmn: element ask: flowlane:params is not JSON"
    assert client.get(f"{API}/processes/hello-bpmn", headers=headers("owner")).status_code == 404


def test_layout_renews_a_diagram_and_stores_nothing(client: TestClient, headers: Headers) -> None:
    xml = yaml_to_bpmn(HELLO, source="hello.yaml")
    moved = xml.replace('<dc:Bounds x="', '<dc:Bounds x="9')
    r = client.post(
        f"{API}/processes/layout", content=moved, headers={**headers("employee"), **BPMN}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/bpmn+xml")
    assert r.text == xml
    r = client.post(
        f"{API}/processes/layout",
        content=HELLO,
        headers={**headers("manager"), "Content-Type": "text/yaml"},
    )
    assert r.status_code == 200 and r.text == xml
    assert client.get(f"{API}/processes/hello-bpmn", headers=headers("owner")).status_code == 404
    problem(
        client.post(f"{API}/processes/layout", json={"source": HELLO}, headers=headers("owner")),
        415,
    )
    r = client.post(
        f"{API}/processes/layout",
        content="key: x\nblocks: {s: {type: nope}}\n",
        headers={**headers("owner"), "Content-Type": "text/yaml"},
    )
    assert problem(r, 422)["detail"] == "process.yaml: block s: unknown block type 'nope'"


def test_permissions(client: TestClient, headers: Headers) -> None:
    xml = yaml_to_bpmn(HELLO, source="hello.yaml")
    problem(client.get(f"{API}/processes/homework/bpmn", headers=headers("client")), 403)
    problem(client.get(f"{API}/processes/homework/bpmn"), 401)
    problem(client.post(f"{API}/processes/layout", content=xml, headers=BPMN), 401)
    # the client is refused before the body is even read as BPMN
    problem(
        client.post(
            f"{API}/processes/layout", content="<broken", headers={**headers("client"), **BPMN}
        ),
        403,
    )
    problem(
        client.post(f"{API}/processes", content=xml, headers={**headers("manager"), **BPMN}), 403
    )
    r = client.post(f"{API}/processes/validate", content=xml, headers={**headers("client"), **BPMN})
    problem(r, 403)


STANDARD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D">
  <bpmn:process id="Std" isExecutable="true">
    <bpmn:startEvent id="S"><bpmn:outgoing>a</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Ask"><bpmn:incoming>a</bpmn:incoming>
      <bpmn:outgoing>b</bpmn:outgoing></bpmn:userTask>
    <bpmn:boundaryEvent id="Slow" attachedToRef="Ask"><bpmn:outgoing>c</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration>
      </bpmn:timerEventDefinition></bpmn:boundaryEvent>
    <bpmn:endEvent id="E"><bpmn:incoming>b</bpmn:incoming><bpmn:incoming>c</bpmn:incoming>
    </bpmn:endEvent>
    <bpmn:sequenceFlow id="a" sourceRef="S" targetRef="Ask"/>
    <bpmn:sequenceFlow id="b" sourceRef="Ask" targetRef="E"/>
    <bpmn:sequenceFlow id="c" sourceRef="Slow" targetRef="E"/>
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_standard_process_reads_back_as_its_own_diagram(
    client: TestClient, headers: Headers
) -> None:
    """What the designer's "Deploy as a standard BPMN process" sends: process text with the
    diagram inline; the designer then shows the diagram as deployed."""
    import json

    layout = client.post(
        f"{API}/processes/layout", content=STANDARD.encode(), headers={**headers("owner"), **BPMN}
    )
    assert "Slow" in problem(layout, 422)["detail"]
    spec = {
        "key": "std",
        "name": "Std",
        "object": "user",
        "bpmn": {"file": "std.bpmn", "process": "Std", "documents": {"std.bpmn": STANDARD}},
    }
    body = {"source": json.dumps(spec)}
    r = client.post(f"{API}/processes/validate", json=body, headers=headers("owner"))
    assert r.json() == {"valid": True, "problems": []}
    r = client.post(f"{API}/processes", json=body, headers=headers("owner"))
    assert r.status_code == 201, r.text
    back = client.get(f"{API}/processes/std/bpmn", headers=headers("owner"))
    assert back.status_code == 200 and back.text == STANDARD


SCRIPTED = STANDARD.replace(
    '<bpmn:process id="Std" isExecutable="true">',
    '<bpmn:process id="Std" isExecutable="true"><bpmn:extensionElements>'
    '<x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(document.cookie)</x:script>'
    "</bpmn:extensionElements>",
)


def test_a_deployed_diagram_is_served_as_a_sandboxed_attachment(
    client: TestClient, headers: Headers
) -> None:
    """A standard process's diagram comes back byte for byte: an XHTML script in it must
    never run on flowlane's origin, so it is an attachment, not sniffed, sandboxed."""
    import json

    spec = {
        "key": "xss",
        "name": "Xss",
        "object": "user",
        "bpmn": {"file": "xss.bpmn", "process": "Std", "documents": {"xss.bpmn": SCRIPTED}},
    }
    r = client.post(f"{API}/processes", json={"source": json.dumps(spec)}, headers=headers("owner"))
    assert r.status_code == 201, r.text
    for key in ("xss", "homework"):  # a standard diagram and a laid-out recipe process
        back = client.get(f"{API}/processes/{key}/bpmn", headers=headers("owner"))
        assert back.status_code == 200, back.text
        assert back.headers["content-disposition"] == f'attachment; filename="{key}.bpmn"'
        assert back.headers["x-content-type-options"] == "nosniff"
        assert back.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert back.text != SCRIPTED
    scripted = client.get(f"{API}/processes/xss/bpmn", headers=headers("owner"))
    assert scripted.text == SCRIPTED
