"""The permission matrix: every operation of the OpenAPI spec x every role (issue 7 item 3).

:data:`MATRIX` has one row per operation (``METHOD /path`` as the spec lists it): for each
role key (:data:`ROLES`: the conftest's users and ``anonymous``, no credentials) either
:data:`OK` (allowed: a 2xx, or a 4xx that is not 401/403 when the call itself was permitted,
e.g. 409 for a state conflict) or the status of the refusal (401 anonymous, 403 a role that
may not, 404 where the service hides a foreign object from a client). A test fails naming
every operation of the spec without a row, so a new route cannot skip the matrix.

Each case sends a valid request (:data:`REQUESTS`: one factory per operation over the ids of
:class:`World`, a database seeded once per session with one of everything: objects of a type
with stages, a dictionary, processes with open tasks — one assigned to the client —, an
instance stopped by an incident, comments, an attachment, an outbox message, a sink mail, a
spare API token) on a fresh copy of that SQLite database. A refused case must change nothing
(:func:`snapshot`, taken through the store protocol before and after). Roles are checked per
(operation, role) pair, refused or allowed; allowed pairs check one status class per role.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.api.conftest import API, PASSWORD, seed
from tests.api.helpers import problem

from flowlane.api.app import create_api
from flowlane.runtime.durable import load_valid_recipe, open_durable, request_account
from flowlane.services import auth, inbound, processes
from flowlane.store.records import SinkMail
from flowlane.store.sql.store import SqlStore
from flowlane.web.app import Container, create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
LAUNCHES = ROOT / "recipes" / "launches"
HOMEWORK = ROOT / "recipes" / "homework" / "processes"
ROLES = ("owner", "admin", "manager", "employee", "employee_plain", "client", "anonymous")
OK = "ok"
Expect = str | int

BOOM = """\
key: boom
name: Boom
object: user
variables:
  n: {type: number}
blocks:
  start: {type: start, next: calc}
  calc: {type: operation, set: {name: "={{ 1 / vars.n }}"}, next: done}
  done: {type: end, outcome: positive}
"""

LEAD = {
    "label": "Lead",
    "stages": ["new", "contacted"],
    "success": "won",
    "failure": "lost",
    "fields": {"name": {"type": "string"}, "client": {"type": "link", "to": "user"}},
}

NEW_PROCESS = """\
key: matrix-new
name: A new process
object: user
blocks:
  start: {type: start, next: done}
  done: {type: end}
"""


# ---- the seeded world ----------------------------------------------------------------------


@dataclass
class World:
    """The seeded database: ids of one of everything."""

    path: Path
    tokens: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict)


def _seed_world(path: Path) -> World:
    url = f"sqlite:///{path}"
    seeded = seed(url, LAUNCHES)
    store = open_durable(load_valid_recipe(LAUNCHES), url)
    ids: dict[str, str] = {}
    try:
        acc = request_account(store, path.parent / "data")

        def make() -> None:
            for name in ("homework.yaml", "homework-review.yaml"):
                processes.deploy(acc, (HOMEWORK / name).read_text(), by=None)
            processes.deploy(acc, BOOM, by=None)
            acc.define_type("lead", LEAD, by=None)
            acc.add_dictionary("reasons", ["too expensive"], by=None)
            acc.create_object("lead", {"name": "Lead one"}, object_id="lead-a")
            acc.create_object(
                "lead", {"name": "Client's lead", "client": "client"}, object_id="lead-own"
            )
            # welcome-order starts on it: a question task for the order's manager
            acc.create_object(
                "order",
                {"number": "A-1", "status": "new", "amount": 10, "manager": "manager"},
                object_id="order-1",
            )
            ids["homework"] = processes.start(
                acc, "homework", "client", {"topic": "Sales", "homework": "Read"}, by=None
            )
            ids["review"] = processes.start(acc, "homework-review", "client", {}, by=None)
            ids["boom"] = processes.start(acc, "boom", "client", {"n": 0}, by=None)
            acc.stop_process("vip-review", by=None)
            ids["spare_token"] = auth.create_token(acc, "client", "spare", by=None).record.id

        acc.attempt(make)
        inbound.receive_hook(acc, "purchase", {"email": "client@example.com", "ticket": "A1"})

        def more() -> None:
            hw = _open_task(store, "homework")
            ids["task_client"] = hw.id
            ids["task_review"] = _open_task(store, "homework-review").id
            ids["task_order"] = _open_task(store, "welcome-order").id
            extra = acc.add_task(
                "homework-review",
                object_id="client",
                title="Check the homework",
                text="",
                assignee="employee",
                priority=None,
                by=None,
            )
            ids["task_employee"] = extra.id
            acc.comment(hw, "Started", by="client")
            meta = acc.attach(hw, "notes.txt", b"my notes", by="client", content_type="text/plain")
            ids["attachment"] = str(meta["id"])
            store.add_sink_mail(
                SinkMail(
                    outbox_id="x.m1",
                    message_id="<x.m1@flowlane>",
                    to="client@example.com",
                    subject="Hello",
                    raw="Subject: Hello\nTo: client@example.com\n\nHi\n",
                    stored_at=datetime(2024, 5, 1, tzinfo=UTC),
                )
            )

        acc.attempt(more)
        (mail,) = store.sink_mails()
        ids["mail"] = str(mail.id)
        (delivery,) = store.deliveries()
        ids["message"] = delivery.id
        assert store.get_instance(ids["boom"]).status == "incident"  # type: ignore[union-attr]
    finally:
        store.close()
    return World(path, dict(seeded.tokens), ids)


def _open_task(store: SqlStore, process: str) -> Any:
    (task,) = store.find_tasks(open_only=True, process=process)
    full = store.get_task(task.id)
    assert full is not None
    return full


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return _seed_world(tmp_path_factory.mktemp("matrix") / "world.db")


@dataclass
class Env:
    client: TestClient
    store: SqlStore
    world: World

    def headers(self, role: str) -> dict[str, str]:
        if role == "anonymous":
            return {}
        return {"Authorization": f"Bearer {self.world.tokens[role]}"}


def _serve(world: World, folder: Path) -> Iterator[Env]:
    path = folder / "copy.db"
    shutil.copyfile(world.path, path)
    store = open_durable(load_valid_recipe(LAUNCHES), f"sqlite:///{path}")
    try:
        container = Container(store=store, data=folder / "data")
        shutil.copytree(world.path.parent / "data", folder / "data", dirs_exist_ok=True)
        with TestClient(create_app(container), base_url="http://testserver") as client:
            yield Env(client, store, world)
    finally:
        store.close()


@pytest.fixture(scope="module")
def reading_env(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """One copy of the world for every GET (reads change nothing: the refused ones are
    checked for that like the others)."""
    yield from _serve(world, tmp_path_factory.mktemp("matrix-reads"))


@pytest.fixture
def env(request: pytest.FixtureRequest, world: World, tmp_path: Path) -> Iterator[Env]:
    """A fresh copy of the world, served (a shared one for GET operations)."""
    op = getattr(request.node, "callspec", None) and request.node.callspec.params.get("op")
    if isinstance(op, str) and op.startswith("GET "):
        yield request.getfixturevalue("reading_env")
        return
    yield from _serve(world, tmp_path)


# ---- what "nothing changed" means ----------------------------------------------------------


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def snapshot(store: SqlStore) -> dict[str, Any]:
    """What a refused request must leave as it was, read through the store protocol:
    objects (ids and data), instances (status, tokens), tasks (assignee, status, comments,
    attachments, answers), the history, the outbox, the mail sink, processes (versions,
    status, approval), API tokens (revoked or not), in-app read state."""
    with store.transaction():
        objects = {
            key: {oid: _digest(store.get_object(oid).data) for oid in store.objects_of_type(key)}  # type: ignore[union-attr]
            for key in sorted(store.schema.types)
        }
        instances, n_instances = store.find_instances(limit=10_000)
        tasks = store.find_tasks()
        return {
            "objects": objects,
            "instances": n_instances,
            "instance_states": sorted(
                (st.id, st.status, st.version, len(st.tokens), _digest(st.vars)) for st in instances
            ),
            "tasks": sorted(
                (
                    t.id,
                    t.assignee,
                    t.status,
                    t.closed,
                    _digest(store.get_task(t.id).comments),  # type: ignore[union-attr]
                    len(store.get_task(t.id).attachments),  # type: ignore[union-attr]
                    _digest(t.answer),
                )
                for t in tasks
            ),
            "history": sum(1 for _ in store.history()),
            "outbox": store.count_deliveries(),
            "sink": store.count_sink_mails(),
            "processes": [
                (
                    key,
                    len(store.process_versions(key)),
                    _digest(store.process_status(key)),
                    store.is_approved(key),
                )
                for key in store.process_keys()
            ],
            "tokens": sorted((t.id, t.revoked_at is not None) for t in store.api_tokens()),
            "unread": {u: store.inapp_unread(u) for u in ("client", "manager", "owner")},
            "types": _digest(sorted(store.schema.types)),
            "dictionaries": _digest(store.schema.dictionaries),
            "groups": _digest(sorted(store.schema.groups)),
        }


# ---- one valid request per operation -------------------------------------------------------


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    json: Any = None
    content: str | None = None
    content_type: str | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None


Factory = Callable[[dict[str, str]], Req]


def _get(path: str) -> Factory:
    return lambda ids: Req("GET", path.format(**ids))


def _post(path: str, body: Any = None) -> Factory:
    return lambda ids: Req("POST", path.format(**ids), json=body)


REQUESTS: dict[str, Factory] = {
    # auth, users, tokens
    "POST /auth/login": _post("/auth/login", {"email": "client@example.com", "password": PASSWORD}),
    "POST /auth/logout": _post("/auth/logout"),
    "GET /me": _get("/me"),
    "GET /tokens": _get("/tokens"),
    "POST /tokens": _post("/tokens", {"name": "ci", "user_id": "client"}),
    "DELETE /tokens/{token_id}": lambda ids: Req("DELETE", f"/tokens/{ids['spare_token']}"),
    "GET /users": _get("/users"),
    "POST /users": _post("/users", {"id": "newbie", "name": "New", "role": "client"}),
    "GET /users/{user_id}": _get("/users/client"),
    "PATCH /users/{user_id}": lambda ids: Req(
        "PATCH", "/users/employee-plain", json={"name": "Renamed"}
    ),
    "PUT /users/{user_id}/password": lambda ids: Req(
        "PUT", "/users/employee-plain/password", json={"password": "a new long passphrase"}
    ),
    "GET /groups": _get("/groups"),
    "POST /groups": _post("/groups", {"key": "vip"}),
    "GET /roles": _get("/roles"),
    # object types, dictionaries, objects, kanban
    "GET /object-types": _get("/object-types"),
    "POST /object-types": _post("/object-types", {"key": "deal", "spec": LEAD}),
    "GET /object-types/{key}": _get("/object-types/lead"),
    "PUT /object-types/{key}": lambda ids: Req(
        "PUT", "/object-types/lead", json={"spec": {**LEAD, "label": "Leads"}}
    ),
    "GET /dictionaries": _get("/dictionaries"),
    "POST /dictionaries": _post("/dictionaries", {"key": "sizes", "values": ["S"]}),
    "GET /dictionaries/{key}": _get("/dictionaries/reasons"),
    "POST /dictionaries/{key}/values": _post("/dictionaries/reasons/values", {"value": "late"}),
    "GET /objects": _get("/objects?type=lead"),
    "POST /objects": _post("/objects", {"type": "lead", "data": {"name": "New lead"}}),
    "POST /objects/search": _post("/objects/search", {"type": "lead"}),
    "GET /objects/{object_id}": _get("/objects/lead-a"),
    "PATCH /objects/{object_id}": lambda ids: Req(
        "PATCH", "/objects/lead-a", json={"set": {"name": "Renamed"}}
    ),
    "POST /objects/{object_id}/stage": _post("/objects/lead-a/stage", {"to": "contacted"}),
    "GET /kanban/{type_key}": _get("/kanban/lead"),
    "GET /kanban/{type_key}/{stage}": _get("/kanban/lead/new"),
    # tasks
    "GET /inbox": _get("/inbox"),
    "GET /tasks": _get("/tasks?process=homework"),
    "GET /tasks/{task_id}": _get("/tasks/{task_client}"),
    "POST /tasks/{task_id}/claim": _post("/tasks/{task_review}/claim"),
    "POST /tasks/{task_id}/unclaim": _post("/tasks/{task_order}/unclaim"),
    "POST /tasks/{task_id}/answer": _post("/tasks/{task_employee}/answer", {}),
    "POST /tasks/{task_id}/status": _post("/tasks/{task_client}/status", {"to": "in_progress"}),
    "GET /tasks/{task_id}/comments": _get("/tasks/{task_client}/comments"),
    "POST /tasks/{task_id}/comments": _post("/tasks/{task_client}/comments", {"text": "Hi"}),
    "POST /tasks/{task_id}/attachments": lambda ids: Req(
        "POST",
        f"/tasks/{ids['task_client']}/attachments",
        files={"file": ("more.txt", b"more notes", "text/plain")},
    ),
    "GET /tasks/{task_id}/attachments/{attachment_id}": _get(
        "/tasks/{task_client}/attachments/{attachment}"
    ),
    "GET /tasks/{task_id}/history": _get("/tasks/{task_client}/history"),
    "GET /tasks/{task_id}/variables": _get("/tasks/{task_client}/variables"),
    "PUT /tasks/{task_id}/variables": lambda ids: Req(
        "PUT", f"/tasks/{ids['task_client']}/variables", json={"values": {"topic": "Funnels"}}
    ),
    "POST /processes/{key}/tasks": _post(
        "/processes/homework-review/tasks", {"title": "Extra check", "object": "client"}
    ),
    "POST /processes/{key}/reassign": _post(
        "/processes/homework-review/reassign", {"to": "manager"}
    ),
    "GET /processes/{key}/statistics": _get("/processes/homework/statistics"),
    "GET /clients/{client_id}/tasks": _get("/clients/client/tasks"),
    # messages, notifications, forms, hooks
    "GET /messages": _get("/messages"),
    "GET /mail-sink": _get("/mail-sink"),
    "GET /mail-sink/{mail_id}": _get("/mail-sink/{mail}"),
    "GET /notifications": _get("/notifications"),
    "GET /notifications/unread-count": _get("/notifications/unread-count"),
    "POST /notifications/read": _post("/notifications/read", {"all": True}),
    "GET /forms": _get("/forms"),
    "GET /forms/{key}": _get("/forms/signup"),
    "POST /forms/{key}/submissions": _post(
        "/forms/signup/submissions", {"name": "Vera", "email": "vera@example.com"}
    ),
    "GET /hooks": _get("/hooks"),
    # processes
    "GET /processes": _get("/processes"),
    "POST /processes": lambda ids: Req(
        "POST", "/processes", content=NEW_PROCESS, content_type="text/yaml"
    ),
    "POST /processes/validate": lambda ids: Req(
        "POST", "/processes/validate", content=NEW_PROCESS, content_type="text/yaml"
    ),
    "GET /processes/{key}": _get("/processes/homework"),
    "GET /processes/{key}/versions": _get("/processes/homework/versions"),
    "GET /processes/{key}/versions/{number}": _get("/processes/homework/versions/1"),
    "GET /processes/{key}/bpmn": _get("/processes/homework/bpmn?version=1"),
    "POST /processes/layout": lambda ids: Req(
        "POST", "/processes/layout", content=NEW_PROCESS, content_type="text/yaml"
    ),
    "GET /processes/{key}/forecast": _get("/processes/welcome-order/forecast"),
    "GET /processes/{key}/templates": _get("/processes/welcome-order/templates"),
    "POST /processes/{key}/approve": _post("/processes/refund-approval/approve"),
    "POST /processes/{key}/stop": _post("/processes/homework/stop"),
    "POST /processes/{key}/activate": _post("/processes/vip-review/activate"),
    "POST /processes/{key}/restart": _post("/processes/homework/restart"),
    "POST /processes/{key}/migrate": _post("/processes/homework/migrate", {"to_version": 1}),
    "POST /processes/{key}/start": _post(
        "/processes/homework/start",
        {"object": "manager", "vars": {"topic": "T", "homework": "H"}},
    ),
    "POST /processes/{key}/mass-start": _post(
        "/processes/homework-review/mass-start", {"where": "object.role == 'manager'"}
    ),
    "POST /processes/{key}/test-run": _post(
        "/processes/homework-review/test-run", {"object": "manager"}
    ),
    # instances
    "GET /instances": _get("/instances"),
    "GET /instances/{instance_id}": _get("/instances/{homework}"),
    "GET /instances/{instance_id}/trace": _get("/instances/{homework}/trace"),
    "GET /incidents": _get("/incidents"),
    "POST /instances/{instance_id}/retry": _post("/instances/{boom}/retry"),
    "POST /instances/{instance_id}/cancel": _post("/instances/{homework}/cancel"),
}


def send(env: Env, op: str, role: str) -> Any:
    req = REQUESTS[op](env.world.ids)
    headers = env.headers(role)
    if req.content_type is not None:
        headers["Content-Type"] = req.content_type
    return env.client.request(
        req.method,
        API + req.path,
        headers=headers,
        json=req.json,
        content=req.content,
        files=req.files,
    )


# ---- the matrix ----------------------------------------------------------------------------

# Y: allowed (the request succeeds); 401: no credentials; 403: the role may not; 404: the
# service hides a foreign object (the client's own cabinet). Columns are ROLES in order:
# own(er) adm(in) man(ager) emp(loyee, work_with_tasks) pla(in employee) cli(ent) ano(nymous).
# The requests are those of REQUESTS: e.g. tasks/{task_id} is the client's homework task
# (the client is its assignee; a manager is none of assignee, executor or supervisor), the
# answer goes to a task assigned to the employee, users/{user_id} is employee-plain's own.
#                                                   own adm man emp pla cli ano
TABLE = """
POST /auth/login                                     Y   Y   Y   Y   Y   Y   Y
POST /auth/logout                                    Y   Y   Y   Y   Y   Y  401
GET /me                                              Y   Y   Y   Y   Y   Y  401
GET /tokens                                          Y   Y   Y   Y   Y   Y  401
POST /tokens                                         Y   Y  403 403 403  Y  401
DELETE /tokens/{token_id}                            Y   Y  404 404 404  Y  401
GET /users                                           Y   Y   Y   Y   Y  403 401
POST /users                                          Y   Y  403 403 403 403 401
GET /users/{user_id}                                 Y   Y   Y   Y   Y   Y  401
PATCH /users/{user_id}                               Y   Y  403 403  Y  404 401
PUT /users/{user_id}/password                        Y   Y  403 403 403 403 401
GET /groups                                          Y   Y   Y   Y   Y  403 401
POST /groups                                         Y   Y  403 403 403 403 401
GET /roles                                           Y   Y   Y   Y   Y   Y  401
GET /object-types                                    Y   Y   Y   Y   Y   Y  401
POST /object-types                                   Y   Y  403 403 403 403 401
GET /object-types/{key}                              Y   Y   Y   Y   Y   Y  401
PUT /object-types/{key}                              Y   Y  403 403 403 403 401
GET /dictionaries                                    Y   Y   Y   Y   Y   Y  401
POST /dictionaries                                   Y   Y  403 403 403 403 401
GET /dictionaries/{key}                              Y   Y   Y   Y   Y   Y  401
POST /dictionaries/{key}/values                      Y   Y  403 403 403 403 401
GET /objects                                         Y   Y   Y   Y   Y   Y  401
POST /objects                                        Y   Y   Y  403 403 403 401
POST /objects/search                                 Y   Y   Y   Y   Y   Y  401
GET /objects/{object_id}                             Y   Y   Y   Y   Y  404 401
PATCH /objects/{object_id}                           Y   Y   Y  403 403 404 401
POST /objects/{object_id}/stage                      Y   Y   Y  403 403 404 401
GET /kanban/{type_key}                               Y   Y   Y   Y   Y   Y  401
GET /kanban/{type_key}/{stage}                       Y   Y   Y   Y   Y   Y  401
GET /inbox                                           Y   Y   Y   Y   Y   Y  401
GET /tasks                                           Y   Y  403 403 403 403 401
GET /tasks/{task_id}                                 Y   Y  403 403 403  Y  401
POST /tasks/{task_id}/claim                          Y   Y   Y  403 403 403 401
POST /tasks/{task_id}/unclaim                        Y   Y   Y  403 403 403 401
POST /tasks/{task_id}/answer                         Y   Y   Y   Y  403 403 401
POST /tasks/{task_id}/status                        403 403 403 403 403  Y  401
GET /tasks/{task_id}/comments                        Y   Y  403 403 403  Y  401
POST /tasks/{task_id}/comments                       Y   Y  403 403 403  Y  401
POST /tasks/{task_id}/attachments                    Y   Y  403 403 403  Y  401
GET /tasks/{task_id}/attachments/{attachment_id}     Y   Y  403 403 403  Y  401
GET /tasks/{task_id}/history                         Y   Y  403 403 403  Y  401
GET /tasks/{task_id}/variables                       Y   Y  403 403 403  Y  401
PUT /tasks/{task_id}/variables                       Y   Y  403 403 403 403 401
POST /processes/{key}/tasks                          Y   Y   Y  403 403 403 401
POST /processes/{key}/reassign                       Y   Y  403 403 403 403 401
GET /processes/{key}/statistics                      Y   Y  403 403 403 403 401
GET /clients/{client_id}/tasks                       Y   Y   Y   Y   Y   Y  401
GET /messages                                        Y   Y  403 403 403 403 401
GET /mail-sink                                       Y   Y  403 403 403 403 401
GET /mail-sink/{mail_id}                             Y   Y  403 403 403 403 401
GET /notifications                                   Y   Y   Y   Y   Y   Y  401
GET /notifications/unread-count                      Y   Y   Y   Y   Y   Y  401
POST /notifications/read                             Y   Y   Y   Y   Y   Y  401
GET /forms                                           Y   Y   Y   Y   Y  403 401
GET /forms/{key}                                     Y   Y   Y   Y   Y  403 401
POST /forms/{key}/submissions                        Y   Y   Y   Y   Y  403 401
GET /hooks                                           Y   Y  403 403 403 403 401
GET /processes                                       Y   Y   Y   Y   Y  403 401
POST /processes                                      Y   Y  403 403 403 403 401
POST /processes/validate                             Y   Y   Y   Y   Y  403 401
GET /processes/{key}                                 Y   Y   Y   Y   Y  403 401
GET /processes/{key}/versions                        Y   Y   Y   Y   Y  403 401
GET /processes/{key}/versions/{number}               Y   Y   Y   Y   Y  403 401
GET /processes/{key}/bpmn                            Y   Y   Y   Y   Y  403 401
POST /processes/layout                               Y   Y   Y   Y   Y  403 401
GET /processes/{key}/forecast                        Y   Y   Y   Y   Y  403 401
GET /processes/{key}/templates                       Y   Y   Y   Y   Y  403 401
POST /processes/{key}/approve                        Y   Y  403 403 403 403 401
POST /processes/{key}/stop                           Y   Y  403 403 403 403 401
POST /processes/{key}/activate                       Y   Y  403 403 403 403 401
POST /processes/{key}/restart                        Y   Y  403 403 403 403 401
POST /processes/{key}/migrate                        Y   Y  403 403 403 403 401
POST /processes/{key}/start                          Y   Y   Y  403 403 403 401
POST /processes/{key}/mass-start                     Y   Y   Y  403 403 403 401
POST /processes/{key}/test-run                       Y   Y  403 403 403 403 401
GET /instances                                       Y   Y   Y   Y   Y  403 401
GET /instances/{instance_id}                         Y   Y   Y   Y   Y  403 401
GET /instances/{instance_id}/trace                   Y   Y   Y   Y   Y  403 401
GET /incidents                                       Y   Y   Y   Y   Y  403 401
POST /instances/{instance_id}/retry                  Y   Y  403 403 403 403 401
POST /instances/{instance_id}/cancel                 Y   Y  403 403 403 403 401
"""
"""POST /tasks/{task_id}/status: the homework workflow's new -> in_progress is the
assignee's (the client's) only; no role bypasses a task's workflow (recipes/homework)."""


def _matrix() -> dict[str, dict[str, Expect]]:
    out: dict[str, dict[str, Expect]] = {}
    for line in TABLE.strip().splitlines():
        method, path, *cells = line.split()
        assert len(cells) == len(ROLES), line
        out[f"{method} {path}"] = {
            role: OK if cell == "Y" else int(cell) for role, cell in zip(ROLES, cells, strict=True)
        }
    return out


MATRIX = _matrix()
METHODS = ("get", "post", "put", "patch", "delete")


def spec_operations() -> list[str]:
    """Every operation of the API's OpenAPI spec as ``METHOD /path``."""
    spec = create_api(Container(store=None)).openapi()  # type: ignore[arg-type]
    return [
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    ]


def test_every_operation_of_the_spec_has_a_row_and_a_request() -> None:
    ops = spec_operations()
    assert len(ops) == len(set(ops))
    missing = [op for op in ops if op not in MATRIX]
    assert not missing, f"operations without a row in the permission matrix: {missing}"
    no_request = [op for op in ops if op not in REQUESTS]
    assert not no_request, f"operations without a request in REQUESTS: {no_request}"
    stale = sorted((set(MATRIX) | set(REQUESTS)) - set(ops))
    assert not stale, f"rows for operations the spec does not have: {stale}"


def test_the_matrix_follows_the_roles() -> None:
    """Sanity of the table itself: anonymous is refused everywhere but the login; owner and
    admin are alike; a plain employee never does more than one with work_with_tasks."""
    for op, row in MATRIX.items():
        assert row["anonymous"] == (OK if op == "POST /auth/login" else 401), op
        assert row["owner"] == row["admin"], op
        if row["employee"] != OK:
            assert row["employee_plain"] != OK or op == "PATCH /users/{user_id}", op


def _cases(allowed: bool) -> list[Any]:
    return [
        pytest.param(op, role, expect, id=f"{op}-{role}")
        for op, row in MATRIX.items()
        for role, expect in row.items()
        if (expect == OK) == allowed
    ]


@pytest.mark.parametrize(("op", "role", "expect"), _cases(allowed=False))
def test_refused(env: Env, op: str, role: str, expect: int) -> None:
    before = snapshot(env.store)
    r = send(env, op, role)
    problem(r, expect)
    assert snapshot(env.store) == before, f"{op} by {role} was refused but changed something"


@pytest.mark.parametrize(("op", "role", "expect"), _cases(allowed=True))
def test_allowed(env: Env, op: str, role: str, expect: str) -> None:
    r = send(env, op, role)
    assert r.status_code not in (401, 403), (op, role, r.text)
    assert 200 <= r.status_code < 300, (op, role, r.status_code, r.text)
