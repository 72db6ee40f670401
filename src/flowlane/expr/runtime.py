"""Runtime helpers that compiled expressions call, and the whitelisted functions.

Compiled expressions never touch Python's attribute, item, operator or builtin machinery
directly: every ``a.b``, ``a[b]``, arithmetic operator and comparison is rewritten into a
call of one of the helpers below. Their shared contract:

- A missing value is ``None``, never an exception: reading from ``None``, a missing key,
  an index out of range, or an attribute that is not readable on a value gives ``None``.
- Operators are ``None``-safe: arithmetic with a ``None`` operand (or operand types that do
  not fit together) gives ``None``; ordering comparisons (``< <= > >=``) that cannot be
  made give ``False``; ``==`` and ``!=`` use Python equality (so link proxies equal to
  their id work); ``x in None`` is ``False``. Division by zero gives ``None``.
- A ``date`` meeting a ``datetime`` (comparison or subtraction) is read as midnight in the
  datetime's time zone.
- Guards against resource abuse raise :class:`ExpressionError`: powers and integer products
  whose result would exceed about ``10**100``, sequence repetition beyond
  ``MAX_REPEAT_ITEMS`` items, and ``+`` making a text longer than ``MAX_TEXT_LENGTH``
  characters or a list/tuple of more than ``MAX_REPEAT_ITEMS`` items.
  :func:`check_size` bounds a whole value (scripts check what they assign).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from flowlane.core.errors import ExpressionError

MAX_REPEAT_ITEMS = 100_000
MAX_POWER_EXPONENT = 100
MAX_POWER_DIGITS = 100
MAX_ROUND_DIGITS = 100
MAX_TEXT_LENGTH = 1_000_000

_SEQUENCES = (str, bytes, bytearray, list, tuple)
_DATE_ATTRIBUTES = frozenset({"year", "month", "day", "weekday"})
_TIME_ATTRIBUTES = frozenset({"hour", "minute", "second"})
_DATETIME_ATTRIBUTES = _DATE_ATTRIBUTES | _TIME_ATTRIBUTES
_DELTA_ATTRIBUTES = frozenset({"days", "seconds"})


@runtime_checkable
class Readable(Protocol):
    """A value that exposes named fields to expressions (the engine's object proxies).

    ``flowlane_get(name)`` returns the field's value, or ``None`` when there is no such
    field. It is never called with a name that starts with ``_``.
    """

    def flowlane_get(self, name: str) -> Any:
        """Return the value of field ``name``, ``None`` when missing."""


# --- reading ---------------------------------------------------------------------------


def get_attribute(obj: Any, name: str) -> Any:
    """``obj.name``: a Mapping's key, a Readable's field, a whitelisted date/time part.

    Anything else (including ``None``) gives ``None``.
    """
    if type(obj) is dict:
        return obj.get(name)
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return _read_named(obj, name)


def _read_named(obj: Any, name: str) -> Any:
    """A Readable's field or a temporal part; ``None`` for private names and other values."""
    if name.startswith("_"):
        return None
    reader = getattr(type(obj), "flowlane_get", None)
    if reader is not None:
        return reader(obj, name)
    if isinstance(obj, datetime):
        allowed = _DATETIME_ATTRIBUTES
    elif isinstance(obj, date):
        allowed = _DATE_ATTRIBUTES
    elif isinstance(obj, time):
        allowed = _TIME_ATTRIBUTES
    elif isinstance(obj, timedelta):
        allowed = _DELTA_ATTRIBUTES
    else:
        return None
    if name not in allowed:
        return None
    if name == "weekday":
        return obj.weekday()
    return getattr(obj, name)


def get_item(obj: Any, key: Any) -> Any:
    """``obj[key]``: a Mapping's key, a list/tuple/str index or slice, else like ``obj.key``.

    Missing keys, indexes out of range and keys of the wrong type give ``None``.
    """
    if obj is None:
        return None
    try:
        if isinstance(obj, Mapping):
            return obj.get(key)
        if isinstance(obj, list | tuple | str):
            return obj[key]
    except (TypeError, IndexError, ValueError):
        return None
    if isinstance(key, str):
        return _read_named(obj, key)
    return None


# --- arithmetic ------------------------------------------------------------------------


def _midnight(day: date, like: datetime) -> datetime:
    """Midnight at the start of ``day`` in the time zone of ``like``."""
    return datetime.combine(day, time(), tzinfo=like.tzinfo)


def _aligned(a: Any, b: Any) -> tuple[Any, Any] | None:
    """``(a, b)`` with a plain date turned into a datetime when the other is a datetime."""
    a_is_datetime = isinstance(a, datetime)
    b_is_datetime = isinstance(b, datetime)
    if a_is_datetime and not b_is_datetime and isinstance(b, date):
        return a, _midnight(b, a)
    if b_is_datetime and not a_is_datetime and isinstance(a, date):
        return _midnight(a, b), b
    return None


def _retry_aligned(op: Callable[[Any, Any], Any], a: Any, b: Any, default: Any) -> Any:
    """``op(a, b)`` once a date is aligned with a datetime; ``default`` if that fails too."""
    pair = _aligned(a, b)
    if pair is None:
        return default
    try:
        return op(*pair)
    except TypeError:
        return default


def _check_concat(a: Any, b: Any) -> None:
    """Raise :class:`ExpressionError` when ``a + b`` would make too long a text or list."""
    texts = (str, bytes, bytearray)
    if isinstance(a, texts) and isinstance(b, texts) and len(a) + len(b) > MAX_TEXT_LENGTH:
        raise ExpressionError(f"text would be longer than {MAX_TEXT_LENGTH} characters")
    lists = (list, tuple)
    if isinstance(a, lists) and isinstance(b, lists) and len(a) + len(b) > MAX_REPEAT_ITEMS:
        raise ExpressionError(f"+ would make more than {MAX_REPEAT_ITEMS} items")


def add(a: Any, b: Any) -> Any:
    """``a + b``; ``None`` when the operands do not add up; refuses texts longer than
    ``MAX_TEXT_LENGTH`` and lists of more than ``MAX_REPEAT_ITEMS`` items."""
    _check_concat(a, b)
    try:
        return a + b
    except TypeError:
        return None


def subtract(a: Any, b: Any) -> Any:
    """``a - b``; a date meeting a datetime counts as its midnight; ``None`` on mismatch."""
    try:
        return a - b
    except TypeError:
        return _retry_aligned(operator.sub, a, b, None)


def _check_repeat(sequence: Any, times: Any) -> None:
    """Raise :class:`ExpressionError` if ``sequence * times`` exceeds ``MAX_REPEAT_ITEMS``."""
    try:
        count = operator.index(times)
    except TypeError:
        return
    if count > 0 and len(sequence) * count > MAX_REPEAT_ITEMS:
        raise ExpressionError(f"repetition would make more than {MAX_REPEAT_ITEMS} items")


_MAX_PRODUCT = 10**MAX_POWER_DIGITS
_MAX_PRODUCT_BITS = _MAX_PRODUCT.bit_length()


def _check_product(a: int, b: int) -> None:
    """Raise :class:`ExpressionError` when the integer ``a * b`` would exceed ``10**100``."""
    bits = abs(a).bit_length() + abs(b).bit_length()
    if bits > _MAX_PRODUCT_BITS + 1 or (bits >= _MAX_PRODUCT_BITS and abs(a * b) > _MAX_PRODUCT):
        raise ExpressionError(f"result of * would be larger than 10**{MAX_POWER_DIGITS}")


def multiply(a: Any, b: Any) -> Any:
    """``a * b``; refuses sequence repetition beyond ``MAX_REPEAT_ITEMS`` and integer
    products above ``10**MAX_POWER_DIGITS``."""
    if isinstance(a, _SEQUENCES):
        _check_repeat(a, b)
    elif isinstance(b, _SEQUENCES):
        _check_repeat(b, a)
    elif isinstance(a, int) and isinstance(b, int):
        _check_product(a, b)
    try:
        return a * b
    except TypeError:
        return None


def divide(a: Any, b: Any) -> Any:
    """``a / b``; ``None`` on division by zero or mismatched operands."""
    try:
        return a / b
    except (TypeError, ZeroDivisionError):
        return None


def floor_divide(a: Any, b: Any) -> Any:
    """``a // b``; ``None`` on division by zero or mismatched operands."""
    try:
        return a // b
    except (TypeError, ZeroDivisionError):
        return None


def modulo(a: Any, b: Any) -> Any:
    """``a % b`` for numbers and durations; ``None`` for text (no %-formatting) and zero."""
    if isinstance(a, str | bytes | bytearray):
        return None
    try:
        return a % b
    except (TypeError, ZeroDivisionError):
        return None


def _log10(value: Any) -> float:
    """``log10(value)``; infinity when it cannot be computed (treated as huge)."""
    try:
        return math.log10(value)
    except (TypeError, ValueError, OverflowError):
        return math.inf


def check_power(base: Any, exponent: Any) -> None:
    """Raise :class:`ExpressionError` when ``base ** exponent`` would be huge.

    Huge means: ``|base| > 1`` and an exponent above ``MAX_POWER_EXPONENT``, or a result
    above ``10 ** MAX_POWER_DIGITS``. Values that are not numbers pass (the power itself
    then fails softly).
    """
    try:
        magnitude = abs(base)
        if not magnitude > 1 or not exponent > 0:
            return
        if exponent > MAX_POWER_EXPONENT:
            raise ExpressionError(f"exponent {exponent!r} is too large (max {MAX_POWER_EXPONENT})")
        too_big = _log10(magnitude) * exponent > MAX_POWER_DIGITS
    except (TypeError, ValueError, ArithmeticError):
        return
    if too_big:
        raise ExpressionError(f"result of ** would be larger than 10**{MAX_POWER_DIGITS}")


def power(a: Any, b: Any) -> Any:
    """``a ** b`` with the :func:`check_power` guard; ``None`` on mismatch or complex result."""
    if a is None or b is None:
        return None
    check_power(a, b)
    try:
        result = a**b
    except (TypeError, ZeroDivisionError):
        return None
    return None if isinstance(result, complex) else result


def negative(a: Any) -> Any:
    """``-a``; ``None`` when ``a`` has no negative."""
    try:
        return -a
    except TypeError:
        return None


def positive(a: Any) -> Any:
    """``+a``; ``None`` when ``a`` is not a number."""
    try:
        return +a
    except TypeError:
        return None


# --- comparisons -----------------------------------------------------------------------


def equal(a: Any, b: Any) -> Any:
    """``a == b`` with Python equality (custom ``__eq__`` honoured); dates aligned."""
    if isinstance(a, date) and isinstance(b, date):
        pair = _aligned(a, b)
        if pair is not None:
            a, b = pair
    return a == b


def not_equal(a: Any, b: Any) -> Any:
    """``a != b``, the negation of :func:`equal`."""
    if isinstance(a, date) and isinstance(b, date):
        pair = _aligned(a, b)
        if pair is not None:
            a, b = pair
    return a != b


def less(a: Any, b: Any) -> Any:
    """``a < b``; ``False`` when the values cannot be ordered (e.g. ``None``)."""
    try:
        return a < b
    except TypeError:
        return _retry_aligned(operator.lt, a, b, False)


def less_equal(a: Any, b: Any) -> Any:
    """``a <= b``; ``False`` when the values cannot be ordered."""
    try:
        return a <= b
    except TypeError:
        return _retry_aligned(operator.le, a, b, False)


def greater(a: Any, b: Any) -> Any:
    """``a > b``; ``False`` when the values cannot be ordered."""
    try:
        return a > b
    except TypeError:
        return _retry_aligned(operator.gt, a, b, False)


def greater_equal(a: Any, b: Any) -> Any:
    """``a >= b``; ``False`` when the values cannot be ordered."""
    try:
        return a >= b
    except TypeError:
        return _retry_aligned(operator.ge, a, b, False)


def contains(item: Any, container: Any) -> bool:
    """``item in container``; ``False`` for a ``None`` or non-container right side."""
    if container is None:
        return False
    try:
        return item in container
    except TypeError:
        return False


def not_contains(item: Any, container: Any) -> bool:
    """``item not in container``, the negation of :func:`contains`."""
    return not contains(item, container)


# --- whitelisted functions -------------------------------------------------------------


def fn_len(value: Any) -> Any:
    """``len(value)``; ``0`` for ``None``, ``None`` for values without a length."""
    if value is None:
        return 0
    try:
        return len(value)
    except TypeError:
        return None


def _extreme(pick: Callable[[list[Any]], Any], args: tuple[Any, ...]) -> Any:
    """``pick`` over the arguments, or over the items of a single non-text, non-mapping
    iterable argument, ignoring ``None``; ``None`` when empty or not comparable."""
    values: Iterable[Any] = args
    if len(args) == 1:
        only = args[0]
        is_collection = isinstance(only, Iterable) and not isinstance(only, str | bytes)
        values = only if is_collection and not isinstance(only, Mapping) else args
    present = [value for value in values if value is not None]
    if not present:
        return None
    try:
        return pick(present)
    except (TypeError, ValueError):
        return None


def fn_min(*args: Any) -> Any:
    """Smallest of the arguments (or of one list argument), ignoring ``None``; else ``None``."""
    return _extreme(min, args)


def fn_max(*args: Any) -> Any:
    """Largest of the arguments (or of one list argument), ignoring ``None``; else ``None``."""
    return _extreme(max, args)


def fn_abs(value: Any) -> Any:
    """``abs(value)``; ``None`` for ``None`` and non-numbers."""
    try:
        return abs(value)
    except TypeError:
        return None


def fn_round(value: Any, digits: Any = None) -> Any:
    """``round(value[, digits])``; ``None`` for non-numbers; ``|digits|`` at most 100."""
    if value is None:
        return None
    if isinstance(digits, int) and abs(digits) > MAX_ROUND_DIGITS:
        raise ExpressionError(f"round() takes at most {MAX_ROUND_DIGITS} digits")
    try:
        return round(value) if digits is None else round(value, digits)
    except (TypeError, ValueError, OverflowError):
        return None


def _text_size(value: Any, budget: int) -> int:
    """A rough upper estimate of ``len(str(value))``, stopping once above ``budget``."""
    if isinstance(value, str):
        return len(value) + 4
    if isinstance(value, int):
        return value.bit_length() // 3 + 3
    items: Iterable[Any]
    if isinstance(value, Mapping):
        items = (part for pair in value.items() for part in pair)
    elif isinstance(value, list | tuple | set | frozenset):
        items = value
    else:
        return 64
    size = 2
    for item in items:
        size += _text_size(item, budget - size)
        if size > budget:
            break
    return size


MAX_VALUE_DEPTH = 100


def check_size(value: Any) -> None:
    """Raise :class:`ExpressionError` when ``value`` is too big to keep as a variable.

    Too big: texts of more than ``MAX_TEXT_LENGTH`` characters in all, more than
    ``MAX_REPEAT_ITEMS`` items (list items, dict keys and values, counted again each time
    a shared value recurs), integers above ``10**MAX_POWER_DIGITS``, or nesting deeper than
    ``MAX_VALUE_DEPTH``. The walk stops as soon as a limit is passed.
    """
    text = 0
    items = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, str | bytes | bytearray):
            text += len(current)
            if text > MAX_TEXT_LENGTH:
                raise ExpressionError(f"value holds more than {MAX_TEXT_LENGTH} characters")
            continue
        if isinstance(current, int):
            if current.bit_length() > _MAX_PRODUCT_BITS and abs(current) > _MAX_PRODUCT:
                raise ExpressionError(f"number is larger than 10**{MAX_POWER_DIGITS}")
            continue
        children: Iterable[Any]
        if isinstance(current, Mapping):
            children = (part for pair in current.items() for part in pair)
        elif isinstance(current, list | tuple | set | frozenset):
            children = current
        else:
            continue
        if depth >= MAX_VALUE_DEPTH:
            raise ExpressionError(f"value is nested more than {MAX_VALUE_DEPTH} levels deep")
        for child in children:
            items += 1
            if items > MAX_REPEAT_ITEMS:
                raise ExpressionError(f"value holds more than {MAX_REPEAT_ITEMS} items")
            stack.append((child, depth + 1))


def fn_str(value: Any) -> str | None:
    """Text of a value; ``None`` stays ``None``; dates and times as ISO 8601.

    Raises :class:`ExpressionError` when the text of a collection would be longer than
    ``MAX_TEXT_LENGTH`` characters.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, date | time):
        return value.isoformat()
    if _text_size(value, MAX_TEXT_LENGTH) > MAX_TEXT_LENGTH:
        raise ExpressionError(f"text would be longer than {MAX_TEXT_LENGTH} characters")
    try:
        return str(value)
    except ValueError:  # e.g. an int beyond the interpreter's digit limit
        return None


def fn_lower(value: Any) -> str | None:
    """Lower-case text of a value (see :func:`fn_str`); ``None`` stays ``None``."""
    text = fn_str(value)
    return None if text is None else text.lower()


def fn_upper(value: Any) -> str | None:
    """Upper-case text of a value (see :func:`fn_str`); ``None`` stays ``None``."""
    text = fn_str(value)
    return None if text is None else text.upper()


def fn_int(value: Any) -> int | None:
    """``int(value)``; ``None`` for ``None`` and values that are no integer."""
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def fn_float(value: Any) -> float | None:
    """``float(value)``; ``None`` for ``None`` and values that are no number."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def fn_bool(value: Any) -> bool:
    """Truth of a value, as in Python (``None`` is ``False``)."""
    return bool(value)


def _duration(amount: Any, unit: str) -> timedelta | None:
    """``timedelta(unit=amount)`` for a number; ``None`` for anything else or overflow."""
    if isinstance(amount, Decimal | Fraction):
        amount = float(amount)
    if not isinstance(amount, int | float):
        return None
    try:
        return timedelta(**{unit: amount})
    except (TypeError, ValueError, OverflowError):
        return None


def fn_days(amount: Any) -> timedelta | None:
    """A duration of ``amount`` days (24 h); ``None`` when ``amount`` is no number."""
    return _duration(amount, "days")


def fn_hours(amount: Any) -> timedelta | None:
    """A duration of ``amount`` hours; ``None`` when ``amount`` is no number."""
    return _duration(amount, "hours")


def fn_minutes(amount: Any) -> timedelta | None:
    """A duration of ``amount`` minutes; ``None`` when ``amount`` is no number."""
    return _duration(amount, "minutes")


def _parse_date(text: str) -> date | None:
    """The date of an ISO 8601 date or datetime text; ``None`` when it is neither."""
    text = text.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        return None


def fn_date(*args: Any) -> date | None:
    """``date(y, m, d)``, ``date("2026-03-01")``, ``date(a_date)``, ``date(a_datetime)``.

    A datetime gives its own calendar date (in its own time zone). Invalid input gives
    ``None``.
    """
    if len(args) == 3:
        try:
            return date(*args)
        except (TypeError, ValueError, OverflowError):
            return None
    value = args[0] if len(args) == 1 else None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return _parse_date(value)
    return None


def fn_today(scope: Mapping[str, Any]) -> date | None:
    """The date of the scope's ``now`` (already in the account time zone), else ``None``."""
    now = scope.get("now")
    if isinstance(now, datetime):
        return now.date()
    if isinstance(now, date):
        return now
    return None


def fn_datetime(scope: Mapping[str, Any], value: Any) -> datetime | None:
    """``datetime("2026-03-02T10:00")``: an ISO 8601 date-time (or date, at midnight); one
    without an offset is taken in the zone of the scope's ``now``. Invalid input gives
    ``None``; a datetime is returned as it is."""
    if isinstance(value, datetime):
        return value
    moment: datetime | None = None
    if isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        now = scope.get("now")
        zone = now.tzinfo if isinstance(now, datetime) else None
        if zone is None:
            return None
        moment = moment.replace(tzinfo=zone)
    return moment


FUNCTIONS: Mapping[str, Callable[..., Any]] = MappingProxyType(
    {
        "len": fn_len,
        "min": fn_min,
        "max": fn_max,
        "abs": fn_abs,
        "round": fn_round,
        "lower": fn_lower,
        "upper": fn_upper,
        "today": fn_today,
        "days": fn_days,
        "hours": fn_hours,
        "minutes": fn_minutes,
        "date": fn_date,
        "datetime": fn_datetime,
        "str": fn_str,
        "int": fn_int,
        "float": fn_float,
        "bool": fn_bool,
    }
)
"""The functions an expression may call, by the bare name it calls them with."""
