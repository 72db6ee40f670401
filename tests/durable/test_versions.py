"""Versions on the durable store: deploy makes a new version only for a changed process,
running instances keep theirs, ``flowlane instance migrate`` moves waiting instances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support import write_recipe
from typer.testing import CliRunner

from flowlane.cli.main import app
from flowlane.runtime.durable import load_valid_recipe, open_durable
from flowlane.runtime.worker import Worker
from flowlane.services.account import Account

V1 = """\
key: remind
name: reminder
object: user
blocks:
  start: {type: start, next: wait}
  wait: {type: delay, for: 1h, next: done}
  done: {type: end, outcome: positive}
"""

V2 = """\
key: remind
name: reminder
object: user
blocks:
  start: {type: start, next: pause}
  pause: {type: delay, for: 1h, next: finish}
  finish: {type: end, outcome: negative}
"""

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _recipe(root: Path, text: str) -> Path:
    return write_recipe(root, {"remind": text})


def _versions(recipe: Path, url: str) -> dict[str, int]:
    store = open_durable(load_valid_recipe(recipe), url)
    try:
        return {st.id: st.version for st in store.instances_of("remind")}
    finally:
        store.close()


def test_deploy_start_change_and_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    recipe = _recipe(tmp_path / "recipe", V1)
    cli = CliRunner()
    first = cli.invoke(app, ["deploy", str(recipe), "--db", url])
    assert first.exit_code == 0, first.output
    assert first.output.strip() == "remind version 1"
    again = cli.invoke(app, ["deploy", str(recipe), "--db", url])
    assert again.output.strip() == "remind version 1"

    store = open_durable(load_valid_recipe(recipe), url)
    account = Account(store, NOW)
    with store.transaction():
        for uid in ("u1", "u2"):
            account.create_object("user", {"name": uid}, object_id=uid, launches=False)
            account.start("remind", uid)
    store.close()

    _recipe(tmp_path / "recipe", V2)
    changed = cli.invoke(app, ["deploy", str(recipe), "--db", url])
    assert changed.output.strip() == "remind version 2"
    assert _versions(recipe, url) == {"i1": 1, "i2": 1}

    stranded = cli.invoke(
        app, ["instance", "migrate", str(recipe), "remind", "--to", "2", "--db", url]
    )
    assert stranded.exit_code == 1
    assert "would strand a token at block wait" in stranded.output
    assert "map it with wait=<block>" in stranded.output
    assert _versions(recipe, url) == {"i1": 1, "i2": 1}

    bad = cli.invoke(
        app,
        ["instance", "migrate", str(recipe), "remind", "--to", "2", "--map", "wait", "--db", url],
    )
    assert bad.exit_code == 1 and "old_block=new_block" in bad.output
    missing = cli.invoke(
        app,
        [
            "instance",
            "migrate",
            str(recipe),
            "remind",
            "--to",
            "7",
            "--map",
            "wait=pause",
            "--db",
            url,
        ],
    )
    assert missing.exit_code == 1 and "has no version 7" in missing.output

    only_one = cli.invoke(
        app,
        [
            "instance",
            "migrate",
            str(recipe),
            "remind",
            "--to",
            "2",
            "--map",
            "wait=pause",
            "--instance",
            "i1",
            "--db",
            url,
        ],
    )
    assert only_one.exit_code == 0, only_one.output
    assert "1 instance(s) of remind moved to version 2" in only_one.output
    assert _versions(recipe, url) == {"i1": 2, "i2": 1}

    # Both wake up an hour later: the migrated one on version 2, the other on version 1.
    store = open_durable(load_valid_recipe(recipe), url)
    try:
        clock = NOW + timedelta(hours=1, seconds=1)
        Worker(store, "w", clock=lambda: clock).run(until_idle=True)
        outcomes = {st.id: (st.status, st.outcome) for st in store.instances_of("remind")}
        assert outcomes == {"i1": ("ended", "negative"), "i2": ("ended", "positive")}
        migrated = [line for line in store.history("i1") if line["event"] == "migrated"]
        assert [line["details"]["to"] for line in migrated] == [2]
    finally:
        store.close()
