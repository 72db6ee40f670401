"""Processes: the list, one process, its versions and their source (also as BPMN), validating
and deploying process files (YAML, JSON or BPMN), a fresh BPMN layout, the lifecycle
(approve, stop, activate, restart), the forecast, starts (one object, a mass start, a test run
on one real object), templates, migration."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, field_validator, model_validator

from flowlane.api.deps import CallDep, ContainerDep, PrincipalDep, locked
from flowlane.api.pagination import Page, PageDep
from flowlane.api.schemas import PROBLEM_RESPONSES, Problem, Strict
from flowlane.core.errors import FlowlaneError, Invalid, UnsupportedType
from flowlane.expr import compile_expression
from flowlane.model.bpmn import bpmn_to_yaml, layout_bpmn, process_to_bpmn, yaml_to_bpmn
from flowlane.model.bpmn_process import diagram_of
from flowlane.model.segment import Filter, parse_filter
from flowlane.runtime import durable
from flowlane.services import permissions, processes
from flowlane.services.account import Account
from flowlane.services.admin import ProcessInfo

router = APIRouter(tags=["processes"], responses=PROBLEM_RESPONSES)

MASS_START_LIMIT = 100_000
"""Most objects a mass start over the API starts; more are started with the CLI."""

YAML_TYPES = ("text/yaml", "application/yaml", "application/x-yaml", "text/plain")
BPMN_TYPE = "application/bpmn+xml"
BPMN_TYPES = (BPMN_TYPE, "application/xml", "text/xml")
"""Bodies read as a BPMN diagram (flowlane's dialect, ADR 0010) and converted to YAML."""
BPMN_SOURCE = "process.bpmn"
"""The file name errors of a BPMN body are located in."""
SOURCE_RESPONSES: dict[int | str, dict[str, Any]] = {
    415: {"model": Problem, "description": "A body that is neither YAML text, JSON nor BPMN"},
}
_BPMN_EXAMPLE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions '
    'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:flowlane="https://flowlane.dev/schema/bpmn/1.0" id="d" targetNamespace="x">\n'
    '  <bpmn:process id="hello" name="Hello" flowlane:settings=\'{"object": "user"}\'>\n'
    '    <bpmn:startEvent id="start" flowlane:type="start" />\n'
    '    <bpmn:endEvent id="done" flowlane:type="end" />\n'
    '    <bpmn:sequenceFlow id="f" sourceRef="start" targetRef="done" flowlane:exit="next" />\n'
    "  </bpmn:process>\n</bpmn:definitions>\n"
)
_BPMN_CONTENT: dict[str, Any] = {
    BPMN_TYPE: {
        "schema": {"type": "string"},
        "example": _BPMN_EXAMPLE,
    }
}
SOURCE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": 'The process file: YAML text, JSON `{"source": "<YAML text>"}`, or a '
        "BPMN diagram (application/bpmn+xml, application/xml, text/xml; flowlane's dialect)",
        "content": {
            "text/yaml": {
                "schema": {"type": "string"},
                "example": "key: hello\nname: Hello\nobject: user\nblocks:\n"
                "  start: {type: start, next: done}\n  done: {type: end}\n",
            },
            **_BPMN_CONTENT,
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"source": {"type": "string", "description": "YAML text"}},
                    "required": ["source"],
                    "additionalProperties": False,
                }
            },
        },
    }
}


# ---- models ------------------------------------------------------------------------------


class ProcessOut(BaseModel):
    """A process as the list and its "General" tab show it (its current version)."""

    key: str
    name: str
    description: str | None
    object: str = Field(description="The object type it runs on")
    version: int = Field(description="The current version")
    launch: str = Field(description="manual, once, periodic, create, update, stage or event")
    status: str = Field(description="active or stopped")
    approval: bool = Field(description="Whether it must be approved before it starts")
    approved: bool
    started_at: datetime | None
    stopped_at: datetime | None
    tags: list[str]
    template: bool
    draft: bool
    last_launch: datetime | None = Field(description="When its latest instance started")

    @classmethod
    def of(cls, p: ProcessInfo) -> ProcessOut:
        return cls(
            key=p.key,
            name=p.name,
            description=p.description,
            object=p.object,
            version=p.version,
            launch=p.launch,
            status=p.status,
            approval=p.approval,
            approved=p.approved,
            started_at=p.started_at,
            stopped_at=p.stopped_at,
            tags=list(p.tags),
            template=p.template,
            draft=p.draft,
            last_launch=p.last_launch,
        )


class VersionOut(BaseModel):
    version: int
    deployed_at: datetime | None
    source: str = Field(description="The file it was deployed from")
    current: bool
    instances: dict[str, int] = Field(description="Its instances by status")
    running: int = Field(description="Its instances running or stopped by an incident")


class VersionSourceOut(BaseModel):
    key: str
    version: int
    deployed_at: datetime | None
    source: str
    current: bool
    spec: dict[str, Any] = Field(description="The process file as data")
    yaml: str = Field(description="The process file as YAML text")


class ProblemOut(BaseModel):
    """A located problem of a process file."""

    file: str
    block: str = Field(description="The block it is in ('' for the file itself)")
    field: str | None = Field(description="The parameter it names, if any")
    message: str
    severity: str = Field(description="error or warning")


class Validated(BaseModel):
    valid: bool = Field(description="No errors (warnings may remain)")
    problems: list[ProblemOut]


class DeployedOut(BaseModel):
    key: str
    version: int
    created: bool = Field(description="False when it equals the version in force")


class Restarted(BaseModel):
    cancelled: list[str] = Field(description="Instances cancelled")
    deleted_tasks: list[str] = Field(description="Tasks deleted")


class ForecastOut(BaseModel):
    process: str
    objects: int = Field(description="Objects the automatic launch would start it for now")
    launch: str


class StartIn(Strict):
    object: str | None = Field(
        default=None, min_length=1, max_length=100, description="The object to start on"
    )
    vars: dict[str, Any] = Field(default_factory=dict, description="Launch variables")


class Started(BaseModel):
    instance_id: str


class TestRunIn(Strict):
    object: str = Field(min_length=1, max_length=100, description="The real object to try on")
    vars: dict[str, Any] = Field(default_factory=dict, description="Launch variables")


class TestRunOut(BaseModel):
    instance_id: str
    status: str
    trace: list[dict[str, Any]] = Field(description="Its history lines so far, oldest first")


class MassStartIn(Strict):
    """Exactly one of ``where`` (an expression on ``object``), ``filter`` (a structured
    filter) or ``all: true``."""

    where: str | None = Field(
        default=None, min_length=1, max_length=10_000, examples=["object.role == 'client'"]
    )
    filter: dict[str, Any] | None = Field(
        default=None, examples=[{"field": "role", "op": "eq", "value": "client"}]
    )
    all: bool = False
    vars: dict[str, Any] = Field(default_factory=dict)
    batch: int = Field(default=durable.MASS_START_BATCH, ge=1, le=10_000)

    @field_validator("where")
    @classmethod
    def _expression(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compile_expression(value)
            except FlowlaneError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                parse_filter(value)
            except FlowlaneError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _one(self) -> MassStartIn:
        given = [self.where is not None, self.filter is not None, self.all]
        if sum(given) != 1:
            raise ValueError("give exactly one of where, filter or all: true")
        return self


class MassStarted(BaseModel):
    started: list[str] = Field(description="The new instances' ids")
    count: int


class MigrateIn(Strict):
    from_version: int | None = Field(
        default=None, ge=1, description="Only the running instances of this version"
    )
    to_version: int = Field(ge=1)
    map: dict[str, str] = Field(default_factory=dict, description="Old block id -> new one")


class Migrated(BaseModel):
    migrated: list[str]


# ---- reading -----------------------------------------------------------------------------


@router.get("/processes")
async def list_processes(
    call: CallDep,
    paging: PageDep,
    search: Annotated[
        str | None, Query(max_length=200, description="Part of the name, or the key")
    ] = None,
    tag: Annotated[str | None, Query(max_length=200, description="Only with this tag")] = None,
) -> Page[ProcessOut]:
    """Processes sorted by key (staff)."""
    found = await call(
        lambda acc, by: processes.list_processes(
            acc, search=search, tag=tag, offset=paging.offset, limit=paging.limit, by=by
        )
    )
    return Page[ProcessOut].of([ProcessOut.of(p) for p in found.items], found.total, paging)


async def _source(request: Request) -> str:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if kind == "application/json":
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise Invalid("body: not JSON", field="source") from None
        if not isinstance(data, dict) or set(data) != {"source"}:
            raise Invalid('body: JSON must be {"source": "<YAML text>"}', field="source")
        source = data["source"]
        if not isinstance(source, str):
            raise Invalid("source: must be text", field="source")
        return source
    if kind in YAML_TYPES:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid("body: not UTF-8 text", field="source") from None
    if kind in BPMN_TYPES:
        return bpmn_to_yaml(body, source=BPMN_SOURCE)
    raise UnsupportedType(
        f"Content-Type {kind or '(none)'}: send text/yaml, application/json or "
        f"application/bpmn+xml",
        content_type=kind,
    )


@router.post("/processes/validate", openapi_extra=SOURCE_BODY, responses=SOURCE_RESPONSES)
async def validate(request: Request, call: CallDep) -> Validated:
    """Check a process file against the account (object types, templates, forms, processes)
    and list every problem; changes nothing (staff)."""
    text = await _source(request)
    found = await call(lambda acc, by: processes.validate(acc, text, by=by))
    return Validated(
        valid=not any(p.severity == "error" for p in found),
        problems=[
            ProblemOut(
                file=p.file, block=p.block, field=p.field, message=p.message, severity=p.severity
            )
            for p in found
        ],
    )


@router.post("/processes", status_code=201, openapi_extra=SOURCE_BODY, responses=SOURCE_RESPONSES)
async def deploy(request: Request, call: CallDep) -> DeployedOut:
    """Deploy a process file (admins and owners): a new process, or a new version of a
    changed one. Invalid files are refused with every error (``fields.problems``); an
    approved process that runs is refused until stopped."""
    text = await _source(request)
    done = await call(lambda acc, by: processes.deploy(acc, text, by=by))
    return DeployedOut(key=done.key, version=done.version, created=done.created)


@router.get("/processes/{key}")
async def get_process(key: str, call: CallDep) -> ProcessOut:
    """One process: name, object type, status, approval, launch, tags, last launch (staff)."""
    return ProcessOut.of(await call(lambda acc, by: processes.get_process(acc, key, by=by)))


@router.get("/processes/{key}/versions")
async def list_versions(key: str, call: CallDep) -> list[VersionOut]:
    """Every version, oldest first, with its instances by status (staff)."""
    found = await call(lambda acc, by: processes.versions(acc, key, by=by))
    return [
        VersionOut(
            version=v.version,
            deployed_at=v.deployed_at,
            source=v.source,
            current=v.current,
            instances=v.instances,
            running=v.running,
        )
        for v in found
    ]


@router.get("/processes/{key}/versions/{number}")
async def get_version(
    key: str, number: Annotated[int, Path(ge=1, le=1_000_000)], call: CallDep
) -> VersionSourceOut:
    """One version's process file, as data and as YAML (staff)."""
    v = await call(lambda acc, by: processes.version_source(acc, key, number, by=by))
    return VersionSourceOut(
        key=v.key,
        version=v.version,
        deployed_at=v.deployed_at,
        source=v.source,
        current=v.current,
        spec=v.spec,
        yaml=v.yaml,
    )


@router.get(
    "/processes/{key}/bpmn",
    response_class=Response,
    responses={
        200: {
            "description": "The process as a BPMN 2.0 diagram (flowlane's dialect, ADR 0010)",
            "content": {BPMN_TYPE: {"schema": {"type": "string"}}},
        }
    },
)
async def get_bpmn(
    key: str,
    call: CallDep,
    version: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="The version; default: the current")
    ] = None,
) -> Response:
    """A version's process as BPMN with a fresh layout, for the designer; a standard BPMN
    process (``bpmn:``) answers its diagram as deployed (staff)."""

    def work(acc: Account, by: str) -> str:
        number = version or processes.get_process(acc, key, by=by).version
        spec = processes.version_source(acc, key, number, by=by).spec
        diagram = diagram_of(spec)
        if diagram is not None:  # a standard BPMN process: its own diagram, as deployed
            return diagram
        return process_to_bpmn(spec, source=f"{key}.yaml")

    xml = await call(work)
    # a standard process's diagram is returned as deployed: never render it on this origin
    # (an XHTML <script> in it would run here); the designer reads it with fetch
    return Response(
        xml,
        media_type=BPMN_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{key}.bpmn"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


LAYOUT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A BPMN diagram (application/bpmn+xml, application/xml, text/xml) or "
        "a process file as YAML text",
        "content": {
            **_BPMN_CONTENT,
            "text/yaml": {"schema": {"type": "string"}},
        },
    }
}


@router.post(
    "/processes/layout",
    openapi_extra=LAYOUT_BODY,
    response_class=Response,
    responses={
        **SOURCE_RESPONSES,
        200: {
            "description": "The same process as BPMN with a fresh layout",
            "content": {BPMN_TYPE: {"schema": {"type": "string"}}},
        },
    },
)
async def layout(request: Request, call: CallDep) -> Response:
    """Lay a process out afresh: BPMN (or YAML) in, BPMN with an automatic left-to-right
    layout out; the process itself is unchanged, nothing is stored (staff)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in BPMN_TYPES and kind not in YAML_TYPES:
        raise UnsupportedType(
            f"Content-Type {kind or '(none)'}: send application/bpmn+xml or text/yaml",
            content_type=kind,
        )
    body = await request.body()

    def work(acc: Account, by: str) -> str:
        permissions.require(acc, by, "see_processes", "lay out processes")
        if kind in BPMN_TYPES:
            return layout_bpmn(body, source=BPMN_SOURCE)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid("body: not UTF-8 text", field="source") from None
        return yaml_to_bpmn(text, source=processes.SOURCE_NAME)

    return Response(await call(work), media_type=BPMN_TYPE)


@router.get("/processes/{key}/forecast")
async def forecast(key: str, call: CallDep) -> ForecastOut:
    """How many objects the automatic launch would start the process for now (staff)."""
    f = await call(lambda acc, by: processes.forecast(acc, key, by=by))
    return ForecastOut(process=f.process, objects=f.objects, launch=f.launch)


@router.get("/processes/{key}/templates")
async def templates(key: str, call: CallDep) -> list[ProcessOut]:
    """Processes marked as templates for the same object type as this one (staff)."""
    found = await call(lambda acc, by: processes.templates(acc, key, by=by))
    return [ProcessOut.of(p) for p in found]


# ---- lifecycle ---------------------------------------------------------------------------


@router.post("/processes/{key}/approve")
async def approve(key: str, call: CallDep) -> ProcessOut:
    """Approve a process that must be approved; it starts (admins and owners)."""
    return ProcessOut.of(await call(lambda acc, by: processes.approve(acc, key, by=by)))


@router.post("/processes/{key}/stop")
async def stop(key: str, call: CallDep) -> ProcessOut:
    """Stop: no automatic launch fires, manual starts are refused; running instances go on
    (admins and owners)."""
    return ProcessOut.of(await call(lambda acc, by: processes.stop(acc, key, by=by)))


@router.post("/processes/{key}/activate")
async def activate(key: str, call: CallDep) -> ProcessOut:
    """Start a stopped process again (admins and owners)."""
    return ProcessOut.of(await call(lambda acc, by: processes.activate(acc, key, by=by)))


@router.post("/processes/{key}/restart")
async def restart(key: str, call: CallDep) -> Restarted:
    """Cancel the running instances, delete the tasks they created, forget which objects
    entered; the process is left stopped (admins and owners)."""
    done = await call(lambda acc, by: processes.restart(acc, key, by=by))
    return Restarted(cancelled=done.cancelled, deleted_tasks=done.deleted_tasks)


@router.post("/processes/{key}/migrate")
async def migrate(key: str, body: MigrateIn, call: CallDep) -> Migrated:
    """Move running instances to another version, all or none (admins and owners)."""
    moved = await call(
        lambda acc, by: processes.migrate(
            acc, key, body.to_version, body.map, from_version=body.from_version, by=by
        )
    )
    return Migrated(migrated=moved)


# ---- starting ----------------------------------------------------------------------------


@router.post("/processes/{key}/start", status_code=201)
async def start(key: str, body: StartIn, call: CallDep) -> Started:
    """Start the process on one object (managers, admins, owners)."""
    iid = await call(lambda acc, by: processes.start(acc, key, body.object, body.vars, by=by))
    return Started(instance_id=iid)


@router.post("/processes/{key}/mass-start", status_code=201)
async def mass_start(
    key: str, body: MassStartIn, container: ContainerDep, principal: PrincipalDep
) -> MassStarted:
    """Start the process on every object matching the filter, ``batch`` objects per
    transaction (managers, admins, owners). More than 100,000 matching objects are refused
    (422): start those with the CLI. A failing batch stops the run; the batches before it
    stay started (409 saying how many)."""
    where: Filter | None = body.where
    if body.filter is not None:
        where = parse_filter(body.filter)
    started = await locked(
        container,
        lambda: durable.mass_start(
            container.store,
            key,
            where,
            body.vars,
            by=principal.user_id,
            batch=body.batch,
            limit=MASS_START_LIMIT,
        ),
    )
    return MassStarted(started=started, count=len(started))


@router.post("/processes/{key}/test-run", status_code=201)
async def test_run(key: str, body: TestRunIn, call: CallDep) -> TestRunOut:
    """Run the process on one real object to try it, whatever its launch, entry condition,
    approval or state; returns the instance with its trace so far (admins and owners)."""
    run = await call(lambda acc, by: processes.test_run(acc, key, body.object, body.vars, by=by))
    return TestRunOut(instance_id=run.instance_id, status=run.status, trace=run.trace)
