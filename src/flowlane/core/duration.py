"""Durations: ISO 8601 (``PT30M``, ``P3D``, ``P1W``) or the short form (``30m``, ``1h30m``).

Units of the short form: ``s`` seconds, ``m`` minutes, ``h`` hours, ``d`` days of 24 h,
``w`` weeks. Months and years are refused: their length depends on the calendar.
"""

from __future__ import annotations

import re
from datetime import timedelta

from flowlane.core.errors import DurationError

_SHORT = re.compile(r"(\d+)([smhdw])")
_SHORT_FULL = re.compile(r"(?:\d+[smhdw])+")
_ISO = re.compile(
    r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: object) -> timedelta:
    """Parse a duration; raise :class:`DurationError` naming the text when it is not one."""
    if isinstance(text, timedelta):
        return text
    if not isinstance(text, str) or not text.strip():
        raise DurationError(f"not a duration: {text!r} (use e.g. 30m, 24h, 1h30m, PT30M, P3D)")
    s = text.strip()
    if _SHORT_FULL.fullmatch(s):
        return timedelta(seconds=sum(int(n) * _UNIT_SECONDS[u] for n, u in _SHORT.findall(s)))
    m = _ISO.fullmatch(s.upper())
    if m and s.upper() not in ("P", "PT") and not s.upper().endswith("T"):
        parts = {k: float(v) for k, v in m.groupdict().items() if v is not None}
        return timedelta(
            weeks=parts.get("w", 0),
            days=parts.get("d", 0),
            hours=parts.get("h", 0),
            minutes=parts.get("m", 0),
            seconds=parts.get("s", 0),
        )
    raise DurationError(f"not a duration: {text!r} (use e.g. 30m, 24h, 1h30m, PT30M, P3D)")


def format_duration(value: timedelta) -> str:
    """Render a duration in the short form (``1d2h30m``); ``0s`` for zero."""
    total = int(value.total_seconds())
    if total == 0:
        return "0s"
    out = []
    for unit in ("w", "d", "h", "m", "s"):
        n, total = divmod(total, _UNIT_SECONDS[unit])
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)
