"""Processes as the API serves them: the list and one process, its versions with their
source, validating and deploying process text, the lifecycle (approve, stop, activate,
restart), the forecast, starts (one object; a test run on one real object), templates and
migration. Every function takes the acting user ``by`` and checks it with
:mod:`flowlane.services.permissions` (seeing: ``see_processes``; changing:
``manage_processes``; starting: ``start_processes``).

Mass starts run in batches of their own transactions (``flowlane.runtime.durable``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flowlane.core.errors import Invalid, NotFound, Refused, ValidationError
from flowlane.model.definition import Definition
from flowlane.model.diagnostic import Diagnostic
from flowlane.model.process import ProcessFile
from flowlane.model.recipe import file_problem, parse_process
from flowlane.model.validate import validate_process
from flowlane.model.yamlio import dump_yaml, parse_text
from flowlane.services import admin, launch, permissions
from flowlane.services.admin import ProcessInfo

if TYPE_CHECKING:
    from flowlane.services.account import Account

SOURCE_NAME = "process.yaml"
"""The file name diagnostics of process text sent over the API are located in."""

MAX_SOURCE = 1_000_000
"""Longest process text accepted (characters)."""

_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]-]*): ")
"""A message that starts by naming a parameter (``launch.on: ...``)."""


@dataclass(frozen=True, slots=True)
class ProcessPage:
    items: list[ProcessInfo]
    total: int


@dataclass(frozen=True, slots=True)
class VersionSummary:
    """One version of a process: when it was deployed and its instances by status."""

    version: int
    deployed_at: datetime | None
    source: str
    current: bool
    instances: dict[str, int]
    running: int


@dataclass(frozen=True, slots=True)
class VersionSource:
    """One version's definition: ``spec`` as data and ``yaml`` as process-file text."""

    key: str
    version: int
    deployed_at: datetime | None
    source: str
    current: bool
    spec: dict[str, Any]
    yaml: str


@dataclass(frozen=True, slots=True)
class Problem:
    """A located problem of process text (``field``: the parameter it names, if any)."""

    file: str
    block: str
    field: str | None
    message: str
    severity: str

    @classmethod
    def of(cls, d: Diagnostic) -> Problem:
        found = _FIELD.match(d.message)
        return cls(d.file, d.block, found.group(1) if found else None, d.message, d.severity)


@dataclass(frozen=True, slots=True)
class Deployed:
    key: str
    version: int
    created: bool
    """True when this deploy made a new version (False: the same as the version in force)."""


@dataclass(frozen=True, slots=True)
class TestRun:
    """A test run's instance: its state after the steps it set off, and its trace so far."""

    instance_id: str
    status: str
    trace: list[dict[str, Any]] = field(default_factory=list)


# ---- reading -------------------------------------------------------------------------------


def list_processes(
    acc: Account,
    *,
    search: str | None = None,
    tag: str | None = None,
    offset: int = 0,
    limit: int = 50,
    by: str | None,
) -> ProcessPage:
    """Processes whose name contains ``search`` (or whose key it is), with ``tag``; by key."""
    permissions.require(acc, by, "see_processes", "see processes")
    found = acc.list_processes(search, tag)
    return ProcessPage(found[offset : offset + limit], len(found))


def definition(acc: Account, key: str) -> Definition:
    return acc.definition(key)


def get_process(acc: Account, key: str, *, by: str | None) -> ProcessInfo:
    permissions.require(acc, by, "see_processes", f"see process {key}")
    return acc.process_info(key)


def versions(acc: Account, key: str, *, by: str | None) -> list[VersionSummary]:
    """Every version, oldest first, with its instances counted by status."""
    permissions.require(acc, by, "see_processes", f"see process {key}")
    current = acc.definition(key).version
    counts = acc.store.instance_counts(key)
    out = []
    for v in acc.store.process_versions(key):
        by_status = {status: n for (ver, status), n in sorted(counts.items()) if ver == v.version}
        out.append(
            VersionSummary(
                version=v.version,
                deployed_at=v.deployed_at,
                source=v.source,
                current=v.version == current,
                instances=by_status,
                running=by_status.get("running", 0) + by_status.get("incident", 0),
            )
        )
    return out


def version_source(acc: Account, key: str, number: int, *, by: str | None) -> VersionSource:
    permissions.require(acc, by, "see_processes", f"see process {key}")
    current = acc.definition(key).version
    known = {v.version: v for v in acc.store.process_versions(key)}
    info = known.get(number)
    if info is None:
        raise NotFound(f"process {key!r} has no version {number}", version=number)
    d = acc.store.version(key, number)
    spec = d.spec.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return VersionSource(
        key=key,
        version=number,
        deployed_at=info.deployed_at,
        source=info.source,
        current=number == current,
        spec=spec,
        yaml=dump_yaml(spec),
    )


def forecast(acc: Account, key: str, *, by: str | None) -> launch.Forecast:
    permissions.require(acc, by, "see_processes", f"see process {key}")
    return acc.forecast(key)


def templates(acc: Account, key: str, *, by: str | None) -> list[ProcessInfo]:
    """The templates offered for the object type of process ``key``."""
    permissions.require(acc, by, "see_processes", f"see process {key}")
    return acc.templates_for(acc.definition(key).spec.object)


# ---- validating and deploying ----------------------------------------------------------------


def _parse(text: str) -> tuple[ProcessFile | None, list[Diagnostic]]:
    if len(text) > MAX_SOURCE:
        return None, [Diagnostic(SOURCE_NAME, "", f"longer than {MAX_SOURCE} characters")]
    try:
        data = parse_text(text, source=SOURCE_NAME)
    except ValidationError as exc:
        return None, [file_problem(SOURCE_NAME, exc)]
    except RecursionError:
        return None, [Diagnostic(SOURCE_NAME, "", "nested too deeply")]
    return parse_process(data, source=SOURCE_NAME)


def check(acc: Account, text: str) -> tuple[ProcessFile | None, list[Diagnostic]]:
    """Parse process text and validate it against the account: its object types, templates,
    forms and deployed processes (the text's own key counts as deployed)."""
    spec, problems = _parse(text)
    if spec is None:
        return None, problems
    processes = {k: acc.definition(k).spec for k in acc.store.process_keys()}
    processes[spec.key] = spec
    found = validate_process(
        spec,
        source=SOURCE_NAME,
        schema=acc.store.schema,
        templates=acc.store.templates,
        processes=processes,
        in_recipe=True,
        forms=set(acc.store.forms),
    )
    return spec, problems + found


def validate(acc: Account, text: str, *, by: str | None) -> list[Problem]:
    """Every problem of process text, errors and warnings (changes nothing)."""
    permissions.require(acc, by, "see_processes", "validate processes")
    return [Problem.of(d) for d in check(acc, text)[1]]


def deploy(acc: Account, text: str, *, by: str | None) -> Deployed:
    """Deploy process text: a new process, or a new version of a changed one. Refused with
    every error when it is invalid, and for an approved process that runs (stop it first)."""
    permissions.require(acc, by, "manage_processes", "deploy processes")
    spec, problems = check(acc, text)
    errors = [p for p in problems if p.severity == "error"]
    if spec is None or errors:
        raise Invalid(
            "; ".join(str(p) for p in errors) or "not a process",
            problems=[_problem_dict(p) for p in errors],
        )
    before = acc.store.definition(spec.key)
    deployed = acc.deploy(Definition.build(spec, source=f"{spec.key}.yaml"))
    created = before is None or before.version != deployed.version
    return Deployed(deployed.key, deployed.version, created)


def _problem_dict(d: Diagnostic) -> dict[str, Any]:
    p = Problem.of(d)
    return {
        "file": p.file,
        "block": p.block,
        "field": p.field,
        "message": p.message,
        "severity": p.severity,
    }


# ---- lifecycle -----------------------------------------------------------------------------


def approve(acc: Account, key: str, *, by: str | None) -> ProcessInfo:
    acc.approve(key, by=by)
    return acc.process_info(key)


def stop(acc: Account, key: str, *, by: str | None) -> ProcessInfo:
    acc.stop_process(key, by=by)
    return acc.process_info(key)


def activate(acc: Account, key: str, *, by: str | None) -> ProcessInfo:
    acc.activate_process(key, by=by)
    return acc.process_info(key)


def restart(acc: Account, key: str, *, by: str | None) -> admin.Restarted:
    return acc.restart(key, by=by)


def migrate(
    acc: Account,
    key: str,
    to_version: int,
    mapping: dict[str, str],
    *,
    from_version: int | None = None,
    by: str | None,
) -> list[str]:
    """Move the running instances (of ``from_version`` only, if given) to ``to_version``;
    blocks renamed by ``mapping``. All or none; the ids of the instances moved."""
    acc.definition(key)
    permissions.require(acc, by, "manage_processes", f"migrate instances of {key}")
    known = {v.version for v in acc.store.process_versions(key)}
    for name, number in (("to_version", to_version), ("from_version", from_version)):
        if number is not None and number not in known:
            raise NotFound(f"{name}: process {key!r} has no version {number}", field=name)
    ids = None
    if from_version is not None:
        ids = [
            st.id
            for st in acc.store.instances_of(key)
            if st.status == "running" and st.version == from_version
        ]
    return acc.migrate(key, to_version, mapping, instance_ids=ids, by=by)


# ---- starting ------------------------------------------------------------------------------


def start(
    acc: Account, key: str, object_id: str | None, vars_: dict[str, Any], *, by: str | None
) -> str:
    """Start the process by hand on one object (its launch and entry condition aside)."""
    return acc.start(key, object_id, vars_, by=by)


TRACE_LINES = 200
"""History lines a test run returns at most."""


def test_run(
    acc: Account, key: str, object_id: str, vars_: dict[str, Any], *, by: str | None
) -> TestRun:
    """Run the process on one real object to try it (the designer's "test on one real
    object"): it starts whatever its launch, entry condition, approval or state, and the
    steps it sets off run now. Returns the instance with its trace so far."""
    d = acc.definition(key)
    permissions.require(acc, by, "manage_processes", f"test-run {key}")
    acc.get_object(object_id, expect_type=d.spec.object)
    clean = acc.coerce_vars(d, vars_)
    iid = acc.runner.start_instance(key, object_id, clean)
    acc.runner.run()
    state = acc.store.get_instance(iid)
    if state is None:  # pragma: no cover - the runner just stored it
        raise Refused(f"instance {iid} was not stored")
    trace, _total = acc.store.history_page(iid, 0, TRACE_LINES)
    return TestRun(iid, state.status, trace)
