"""Regression tests of the web UI's review (issue 8): no secret variable reaches the browser,
no markup of the account's own definitions escapes its attribute or JSON, malformed requests
answer a message naming the field (never a 500), the mail sink's page has a strict policy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from fastapi.testclient import TestClient
from tests.api.conftest import API
from tests.web.ui_helpers import login

from flowlane.services.account import Account
from flowlane.store.records import SinkMail, TaskRecord

MakeAccount = Callable[[], Account]
Headers = Callable[[str], dict[str, str]]
HX = {"HX-Request": "true"}

VAULT = """\
key: vault
name: Vault
object: user
task:
  executors: [role:manager]
variables:
  topic: {type: string, label: Topic}
  api_key: {type: string, label: API key}
  pin: {type: password, label: PIN}
blocks:
  start: {type: start, next: check}
  check:
    type: task
    title: "Check {{ object.name }}"
    assign: "=object"
    wait: true
    next: done
  done: {type: end, outcome: positive}
"""


def _deploy(client: TestClient, headers: Headers, text: str) -> None:
    r = client.post(
        f"{API}/processes", content=text, headers={**headers("owner"), "Content-Type": "text/yaml"}
    )
    assert r.status_code == 201, r.text


def _vault_task(account: MakeAccount, object_id: str) -> TaskRecord:
    acc = account()
    out: list[TaskRecord] = []

    def go() -> None:
        values = {"topic": "Funnels", "api_key": "sk-live-123", "pin": "4711"}
        iid = acc.start("vault", object_id, values, by="owner")
        out.append(next(t for t in acc.store.find_tasks(open_only=True) if t.instance_id == iid))

    acc.attempt(go)
    return out[0]


def _vars(account: MakeAccount, task: TaskRecord) -> dict[str, Any]:
    state = account().store.get_instance(task.instance_id)
    assert state is not None
    return dict(state.vars)


# ---- secrets on the task page -------------------------------------------------------------


def test_the_task_page_never_shows_secret_variables(
    client: TestClient, account: MakeAccount, users: dict[str, str], headers: Headers
) -> None:
    _deploy(client, headers, VAULT)
    task = _vault_task(account, users["client"])
    # the client (read-only variables): secrets masked, the rest shown
    login(client, users["client"])
    page = client.get(f"/tasks/{task.id}")
    assert page.status_code == 200, page.text
    assert 'data-variable="topic">Funnels<' in page.text
    assert "sk-live-123" not in page.text and "4711" not in page.text
    assert 'data-variable="api_key">***<' in page.text
    assert 'data-variable="pin">***<' in page.text
    # staff who fill variables: secrets are empty password inputs
    csrf = login(client, users["manager"])
    page = client.get(f"/tasks/{task.id}")
    assert page.status_code == 200, page.text
    assert "sk-live-123" not in page.text and "4711" not in page.text
    assert re.search(
        r'<input type="password" id="in-v\.api_key" name="v\.api_key"[^>]*value=""', page.text
    )
    assert re.search(r'<input type="password" id="in-v\.pin" name="v\.pin"[^>]*value=""', page.text)
    # saving the form as shown (secrets left empty) keeps them
    form = {"v.topic": "Ads", "v.api_key": "", "v.pin": ""}
    res = client.post(
        f"/tasks/{task.id}/variables", data=form, headers={**HX, "X-CSRF-Token": csrf}
    )
    assert res.status_code == 200 and "Variables saved." in res.text, res.text
    assert _vars(account, task) == {"topic": "Ads", "api_key": "sk-live-123", "pin": "4711"}
    # a secret typed in changes; the history does not repeat it
    form = {"v.topic": "Ads", "v.api_key": "sk-live-456", "v.pin": ""}
    res = client.post(
        f"/tasks/{task.id}/variables", data=form, headers={**HX, "X-CSRF-Token": csrf}
    )
    assert res.status_code == 200 and "Variables saved." in res.text, res.text
    assert _vars(account, task)["api_key"] == "sk-live-456"
    assert "sk-live-456" not in res.text and "api_key = ***" in res.text


# ---- markup of the account's own definitions -------------------------------------------------


def test_a_field_name_with_quotes_stays_inside_its_attribute(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    from flowlane.objects import FieldSpec
    from flowlane.web.ui.common import ENV

    evil = 'x" onfocus="alert(1)" autofocus data-x="'
    macros = ENV.get_template("ui/objects/_macros.html").make_module({"_": str})
    html = str(macros.input(FieldSpec(evil, "string"), "v", {}, "wrong"))  # type: ignore[attr-defined]
    assert 'onfocus="alert(1)"' not in html
    assert 'aria-describedby="err-x&#34; onfocus=&#34;alert(1)&#34;' in html
    assert 'aria-invalid="true"' in html
    plain = str(macros.input(FieldSpec("name", "string"), "v", {}, None))  # type: ignore[attr-defined]
    assert "aria-invalid" not in plain and "aria-describedby" not in plain


def test_designer_json_cannot_open_a_comment_or_end_its_script(
    client: TestClient, headers: Headers, users: dict[str, str]
) -> None:
    name = "Evil <!--<script> </script><img src=x onerror=alert(1)> & co"
    text = VAULT.replace("name: Vault", f"name: {json.dumps(name)}\ntemplate: true")
    _deploy(client, headers, text)
    login(client, users["owner"])
    # a copy of the template: the page carries its BPMN (and the name) as JSON
    res = client.get("/processes/new?template=vault")
    assert res.status_code == 200, res.text
    scripts = re.findall(
        r'<script type="application/json" id="([^"]+)">(.*?)</script>', res.text, re.S
    )
    assert {i for i, _ in scripts} >= {"designer-config", "designer-texts", "designer-schema"}
    for _id, body in scripts:
        assert "<" not in body and ">" not in body and "&" not in body, _id
    config = json.loads(dict(scripts)["designer-config"])
    assert "<!--<script>" in config["bpmn"] or "&lt;!--&lt;script&gt;" in config["bpmn"]
    # the process's name, with its markup, shows escaped in the page only
    page = client.get("/processes/vault/designer").text
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


# ---- malformed requests --------------------------------------------------------------------


def test_malformed_mass_start_answers_naming_the_field(
    client: TestClient, users: dict[str, str]
) -> None:
    csrf = login(client, users["owner"])
    hx = {**HX, "X-CSRF-Token": csrf}
    for size in ("²", "0", "100000", "-1", "x"):
        res = client.post(
            "/objects/user/mass-start", data={"process": "homework", "size": size}, headers=hx
        )
        assert res.status_code == 422, (size, res.status_code, res.text)
        assert 'class="flash error"' in res.text and "size: a batch takes 1 to 500" in res.text
    ok = client.post(
        "/objects/user/mass-start", data={"process": "homework", "size": "25"}, headers=hx
    )
    assert ok.status_code == 200 and '"size": 25' in ok.text, ok.text
    deep = {"process": "homework", "total": "1", "size": "1", "where": "[" * 10_000}
    res = client.post("/objects/user/mass-start/batch", data=deep, headers=hx)
    assert res.status_code == 422 and "where: not a filter" in res.text, res.text


def test_invalid_parameters_answer_a_page_naming_the_field(
    client: TestClient, users: dict[str, str]
) -> None:
    csrf = login(client, users["owner"])
    page = client.get("/inbox?page=abc")
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert "page: Input should be a valid integer" in page.text and "<h1>" in page.text
    # the value given is not repeated (it could be markup)
    res = client.post("/notifications/n1/read?page=<b>x</b>", headers={**HX, "X-CSRF-Token": csrf})
    assert res.status_code == 422 and res.headers["content-type"].startswith("text/html")
    assert res.text.startswith('<div class="flash error"') and "page: " in res.text
    assert "<b>x</b>" not in res.text
    # translated for a Russian reader
    client.cookies.set("flowlane_lang", "ru")
    assert "Запрос неверен: page:" in client.get("/outbox?page=x").text
    client.cookies.delete("flowlane_lang")


# ---- the mail sink ---------------------------------------------------------------------------


def test_a_kept_mail_page_loads_nothing_from_elsewhere(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    acc = account()
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.com", "b@example.com", "Pixel"
    msg.set_content("Hi")
    msg.add_alternative('<p>Hi</p><img src="https://tracker.example/p.gif">', subtype="html")
    stored = datetime(2024, 5, 1, 9, tzinfo=UTC)
    mail = SinkMail("p1", "<p1@example.com>", "b@example.com", "Pixel", msg.as_string(), stored)
    acc.attempt(lambda: acc.store.add_sink_mail(mail))
    login(client, users["owner"])
    found = re.search(r'<a href="/outbox/sink/(\d+)">Pixel</a>', client.get("/outbox/sink").text)
    assert found is not None
    res = client.get(f"/outbox/sink/{found.group(1)}")
    assert res.status_code == 200, res.text
    # the frame (srcdoc) inherits the page's policy: no image, style or frame of another host
    policy = res.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert 'sandbox=""' in res.text and "tracker.example" in res.text
