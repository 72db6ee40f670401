"""Process instances: the list, one instance, its trace, open incidents, retry and cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from flowlane.api.deps import CallDep
from flowlane.api.pagination import Page, PageDep
from flowlane.api.schemas import PROBLEM_RESPONSES
from flowlane.services import instances
from flowlane.services.instances import InstanceView

router = APIRouter(tags=["instances"], responses=PROBLEM_RESPONSES)

Status = Literal["running", "incident", "ended", "cancelled"]


class TokenOut(BaseModel):
    """Where a token stands and what it waits for."""

    token: int
    block: str
    waits_for: str | None = Field(
        description="task, timer, cond, child, children or join; null while it moves"
    )


class InstanceOut(BaseModel):
    id: str
    process: str
    version: int
    object_id: str | None
    status: str = Field(description="running, incident, ended or cancelled")
    outcome: str | None = Field(description="positive, neutral or negative once ended")
    result: str | None
    incident: str | None = Field(description="Why it stopped, while in incident")
    started_at: datetime | None
    ended_at: datetime | None
    parent: str | None = Field(description="The instance that started it as a sub-process")
    children: list[str]
    tokens: list[TokenOut]
    counters: dict[str, float]
    vars: dict[str, Any] = Field(description="Its variables; secrets are shown as ***")

    @classmethod
    def of(cls, v: InstanceView) -> InstanceOut:
        return cls(
            id=v.id,
            process=v.process,
            version=v.version,
            object_id=v.object_id,
            status=v.status,
            outcome=v.outcome,
            result=v.result,
            incident=v.incident,
            started_at=v.started_at,
            ended_at=v.ended_at,
            parent=v.parent,
            children=v.children,
            tokens=[
                TokenOut(token=t.token, block=t.block, waits_for=t.waits_for) for t in v.tokens
            ],
            counters=v.counters,
            vars=v.vars,
        )


class TraceLine(BaseModel):
    """One line of an instance's history."""

    time: str = Field(description="When, ISO 8601 in the account's time zone")
    instance: str | None
    process: str | None
    block: str | None
    event: str
    details: Any = None


class IncidentOut(BaseModel):
    instance_id: str
    process: str | None
    object_id: str | None
    block: str | None
    message: str
    at: datetime


@router.get("/instances")
async def list_instances(
    call: CallDep,
    paging: PageDep,
    process: Annotated[str | None, Query(max_length=200, description="Of this process")] = None,
    object: Annotated[str | None, Query(max_length=100, description="On this object")] = None,
    status: Annotated[Status | None, Query(description="In this status")] = None,
) -> Page[InstanceOut]:
    """Instances, newest first (staff)."""
    found = await call(
        lambda acc, by: instances.list_instances(
            acc,
            process=process,
            object_id=object,
            status=status,
            offset=paging.offset,
            limit=paging.limit,
            by=by,
        )
    )
    return Page[InstanceOut].of([InstanceOut.of(v) for v in found.items], found.total, paging)


@router.get("/instances/{instance_id}")
async def get_instance(instance_id: str, call: CallDep) -> InstanceOut:
    """One instance: status, outcome, where its tokens wait, counters, variables (staff)."""
    return InstanceOut.of(
        await call(lambda acc, by: instances.get_instance(acc, instance_id, by=by))
    )


@router.get("/instances/{instance_id}/trace")
async def trace(instance_id: str, call: CallDep, paging: PageDep) -> Page[TraceLine]:
    """The instance's history, oldest first (staff)."""
    found = await call(
        lambda acc, by: instances.trace(
            acc, instance_id, offset=paging.offset, limit=paging.limit, by=by
        )
    )
    lines = [
        TraceLine(
            time=str(line.get("time")),
            instance=line.get("instance"),
            process=line.get("process"),
            block=line.get("block"),
            event=str(line.get("event")),
            details=line.get("details"),
        )
        for line in found.items
    ]
    return Page[TraceLine].of(lines, found.total, paging)


@router.get("/incidents")
async def list_incidents(
    call: CallDep,
    paging: PageDep,
    process: Annotated[str | None, Query(max_length=200, description="Of this process")] = None,
) -> Page[IncidentOut]:
    """Open incidents, oldest first (staff)."""
    found = await call(
        lambda acc, by: instances.incidents(
            acc, process=process, offset=paging.offset, limit=paging.limit, by=by
        )
    )
    items = [
        IncidentOut(
            instance_id=i.instance_id,
            process=i.process,
            object_id=i.object_id,
            block=i.block,
            message=i.message,
            at=i.at,
        )
        for i in found.items
    ]
    return Page[IncidentOut].of(items, found.total, paging)


@router.post("/instances/{instance_id}/retry")
async def retry(instance_id: str, call: CallDep) -> InstanceOut:
    """Run an instance stopped by an incident again (admins and owners)."""
    return InstanceOut.of(await call(lambda acc, by: instances.retry(acc, instance_id, by=by)))


@router.post("/instances/{instance_id}/cancel")
async def cancel(instance_id: str, call: CallDep) -> InstanceOut:
    """Cancel a running instance by hand (admins and owners)."""
    return InstanceOut.of(await call(lambda acc, by: instances.cancel(acc, instance_id, by=by)))
