"""Test support: small inline recipes and scenarios for the simulator."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from flowlane.runtime.simulate import SimResult
from flowlane.services.account import Account
from flowlane.store.base import Store

RunScenario = Callable[..., SimResult]


def write_recipe(
    root: Path,
    processes: dict[str, str],
    *,
    objects: str | None = None,
    templates: dict[str, str] | None = None,
) -> Path:
    (root / "processes").mkdir(parents=True, exist_ok=True)
    (root / "templates").mkdir(exist_ok=True)
    (root / "recipe.yaml").write_text("key: t\nname: test recipe\n")
    if objects is not None:
        (root / "objects.yaml").write_text(textwrap.dedent(objects))
    for name, text in processes.items():
        (root / "processes" / f"{name}.yaml").write_text(textwrap.dedent(text))
    for name, text in (templates or {}).items():
        (root / "templates" / f"{name}.md").write_text(textwrap.dedent(text))
    return root


PEOPLE = """
clock: 2026-03-02T10:00:00+03:00
objects:
  - {type: user, id: anna, data: {name: Anna, email: anna@example.com}}
  - {type: user, id: boris, data: {name: Boris, email: boris@shop.example, role: manager}}
  - {type: user, id: olga, data: {name: Olga, email: olga@shop.example, role: owner}}
  - {type: order, id: o1, data: {number: A-1, status: new, client: anna, manager: boris,
                                  amount: 100, paid_amount: 0}}
"""


def scenario(steps: str, name: str = "t") -> str:
    return f"name: {name}\n{PEOPLE}\nsteps:\n{steps}"


def assert_ok(result: SimResult) -> None:
    assert result.ok, result.message


def start_users(store: Store, count: int, now: datetime, process: str = "drip") -> list[str]:
    """Users ``u0…`` (name ``U<i>``, email ``u<i>@example.com``), each with an instance of
    ``process`` started at ``now``, in one transaction; the instance ids in order."""
    account = Account(store, now)
    ids = []
    with store.transaction():
        for i in range(count):
            uid = f"u{i}"
            account.create_object(
                "user",
                {"name": f"U{i}", "email": f"u{i}@example.com"},
                object_id=uid,
                launches=False,
            )
            ids.append(account.start(process, uid))
    return ids
