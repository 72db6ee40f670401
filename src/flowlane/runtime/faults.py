"""Fault hooks: crash the process at a named point, for crash-window tests.

``FLOWLANE_FAULT=after_send`` kills the worker with SIGKILL the first time it passes the
point; ``after_send:3`` the third time; several points are separated by commas. The points:

* ``after_claim``   jobs are claimed (leased) but nothing of them is done;
* ``before_commit`` a batch of steps is written but its transaction not committed;
* ``after_send``    the SMTP server accepted a message, its outbox row is not yet marked sent.

Nothing happens when the variable is unset; production code pays one dict lookup per point.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping

from flowlane.core.errors import ValidationError

POINTS = ("after_claim", "before_commit", "after_send")


class Faults:
    def __init__(self, spec: str | None = None) -> None:
        self.armed: dict[str, int] = {}
        for part in (spec or "").split(","):
            part = part.strip()
            if not part:
                continue
            point, _, count = part.partition(":")
            if point not in POINTS:
                raise ValidationError(
                    f"FLOWLANE_FAULT: unknown point {point!r} (points: {', '.join(POINTS)})"
                )
            if count and not (count.isdigit() and int(count) > 0):
                raise ValidationError(f"FLOWLANE_FAULT: {part!r}: the count must be 1 or more")
            self.armed[point] = int(count or 1)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Faults:
        return cls(env.get("FLOWLANE_FAULT"))

    def hit(self, point: str) -> None:
        left = self.armed.get(point)
        if left is None:
            return
        if left > 1:
            self.armed[point] = left - 1
            return
        os.kill(os.getpid(), signal.SIGKILL)  # pragma: no cover - the process ends here


__all__ = ["POINTS", "Faults"]
