from datetime import timedelta

import pytest

from flowlane.core.duration import format_duration, parse_duration
from flowlane.core.errors import DurationError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("3d", timedelta(days=3)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("PT30S", timedelta(seconds=30)),
        ("PT30M", timedelta(minutes=30)),
        ("P3D", timedelta(days=3)),
        ("P1W", timedelta(weeks=1)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("pt1m", timedelta(minutes=1)),
    ],
)
def test_parses_both_forms(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "3 days", "1y", "P1M2", "m30", "-1h", None, 5])
def test_refuses_what_is_not_a_duration(text: object) -> None:
    with pytest.raises(DurationError, match="not a duration"):
        parse_duration(text)


def test_format_round_trips() -> None:
    for text in ["1h30m", "3d", "1w2d", "45s"]:
        assert format_duration(parse_duration(text)) == text
    assert format_duration(timedelta(0)) == "0s"
