"""The object-type model: field specs, object types, the schema of an account, built-in types.

Contract:

* :class:`FieldSpec` and :class:`ObjectType` are frozen; a :class:`Schema` is built once by
  :func:`flowlane.objects.build_schema` and afterwards changes only through
  :meth:`Schema.add_dictionary_value` (FORMATS.md: dictionaries are editable; keys added later
  are accepted from then on).
* ``ObjectType.fields`` holds the declared fields only. The pseudo-field ``stage`` of a type
  with stages is not in it; :meth:`ObjectType.field` returns a synthesized spec for it.
* The built-in types are exactly those of FORMATS.md: ``user``, ``order``, ``purchase``,
  ``call``. :func:`builtin_types` returns a fresh dict each call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flowlane.core.errors import ValidationError

#: Field names no type may declare: every object has ``id`` and ``type``; ``stage`` belongs
#: to types with stages.
RESERVED_FIELDS: frozenset[str] = frozenset({"id", "type", "stage"})

#: The prefix of a link that holds a dictionary value: ``to: dictionary:event_type``.
DICTIONARY_PREFIX = "dictionary:"


@dataclass(frozen=True)
class FieldSpec:
    """One field of an object type (or a process variable, or a task input).

    ``values`` / ``dictionary`` go with ``enum``; ``to`` with ``link`` (an object type key or
    ``dictionary:<key>``); ``of`` with ``list`` (the item spec, carrying the list's name).
    ``default`` is kept as written and coerced when a new object gets it.
    """

    name: str
    type: str
    label: str | None = None
    values: tuple[str, ...] | None = None
    dictionary: str | None = None
    to: str | None = None
    of: FieldSpec | None = None
    default: Any = None
    required: bool = False

    @property
    def dictionary_ref(self) -> str | None:
        """The dictionary whose current keys this field holds (enum or link), else ``None``."""
        if self.type == "enum":
            return self.dictionary
        if self.type == "link" and self.to and self.to.startswith(DICTIONARY_PREFIX):
            return self.to[len(DICTIONARY_PREFIX) :]
        return None

    @property
    def link_type(self) -> str | None:
        """The object type a link field points to (``None`` for dictionary links)."""
        if self.type == "link" and self.to and not self.to.startswith(DICTIONARY_PREFIX):
            return self.to
        return None

    @property
    def write_only(self) -> bool:
        """Passwords are accepted but never shown back."""
        return self.type == "password"


@dataclass(frozen=True)
class ObjectType:
    """An object type. ``stages`` is the pipeline; ``success`` / ``failure`` are its final
    stages (not listed in ``stages``); ``builtin`` marks user, order, purchase and call."""

    key: str
    label: str
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    stages: tuple[str, ...] = ()
    success: str | None = None
    failure: str | None = None
    builtin: bool = False
    card: tuple[str, ...] = ()
    """The fields a kanban card shows, in order (empty: chosen by the UI)."""

    @property
    def has_stages(self) -> bool:
        """Whether objects of this type have the field ``stage``."""
        return bool(self.stages)

    @property
    def final_stages(self) -> tuple[str, ...]:
        """``success`` and ``failure`` (those given), in that order."""
        return tuple(s for s in (self.success, self.failure) if s is not None)

    @property
    def all_stages(self) -> tuple[str, ...]:
        """Every stage an object may be in: the pipeline, then the final stages."""
        return self.stages + self.final_stages

    def field(self, name: str) -> FieldSpec | None:
        """The spec of field ``name``; for a staged type ``stage`` is an enum of all stages."""
        spec = self.fields.get(name)
        if spec is None and name == "stage" and self.has_stages:
            return FieldSpec("stage", "enum", label="Stage", values=self.all_stages, required=True)
        return spec


@dataclass
class Schema:
    """Everything an account knows about its objects: types, dictionaries, groups."""

    types: dict[str, ObjectType]
    dictionaries: dict[str, list[str]] = field(default_factory=dict)
    groups: tuple[str, ...] = ()

    def add_dictionary_value(self, key: str, value: str) -> bool:
        """Add ``value`` to dictionary ``key``; ``True`` if added, ``False`` if already there.

        Raises ``ValidationError`` for an unknown dictionary or a value that is not text.
        """
        values = self.dictionaries.get(key)
        if values is None:
            raise ValidationError(f"dictionary {key!r} does not exist", dictionary=key)
        if not isinstance(value, str) or not value:
            raise ValidationError(
                f"dictionary {key}: a value must be non-empty text, not {value!r}", dictionary=key
            )
        if value in values:
            return False
        values.append(value)
        return True


def _link(name: str, label: str, to: str = "user") -> FieldSpec:
    return FieldSpec(name, "link", label=label, to=to)


def builtin_types() -> dict[str, ObjectType]:
    """A fresh copy of the built-in types of FORMATS.md, by key."""
    user = ObjectType(
        "user",
        "User",
        _fields(
            FieldSpec("name", "string", label="Name"),
            FieldSpec("email", "email", label="Email"),
            FieldSpec("phone", "phone", label="Phone"),
            FieldSpec(
                "role",
                "enum",
                label="Role",
                values=("owner", "admin", "manager", "employee", "client"),
                default="client",
            ),
            FieldSpec("groups", "list", label="Groups", of=FieldSpec("groups", "string")),
            FieldSpec(
                "permissions",
                "list",
                label="Permissions",
                of=FieldSpec("permissions", "string"),
            ),
            _link("personal_manager", "Personal manager"),
            FieldSpec("birthday", "date", label="Birthday"),
            FieldSpec("password", "password", label="Password"),
        ),
        builtin=True,
    )
    order = ObjectType(
        "order",
        "Order",
        _fields(
            FieldSpec("number", "string", label="Number"),
            FieldSpec("status", "string", label="Status"),
            FieldSpec("amount", "number", label="Amount"),
            FieldSpec("paid_amount", "number", label="Paid amount", default=0),
            _link("client", "Client"),
            _link("manager", "Manager"),
        ),
        builtin=True,
    )
    purchase = ObjectType(
        "purchase",
        "Purchase",
        _fields(
            FieldSpec("number", "string", label="Number"),
            FieldSpec("status", "string", label="Status"),
            _link("client", "Client"),
            _link("manager", "Manager"),
            FieldSpec("offer", "string", label="Offer"),
            FieldSpec("starts", "datetime", label="Starts"),
            FieldSpec("expires", "datetime", label="Expires"),
        ),
        builtin=True,
    )
    call = ObjectType(
        "call",
        "Call",
        _fields(
            _link("client", "Client"),
            _link("manager", "Manager"),
            FieldSpec("phone", "phone", label="Phone"),
            FieldSpec("direction", "string", label="Direction"),
            FieldSpec("result", "string", label="Result"),
            FieldSpec("at", "datetime", label="At"),
        ),
        builtin=True,
    )
    return {t.key: t for t in (user, order, purchase, call)}


def _fields(*specs: FieldSpec) -> dict[str, FieldSpec]:
    return {s.name: s for s in specs}
