"""``flowlane files gc``: deletes old orphan files on a database, keeps named and young ones."""

from __future__ import annotations

import os
import time
from pathlib import Path

from typer.testing import CliRunner

from flowlane.cli.main import app
from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable, request_account
from flowlane.store.files import LocalFileStore, content_key

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "homework"
NAMED = b"%PDF-1.4 named"
ORPHAN = b"%PDF-1.4 orphan"
YOUNG = b"%PDF-1.4 young"
LOST = b"%PDF-1.4 staged"


def _old(path: Path) -> None:
    then = time.time() - 2 * 3600
    os.utime(path, (then, then))


def test_gc_deletes_old_orphans_only(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gc.db'}"
    data = tmp_path / "data"
    store = open_durable(load_valid_recipe(RECIPE), db)
    try:
        deploy(load_valid_recipe(RECIPE), store)
        account = request_account(store, data)

        def setup() -> None:
            account.create_object("user", {"name": "Olga", "role": "owner"}, object_id="olga")
            account.create_object("user", {"name": "Anna"}, object_id="anna")
            account.start("homework", "anna", {"topic": "Funnels"}, by="olga")
            task = account.open_task("homework", "anna", process="homework")
            account.attach(task, "hw.pdf", NAMED, by="anna")

        account.attempt(setup)
    finally:
        store.close()
    files = LocalFileStore(data)
    for content in (ORPHAN, YOUNG):
        files.promote(files.stage(content))
    staged = files.stage(LOST)
    for path in [*data.rglob("*.part"), *(data / "blobs").rglob("*")]:
        if path.is_file() and path.name != content_key(YOUNG):
            _old(path)

    args = ["files", "gc", str(RECIPE), "--db", db, "--data", str(data), "--older-than", "1h"]
    dry = CliRunner().invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would delete 2 file(s)" in dry.stdout and Path(staged.temp).exists()

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"deleted orphan {content_key(ORPHAN)}" in result.stdout
    assert f"deleted staged {Path(staged.temp).name}" in result.stdout
    assert "deleted 2 file(s)" in result.stdout
    assert "kept 1 named by tasks and 1 younger than 1h" in result.stdout
    assert sorted(files.keys()) == sorted([content_key(NAMED), content_key(YOUNG)])
    assert files.staged_files() == []


def test_gc_refuses_a_bad_grace_period(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gc.db'}"
    data = tmp_path / "data"
    for period, words in [("soon", "not a duration"), ("10s", "at least 60 seconds")]:
        result = CliRunner().invoke(
            app,
            ["files", "gc", str(RECIPE), "--db", db, "--data", str(data), "--older-than", period],
        )
        assert result.exit_code == 1
        assert words in result.output
