"""What changing an object type means for the objects already stored (pure: no I/O).

Contract:

* :func:`plan_change` compares the type before and after and returns a :class:`TypeChange`:
  which fields go away, which keep their name but hold values of another shape (those
  values are converted with the new spec's coercion), which links change their target,
  which stages go away, and whether objects get a first stage.
* A change of ``label``, ``default`` or ``required`` alone converts nothing: defaults apply
  to new objects, and ``required`` to values written from then on (stored objects without a
  value keep none, as with a newly added field).
* Built-in fields cannot be removed (a built-in type is always its built-in fields plus the
  declared ones): :func:`plan_change` lists them in ``builtin_removed``.
* :func:`merge_type` is the type a deploy aims at: the account's type with what the recipe
  declares, or, given the last deploy's declaration, with only what the recipe changed since.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from flowlane.objects.types import FieldSpec, ObjectType, builtin_types


@dataclass(frozen=True)
class TypeChange:
    """The effects of replacing ``old`` by ``new`` on stored objects."""

    old: ObjectType
    new: ObjectType
    removed: tuple[str, ...]
    """Fields no longer declared: refused while objects hold values (unless dropped)."""
    builtin_removed: tuple[str, ...]
    """Built-in fields the new type lacks: always refused."""
    converted: tuple[str, ...]
    """Fields whose stored values are coerced to the new spec."""
    relinked: tuple[str, ...]
    """Link fields (or lists of links) whose target changes: refused while values exist."""
    password: tuple[str, ...]
    """Fields that become or stop being passwords (hashes): refused while values exist."""
    removed_stages: tuple[str, ...]
    """Stages (final ones included) that go away: refused while objects are in them."""
    first_stage: str | None
    """The stage objects get when a type without stages gets some."""

    @property
    def touches_objects(self) -> bool:
        """Whether stored objects must be looked at."""
        return bool(
            self.removed
            or self.converted
            or self.relinked
            or self.password
            or self.removed_stages
            or self.first_stage
        )


def _shape(spec: FieldSpec) -> FieldSpec:
    """What decides which values a field holds (not its label, default or ``required``)."""
    of = _shape(spec.of) if spec.of is not None else None
    return replace(spec, name="", label=None, default=None, required=False, of=of)


def link_target(spec: FieldSpec) -> str | None:
    """The ``to`` of a link field or of a list of links, else ``None``."""
    if spec.type == "link":
        return spec.to
    if spec.type == "list" and spec.of is not None:
        return link_target(spec.of)
    return None


def plan_change(old: ObjectType, new: ObjectType) -> TypeChange:
    """The effects of replacing type ``old`` by ``new`` (same key) on stored objects."""
    builtin = builtin_types().get(old.key)
    gone = [name for name in old.fields if name not in new.fields]
    builtin_removed = tuple(n for n in gone if builtin is not None and n in builtin.fields)
    converted: list[str] = []
    relinked: list[str] = []
    password: list[str] = []
    for name, before in old.fields.items():
        after = new.fields.get(name)
        if after is None or _shape(before) == _shape(after):
            continue
        was, becomes = link_target(before), link_target(after)
        if was is not None and becomes is not None and was != becomes:
            relinked.append(name)
        elif (before.type == "password") != (after.type == "password"):
            password.append(name)
        else:
            converted.append(name)
    removed_stages = tuple(s for s in old.all_stages if s not in new.all_stages)
    first = new.stages[0] if new.stages and not old.stages else None
    return TypeChange(
        old=old,
        new=new,
        removed=tuple(n for n in gone if n not in builtin_removed),
        builtin_removed=builtin_removed,
        converted=tuple(converted),
        relinked=tuple(relinked),
        password=tuple(password),
        removed_stages=removed_stages,
        first_stage=first,
    )


def merge_type(
    current: ObjectType, declared: ObjectType, since: ObjectType | None = None
) -> ObjectType:
    """``current`` with what a deployed objects.yaml declares for the same type.

    Declared fields are added or replace the current ones; fields only ``current`` has stay
    (a deploy never removes a field). ``label`` comes from the declaration; stages too when
    it declares some. For a built-in type, the fields (and label) of ``declared`` equal to
    the built-in ones count as not declared (build_schema fills them in), so they do not
    undo a change made to the account's type since.

    ``since`` is the declaration of the last deploy, if known: then only what the recipe
    changed since is applied. A field declared as it was then, the label if it is the same
    and the stages if they are the same keep their current version (an admin's change to
    them survives); a field declared then and no longer stays as it is.
    """
    builtin = builtin_types().get(declared.key)

    def undeclared(name: str, spec: FieldSpec) -> bool:
        if builtin is not None and builtin.fields.get(name) == spec:
            return True
        return since is not None and since.fields.get(name) == spec

    fields = dict(current.fields)
    for name, spec in declared.fields.items():
        if not undeclared(name, spec):
            fields[name] = spec
    staged = declared.has_stages and (since is None or _stages(declared) != _stages(since))
    keep_label = (builtin is not None and declared.label == builtin.label) or (
        since is not None and declared.label == since.label
    )
    return replace(
        current,
        label=current.label if keep_label else declared.label,
        fields=fields,
        stages=declared.stages if staged else current.stages,
        success=declared.success if staged else current.success,
        failure=declared.failure if staged else current.failure,
        card=declared.card if since is None or declared.card != since.card else current.card,
    )


def _stages(otype: ObjectType) -> tuple[tuple[str, ...], str | None, str | None]:
    return otype.stages, otype.success, otype.failure


__all__ = ["TypeChange", "link_target", "merge_type", "plan_change"]
