"""flowlane.objects: object types, fields and records (pure: no I/O, no clock, no randomness).

``build_schema`` turns a loaded objects.yaml into a :class:`Schema` (built-in types merged
with the declared ones); ``validate_record`` / ``coerce_value`` check and convert object data;
``check_stage_move`` applies the stage rules. ``ObjectsFile`` is the published JSON Schema.
"""

from flowlane.objects.build import (
    build_schema,
    build_type,
    field_from_dict,
    field_problems,
    field_spec,
    load_type,
    type_spec,
)
from flowlane.objects.change import TypeChange, link_target, merge_type, plan_change
from flowlane.objects.file import FIELD_TYPES, FieldSpecModel, ObjectsFile, TypeSpec
from flowlane.objects.record import (
    check_stage_move,
    coerce_value,
    link_problems,
    validate_record,
    value_problem,
)
from flowlane.objects.types import (
    DICTIONARY_PREFIX,
    RESERVED_FIELDS,
    FieldSpec,
    ObjectType,
    Schema,
    builtin_types,
)

__all__ = [
    "DICTIONARY_PREFIX",
    "FIELD_TYPES",
    "RESERVED_FIELDS",
    "FieldSpec",
    "FieldSpecModel",
    "ObjectType",
    "ObjectsFile",
    "Schema",
    "TypeChange",
    "TypeSpec",
    "build_schema",
    "build_type",
    "builtin_types",
    "check_stage_move",
    "coerce_value",
    "field_from_dict",
    "field_problems",
    "field_spec",
    "link_problems",
    "link_target",
    "load_type",
    "merge_type",
    "plan_change",
    "type_spec",
    "validate_record",
    "value_problem",
]
