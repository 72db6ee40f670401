"""The designer pages (the Process tab, a new process) and the YAML route, over TestClient."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tests.web.ui_helpers import login

from flowlane.model.bpmn import bpmn_to_process, process_to_bpmn

BPMN = {"Content-Type": "application/bpmn+xml"}
TEMPLATE = """\
key: greeting-template
name: Greeting template
object: user
template: true
blocks:
  start: {type: start, next: hello}
  hello: {type: message, to: client, subject: Hello, body: Hi, next: done}
  done: {type: end, outcome: positive}
"""
HELLO = {
    "key": "hello",
    "name": "Hello",
    "object": "user",
    "blocks": {
        "start": {"type": "start", "next": "ask"},
        "ask": {"type": "question", "title": "Ready?", "options": {"yes": "done", "no": None}},
        "done": {"type": "end", "outcome": "positive"},
    },
}


def _json_script(html: str, element_id: str) -> Any:
    found = re.search(
        rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S
    )
    assert found is not None, f"no #{element_id} in the page"
    return json.loads(found.group(1))


def test_designer_page_for_an_owner_carries_everything_the_script_needs(client: Any) -> None:
    login(client, "owner")
    res = client.get("/processes/homework/designer")
    assert res.status_code == 200, res.text
    html = res.text
    assert "/static/vendor/bpmn-js/bpmn-modeler.production.min.js" in html
    assert "/static/vendor/bpmn-js/assets/bpmn-js.css" in html
    assert "/static/flowlane/designer.js" in html
    for button in ("btn-validate", "btn-normalize", "btn-save", "btn-yaml", "btn-download"):
        assert f'id="{button}"' in html
    assert 'id="testrun-form"' in html
    assert 'href="/processes/homework/designer" aria-current="page"' in html  # the tab strip
    config = _json_script(html, "designer-config")
    assert config["key"] == "homework" and config["editable"] is True
    assert config["bpmn"] is None  # loaded from /api/v1/processes/homework/bpmn
    assert "user" in [t["key"] for t in config["objectTypes"]]
    assert "client" in [o["id"] for o in config["recent"]]  # users are the process's objects
    assert config["blockTypes"][0] == "start" and "for_each" in config["blockTypes"]
    schema = _json_script(html, "designer-schema")
    question = schema["$defs"]["QuestionBlock"]["properties"]
    assert {"title", "options", "fields", "assign"} <= set(question)
    assert "for" in schema["$defs"]["DelayBlock"]["properties"]  # by alias
    texts = _json_script(html, "designer-texts")
    assert texts["btn.validate"] == "Validate"
    assert texts["msg.saved"] == "Saved as version {version}."
    moddle = _json_script(html, "designer-moddle")
    assert moddle["prefix"] == "flowlane"
    attrs = {p["name"] for t in moddle["types"] for p in t["properties"]}
    assert attrs == {"type", "params", "block", "named", "exit", "settings", "key"}


def test_staff_who_may_not_manage_processes_see_the_diagram_without_controls(
    client: Any,
) -> None:
    login(client, "employee-plain")
    res = client.get("/processes/homework/designer")
    assert res.status_code == 200, res.text
    config = _json_script(res.text, "designer-config")
    assert config["editable"] is False and config["recent"] == []
    assert 'id="btn-save"' not in res.text and 'id="testrun-form"' not in res.text
    assert 'id="btn-validate"' in res.text and 'id="btn-yaml"' in res.text


def test_clients_and_strangers_do_not_get_the_designer(client: Any) -> None:
    res = client.get("/processes/homework/designer", follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"] == "/login?next=%2Fprocesses%2Fhomework%2Fdesigner"
    login(client, "client")
    refused = client.get("/processes/homework/designer")
    assert refused.status_code == 403
    assert "may not see process homework" in refused.text
    assert client.get("/processes/new").status_code == 403


def test_an_unknown_process_is_not_found(client: Any) -> None:
    login(client, "owner")
    assert client.get("/processes/nope/designer").status_code == 404


def test_new_process_page_starts_from_start_to_end(client: Any) -> None:
    login(client, "owner")
    res = client.get("/processes/new")
    assert res.status_code == 200, res.text
    config = _json_script(res.text, "designer-config")
    assert config["key"] is None and config["editable"] is True
    xml = config["bpmn"]
    assert 'id="new-process"' in xml
    assert "startEvent" in xml and "endEvent" in xml and "BPMNDiagram" in xml
    assert 'id="testrun-form"' not in res.text  # nothing saved to run yet
    assert "No process is marked as a template yet" in res.text
    # a manager may start processes but not create them
    client.cookies.clear()
    login(client, "manager")
    assert client.get("/processes/new").status_code == 403


def test_new_process_from_a_template(client: Any, headers: Callable[[str], Any]) -> None:
    deployed = client.post(
        "/api/v1/processes",
        content=TEMPLATE,
        headers={**headers("owner"), "Content-Type": "text/yaml"},
    )
    assert deployed.status_code == 201, deployed.text
    login(client, "owner")
    listing = client.get("/processes/new")
    assert 'href="/processes/new?template=greeting-template"' in listing.text
    res = client.get("/processes/new?template=greeting-template")
    assert res.status_code == 200, res.text
    xml = _json_script(res.text, "designer-config")["bpmn"]
    assert 'id="greeting-template-copy"' in xml
    assert "Greeting template (copy)" in xml
    assert 'id="hello"' in xml and "sendTask" in xml
    copy = bpmn_to_process(xml, source="copy.bpmn")
    assert copy["key"] == "greeting-template-copy" and "template" not in copy
    assert list(copy["blocks"]) == ["start", "hello", "done"]
    missing = client.get("/processes/new?template=nope")
    assert missing.status_code == 404
    assert "no process template" in missing.text


def test_yaml_route_converts_a_diagram(client: Any) -> None:
    csrf = login(client, "owner")
    xml = process_to_bpmn(HELLO)
    res = client.post(
        "/processes/designer/yaml", content=xml, headers={**BPMN, "X-CSRF-Token": csrf}
    )
    assert res.status_code == 200, res.text
    text = res.json()["yaml"]
    assert "key: hello" in text and "type: question" in text
    assert "done" in text and "Ready?" in text


def test_yaml_route_names_what_is_wrong(client: Any) -> None:
    csrf = login(client, "owner")
    head = {**BPMN, "X-CSRF-Token": csrf}
    refused = client.post("/processes/designer/yaml", content=process_to_bpmn(HELLO), headers=BPMN)
    assert refused.status_code == 403  # no CSRF token
    empty = client.post("/processes/designer/yaml", content=b"", headers=head)
    assert empty.status_code == 422 and empty.json()["field"] == "body"
    not_xml = client.post("/processes/designer/yaml", content=b"key: hello", headers=head)
    assert not_xml.status_code == 422 and "not XML" in not_xml.json()["detail"]
    broken = process_to_bpmn(HELLO).replace('flowlane:params="', 'flowlane:params="{oops', 1)
    bad = client.post("/processes/designer/yaml", content=broken, headers=head)
    assert bad.status_code == 422, bad.text
    detail = bad.json()["detail"]
    assert "params" in detail and ("ask" in detail or "start" in detail or "done" in detail)


def test_designer_speaks_russian(client: Any) -> None:
    login(client, "owner")
    client.cookies.set("flowlane_lang", "ru")
    res = client.get("/processes/homework/designer")
    assert res.status_code == 200
    assert "Проверить" in res.text and "Тестовый запуск" in res.text
    texts = _json_script(res.text, "designer-texts")
    assert texts["btn.save"] == "Сохранить"
    assert texts["msg.saved"] == "Сохранено как версия {version}."
    assert all(value for value in texts.values())
