"""The account's object types as a use case: define and change types, add dictionaries and
groups, deploy a recipe's objects.yaml into the stored schema.

Contract:

* A type is written in objects.yaml syntax for one type and checked by
  :func:`flowlane.objects.build_type` (the checks of ``build_schema``); problems are refused
  as ``<type>.<field>: <problem>``, joined with ``; ``.
* **A change never corrupts stored objects.** Within the request's transaction, the objects
  of the type are read a page at a time (:meth:`Store.object_pages`) and the converted ones
  written back (:meth:`Store.rewrite_objects`); any refusal rolls all of it back:

  - a new field is always accepted; stored objects keep no value for it (its ``default``
    applies to objects created afterwards, ``required`` to values written afterwards);
  - a removed field is refused while objects hold a value for it (the message gives the
    count and one object id), unless ``drop_fields`` names it: then the values are deleted;
    built-in fields are never removed;
  - a field whose values change shape (type, enum values, dictionary, list item) has every
    stored value converted with the new spec's coercion (``coerce_value``; dates become
    ISO text for string and text fields; a value of an object link must name an object of
    the target type); the first value that does not convert refuses the change, naming the
    object, the field and the reason;
  - a link's target (type or dictionary) does not change, and a field does not become or
    stop being a password (stored hashed), while objects hold values;
  - a stage (final stages too) is not removed while objects are in it; a type that gets
    stages puts its objects without a stage in the first one.

* Deploying a recipe (:meth:`TypeDefinitions.merge`) adds its dictionaries' values and its
  groups (a deploy never removes a value or a group, so those admins added stay), adds its
  new types and changes the others through the same checks (declared fields added or
  replaced, none removed; see :func:`flowlane.objects.merge_type`). A type is changed from
  what the store holds (:meth:`Store.stored_type`, else the built-in type), not from the
  recipe's declaration the store may have been opened with.
* **A redeploy applies only what the recipe changed.** Each deploy records the recipe's
  declaration of every type (:meth:`Store.put_deployed_type`). A type declared as at the
  last deploy is left as stored, admins' changes included; otherwise only the fields (and
  label, stages) whose declaration differs from the last deploy's are applied, so a field
  the recipe did not change keeps the admin's version, and a field both changed gets the
  recipe's (converting the objects, or refused). Without a recorded declaration (a first
  deploy, or a database deployed before these were recorded) every declared field applies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from flowlane.core.errors import Refused, ValidationError
from flowlane.engine.context import ObjectRecord
from flowlane.engine.taskrules import STAFF_ADMIN_ROLES
from flowlane.objects import (
    FieldSpec,
    ObjectType,
    Schema,
    TypeChange,
    build_type,
    builtin_types,
    coerce_value,
    merge_type,
    plan_change,
    value_problem,
)
from flowlane.services import permissions

if TYPE_CHECKING:
    from flowlane.services.account import Account

PAGE = 500
"""Objects read (and written back) at a time while a type change converts them."""
KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,59}")
"""A type key: object ids are ``<key>-<n>``, and process files name the type."""
MAX_NAME = 200
ADMIN_ROLES = tuple(sorted(STAFF_ADMIN_ROLES))


def _objects(count: int) -> str:
    return "1 object" if count == 1 else f"{count} objects"


@dataclass
class _Tally:
    """Objects found holding what a change cannot take: how many, and the first one."""

    found: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    failure: str | None = None

    def add(self, kind: str, name: str, object_id: str) -> None:
        entry = self.found.setdefault((kind, name), [0, object_id])
        entry[0] += 1

    @property
    def clean(self) -> bool:
        return self.failure is None and not self.found

    def messages(self, change: TypeChange) -> list[str]:
        key = change.old.key
        out = [] if self.failure is None else [self.failure]
        for (kind, name), (count, first) in self.found.items():
            held = f"{_objects(count)} {'hold' if count > 1 else 'holds'} a value (e.g. {first})"
            if kind == "removed":
                out.append(
                    f"{key}.{name}: the field cannot be removed: {held}; "
                    f"pass drop_fields=[{name!r}] to delete the values"
                )
            elif kind == "relinked":
                before = change.old.fields[name]
                after = change.new.fields[name]
                out.append(
                    f"{key}.{name}: the link target cannot change from {_target(before)} to "
                    f"{_target(after)}: {held}"
                )
            elif kind == "password":
                out.append(f"{key}.{name}: cannot become or stop being a password: {held}")
            else:
                final = "final stage" if name in change.old.final_stages else "stage"
                are = "is" if count == 1 else "are"
                out.append(
                    f"{key}: {final} {name!r} cannot be removed: {_objects(count)} {are} in it "
                    f"(e.g. {first})"
                )
        return out


def _target(spec: FieldSpec) -> str:
    of = spec.of if spec.type == "list" and spec.of is not None else spec
    return str(of.to)


class TypeDefinitions:
    """The object-type services of one :class:`~flowlane.services.account.Account`."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.store = account.store

    # ---- requests --------------------------------------------------------------------------

    def define(self, key: str, spec: Mapping[str, Any], *, by: str | None) -> ObjectType:
        permissions.require(self.account, by, "manage_types", f"define type {key}")
        if not isinstance(key, str) or not KEY.fullmatch(key):
            raise Refused(
                f"type key {key!r}: letters, digits and _, starting with a letter, "
                "at most 60 characters"
            )
        if key in self.store.schema.types:
            raise Refused(f"type {key!r} exists already")
        otype = self._build(key, spec)
        self.store.put_object_type(otype, self.account.now)
        return otype

    def change(
        self,
        key: str,
        spec: Mapping[str, Any],
        *,
        drop_fields: list[str] | None,
        by: str | None,
    ) -> ObjectType:
        permissions.require(self.account, by, "manage_types", f"change type {key}")
        current = self.store.schema.types.get(key)
        if current is None:
            raise Refused(f"type {key!r} does not exist")
        new = self._build(key, spec)
        self.apply(plan_change(current, new), set(drop_fields or ()))
        return new

    def add_dictionary(self, key: str, values: list[str], *, by: str | None) -> None:
        permissions.require(self.account, by, "manage_types", f"add dictionary {key}")
        _check_name("dictionary key", key)
        if key in self.store.schema.dictionaries:
            raise Refused(f"dictionary {key!r} exists already")
        if not isinstance(values, list | tuple):
            raise Refused(f"dictionary {key}: the values must be a list, not {values!r}")
        for value in values:
            _check_name(f"dictionary {key}: value", value)
        twice = sorted({v for v in values if list(values).count(v) > 1})
        if twice:
            raise Refused(f"dictionary {key}: value {twice[0]!r} is listed twice")
        self.store.put_dictionary(key, list(values), self.account.now)

    def add_group(self, key: str, *, by: str | None) -> None:
        permissions.require(self.account, by, "manage_types", f"add group {key}")
        _check_name("group", key)
        if any(c.isspace() or c == "," for c in key):
            raise Refused(f"group {key!r}: no spaces or commas")
        if key in self.store.schema.groups:
            raise Refused(f"group {key!r} exists already")
        self.store.add_group(key, self.account.now)

    def merge(self, declared: Schema) -> list[str]:
        """Deploy a recipe's schema into the account's; the keys of the types written."""
        now = self.account.now
        for key, values in declared.dictionaries.items():
            self.store.put_dictionary(key, list(values), now)
        for group in declared.groups:
            self.store.add_group(group, now)
        builtins = builtin_types()
        last_deployed = self.store.deployed_types()
        written = []
        for key, otype in declared.types.items():
            # What the stored objects were written under: the stored type, else the built-in
            # one (``schema.types`` may hold the recipe's type given to the store already).
            current = self.store.stored_type(key) or builtins.get(key)
            last = last_deployed.get(key)
            if last != otype:
                self.store.put_deployed_type(otype, now)
            if current is None:
                target = otype
            elif last == otype:
                continue  # declared as at the last deploy: the stored type stays as it is
            else:
                target = merge_type(current, otype, last)
            if current == target:
                continue  # nothing changes (an untouched built-in type is not stored)
            if current is not None:
                self.apply(plan_change(current, target), set())
            else:
                self.store.put_object_type(target, now)
            written.append(key)
        return written

    # ---- the change ------------------------------------------------------------------------

    def _build(self, key: str, spec: Mapping[str, Any]) -> ObjectType:
        if not isinstance(spec, Mapping):
            raise Refused(f"type {key}: the spec must be a mapping, not {spec!r}")
        try:
            return build_type(key, spec, schema=self.store.schema)
        except ValidationError as exc:
            lines = exc.fields.get("problems") or [exc.message]
            raise Refused("; ".join(lines), type=key) from exc

    def apply(self, change: TypeChange, drop: set[str]) -> None:
        """Check the change against the stored objects, convert them, store the type."""
        key = change.old.key
        refusals = [
            f"{key}.{name}: a built-in field cannot be removed" for name in change.builtin_removed
        ]
        refusals += [
            f"{key}.{name}: drop_fields names a field this change does not remove"
            for name in sorted(drop - set(change.removed))
        ]
        if refusals:
            raise Refused("; ".join(refusals), type=key)
        if change.touches_objects:
            tally = self._convert_all(change, drop)
            if not tally.clean:
                raise Refused("; ".join(tally.messages(change)), type=key)
        self.store.put_object_type(change.new, self.account.now)

    def _convert_all(self, change: TypeChange, drop: set[str]) -> _Tally:
        schema = self.store.schema
        trial = Schema(
            types={**schema.types, change.new.key: change.new},
            dictionaries=schema.dictionaries,
            groups=schema.groups,
        )
        tally = _Tally()
        for page in self.store.object_pages(change.old.key, PAGE):
            changed = [
                rec for rec in (self._convert(change, drop, r, trial, tally) for r in page) if rec
            ]
            if tally.failure is not None:
                break  # refused: the first value that does not convert is named
            if tally.clean and changed:
                self.store.rewrite_objects(changed, self.account.now)
        return tally

    def _convert(
        self, change: TypeChange, drop: set[str], rec: ObjectRecord, trial: Schema, tally: _Tally
    ) -> ObjectRecord | None:
        """``rec`` converted to the new type (None if it stays as it is); what it holds that
        the change cannot take goes to ``tally``."""
        data = dict(rec.data)
        for name in change.removed:
            if data.get(name) is not None and name not in drop:
                tally.add("removed", name, rec.id)
            data.pop(name, None)
        for kind, names in (("relinked", change.relinked), ("password", change.password)):
            for name in names:
                if data.get(name) is not None:
                    tally.add(kind, name, rec.id)
        for name in change.converted:
            if data.get(name) is not None and tally.failure is None:
                data[name] = self._value(change, rec.id, name, data[name], trial, tally)
        stage = data.get("stage")
        if stage is not None and stage in change.removed_stages:
            tally.add("stage", stage, rec.id)
        if change.first_stage is not None and stage is None:
            data["stage"] = change.first_stage
        return None if data == rec.data else ObjectRecord(rec.id, rec.type, data)

    def _value(
        self, change: TypeChange, oid: str, name: str, value: Any, trial: Schema, tally: _Tally
    ) -> Any:
        spec = change.new.fields[name]
        tz = self.store.tz
        if spec.type in ("string", "text") and isinstance(value, date):
            value = value.isoformat()  # dates and date-times become their ISO text
        reason = value_problem(spec, value, schema=trial, tz=tz)
        out = None
        if reason is None:
            out = coerce_value(spec, value, schema=trial, tz=tz)
            reason = self._missing_target(spec, out)
        if reason is not None:
            tally.failure = (
                f"{change.old.key}.{name}: the value of {oid} cannot become {spec.type}: {reason}"
            )
            return value
        return out

    def _missing_target(self, spec: FieldSpec, value: Any) -> str | None:
        """For an object link (or a list of them): the first id naming no such object."""
        item = spec.of if spec.type == "list" and spec.of is not None else spec
        target = item.link_type
        if target is None:
            return None
        for oid in value if isinstance(value, list) else [value]:
            rec = self.store.get_object(str(oid))
            if rec is None or rec.type != target:
                return f"no {target} {str(oid)!r}"
        return None


def _check_name(what: str, name: Any) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise Refused(f"{what} {name!r}: text of 1 to {MAX_NAME} characters")


__all__ = ["TypeDefinitions"]
