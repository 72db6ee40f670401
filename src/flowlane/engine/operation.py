"""The ``operation`` block: set fields and stage, groups, create objects, passwords.

Every change is validated (types, dictionaries, stage rules, links) before any is applied,
so a failing operation changes nothing; applied changes land in the step's overlay at once.
"""

from __future__ import annotations

from typing import Any

from flowlane.core.errors import FlowlaneError
from flowlane.engine.context import ObjectRecord, object_id_of
from flowlane.engine.events import CreateObject, UpdateObject
from flowlane.engine.people import client_of
from flowlane.engine.state import Token
from flowlane.engine.step import Incident, Step
from flowlane.model import process as m
from flowlane.model.render import render
from flowlane.objects import link_problems, validate_record


def _coerce_changes(step: Step, object_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    rec = step.overlay.load(object_id)
    if rec is None:
        raise Incident(f"object {object_id!r} does not exist")
    schema = step.world.schema
    otype = schema.types[rec.type]
    plain = {k: object_id_of(v) if hasattr(v, "flowlane_get") else v for k, v in changes.items()}
    try:
        clean = validate_record(
            otype,
            plain,
            schema=schema,
            tz=step.world.tz,
            partial=True,
            current_stage=rec.data.get("stage"),
        )
    except FlowlaneError as exc:
        raise Incident(f"{rec.type} {object_id}: {exc}") from exc
    _check_links(step, otype, clean, f"{rec.type} {object_id}")
    return clean


def _check_links(step: Step, otype: Any, data: dict[str, Any], what: str) -> None:
    """A link field must name an existing object of its type."""

    def type_of(object_id: str) -> str | None:
        linked = step.overlay.load(object_id)
        return linked.type if linked is not None else None

    problems = link_problems(otype, data, type_of)
    if problems:
        raise Incident(f"{what}: {'; '.join(problems)}")


def _literal(value: Any) -> bool:
    if isinstance(value, str):
        return not value.startswith("=")
    if isinstance(value, dict):
        return all(_literal(v) for v in value.values())
    if isinstance(value, list):
        return all(_literal(v) for v in value)
    return True


def _changes(step: Step, block: m.OperationBlock, token: Token, oid: str) -> dict[str, Any]:
    """The validated changes of an operation's ``set``/``stage``.

    Literal ``set`` values (no expression, no stage move) are validated once per version and
    object type, as long as the type is the same object (a type change replaces it, so the
    values are checked again); dictionaries only ever grow, so a value valid once stays valid.
    """
    rec = step.overlay.load(oid)
    if rec is None:
        raise Incident(f"object {oid!r} does not exist")
    otype = step.world.schema.types.get(rec.type)
    key = ("set", token.block, rec.type, id(step.world.schema))
    cached = step.defn.cache.get(key) if not block.stage else None
    if cached is not None and cached[0] is otype:
        return dict(cached[1])
    raw = step.value(dict(block.set), token)
    if block.stage:
        raw["stage"] = step.value(block.stage, token)
    changes = _coerce_changes(step, oid, raw)
    if not block.stage and _literal(block.set):
        step.defn.cache[key] = (otype, dict(changes))
    return changes


def _group_target(step: Step) -> str:
    uid = client_of(step.overlay, step.state.object_id)
    if uid is None:
        raise Incident("add_to_group needs a user: the object has no client")
    return uid


def _group_names(step: Step, token: Token, param: str, v: str | list[str] | None) -> list[str]:
    """The groups a parameter names; ``=expr`` entries are evaluated and must give the key
    of one of the account's groups (or a list of them)."""
    out: list[str] = []
    for raw in [] if v is None else [v] if isinstance(v, str) else list(v):
        value = step.value(raw, token)
        for g in value if isinstance(value, list | tuple) else [value]:
            if not isinstance(g, str) or not g:
                raise Incident(f"{param}: {raw!r} gives {g!r}, not a group key")
            known = step.world.schema.groups
            if known and g not in known:
                raise Incident(f"{param}: {raw!r} gives {g!r}, which is not a group")
            out.append(g)
    return out


def _groups_change(
    step: Step, block: m.OperationBlock, token: Token
) -> tuple[str, list[str]] | None:
    if block.add_to_group is None and block.remove_from_group is None:
        return None
    add = _group_names(step, token, "add_to_group", block.add_to_group)
    remove = _group_names(step, token, "remove_from_group", block.remove_from_group)
    uid = _group_target(step)
    rec = step.overlay.load(uid)
    groups = list(rec.data.get("groups") or []) if rec else []
    for g in add:
        if g not in groups:
            groups.append(g)
    groups = [g for g in groups if g not in remove]
    return uid, groups


def _apply(step: Step, object_id: str, values: dict[str, Any]) -> None:
    rec = step.overlay.load(object_id)
    assert rec is not None
    rec.data.update(values)
    step.emit(UpdateObject(object_id, values))


def _reason(step: Step, block: m.OperationBlock, token: Token) -> str | None:
    """Why the operation moves the stage: its ``reason``, a template."""
    if block.reason is None or "{" not in block.reason:
        return block.reason
    try:
        return step.redact(render(block.reason, step.scope(token)))
    except FlowlaneError as exc:
        raise Incident(f"reason: {exc}") from exc


def _log_update(
    step: Step, token: Token, oid: str, changes: dict[str, Any], reason: str | None
) -> None:
    """``object_updated``; a stage move also names the stage and, if given, its reason."""
    moved: dict[str, Any] = {}
    if "stage" in changes:
        moved["stage"] = changes["stage"]
        if reason:
            moved["reason"] = reason
    step.log(token.block, "object_updated", object=oid, fields=sorted(changes), **moved)


def operation(step: Step, block: m.OperationBlock, token: Token) -> object:
    oid = step.state.object_id
    if block.generate_password is not None:
        step.transient[block.generate_password.as_] = step.derived_secret(
            "pw", block.generate_password.length
        )
    created: tuple[str, str, dict[str, Any]] | None = None
    if block.create is not None:
        ctype = step.world.schema.types.get(block.create.type)
        if ctype is None:
            raise Incident(f"create: unknown object type {block.create.type!r}")
        data = step.value(block.create.data, token)
        data = {k: object_id_of(v) if hasattr(v, "flowlane_get") else v for k, v in data.items()}
        try:
            clean = validate_record(ctype, data, schema=step.world.schema, tz=step.world.tz)
        except FlowlaneError as exc:
            raise Incident(f"create {block.create.type}: {exc}") from exc
        _check_links(step, ctype, clean, f"create {block.create.type}")
        created = (step.state.next_id("o"), ctype.key, clean)
    changes: dict[str, Any] = {}
    if block.set or block.stage:
        if oid is None:
            raise Incident("operation: the instance has no object")
        changes = _changes(step, block, token, oid)
    groups = _groups_change(step, block, token)
    reason = _reason(step, block, token) if "stage" in changes else None
    # Everything is computed; now the effects.
    if created is not None:
        new_id, ctype_key, clean = created
        step.overlay.records[new_id] = ObjectRecord(new_id, ctype_key, dict(clean))
        step.emit(CreateObject(new_id, ctype_key, clean))
        if block.create is not None and block.create.as_:
            step.state.vars[block.create.as_] = new_id
        step.log(token.block, "object_created", object=new_id, type=ctype_key)
    if changes and oid is not None:
        _apply(step, oid, changes)
        _log_update(step, token, oid, changes, reason)
    if groups is not None:
        _apply(step, groups[0], {"groups": groups[1]})
        step.log(token.block, "groups_changed", user=groups[0], groups=groups[1])
    step.move(token, block.next)
    return None
