"""Orphan attachment files: ``collect_orphans`` deletes the files no task names once they are
older than the grace period, and keeps the named and the young ones (ADR 0008)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flowlane.core.errors import Refused
from flowlane.model.recipe import load_recipe
from flowlane.runtime.simulate import Database, build_account
from flowlane.services.account import Account
from flowlane.services.taskwork import collect_orphans
from flowlane.store.files import LocalFileStore, content_key
from flowlane.store.records import TaskRecord

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "homework"
TZ = ZoneInfo("Europe/Moscow")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)
HOUR = timedelta(hours=1)
KEPT = b"%PDF-1.4 kept"
LOST = b"%PDF-1.4 rolled back"


@pytest.fixture(params=["memory", "sqlite"])
def account(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Account]:
    """The homework recipe with its owner olga and a client anna."""
    db = Database(f"sqlite:///{tmp_path / 'gc.db'}") if request.param == "sqlite" else None
    acc = build_account(load_recipe(RECIPE), T0, TZ, None, db)
    acc._files = LocalFileStore(tmp_path / "data")
    try:

        def fixtures() -> None:
            acc.create_object("user", {"name": "Olga", "role": "owner"}, object_id="olga")
            acc.create_object("user", {"name": "Anna"}, object_id="anna")
            acc.start("homework", "anna", {"topic": "Funnels"}, by="olga")

        acc.attempt(fixtures)
        yield acc
    finally:
        acc.store.close()


def _task(account: Account) -> TaskRecord:
    return account.open_task("homework", "anna", process="homework")


def _files(account: Account) -> list[Path]:
    root = Path(str(account.files.root))  # type: ignore[attr-defined]
    return sorted(p for p in root.rglob("*") if p.is_file())


def _age(paths: list[Path], at: datetime) -> None:
    for path in paths:
        os.utime(path, (at.timestamp(), at.timestamp()))


def _attach(account: Account, content: bytes) -> None:
    account.attempt(lambda: account.attach(_task(account), "hw.pdf", content, by="anna") and None)


def test_a_rolled_back_file_left_behind_goes_after_the_grace_period(account: Account) -> None:
    _attach(account, KEPT)
    # A request rolled back by a process that died before discarding its staged file.
    with pytest.raises(RuntimeError), account.store.transaction():
        account.attach(_task(account), "lost.pdf", LOST, by="anna")
        raise RuntimeError("the process died")
    account.staged_files.clear()
    [blob, part] = _files(account)
    assert part.suffix == ".part" and blob.name == content_key(KEPT)
    _age([blob, part], T0)
    # within the grace period: both kept
    account.runner.now = T0 + HOUR - timedelta(seconds=1)
    done = collect_orphans(account, HOUR)
    assert (done.removed, done.referenced, done.young) == ([], 1, 1)
    assert _files(account) == [blob, part]
    # after it: the staged file goes, the file the task names stays
    account.runner.now = T0 + HOUR + timedelta(seconds=1)
    done = collect_orphans(account, HOUR)
    assert [(e.staged, e.size) for e in done.removed] == [(True, len(LOST))]
    assert (done.referenced, done.young, done.freed) == (1, 0, len(LOST))
    assert _files(account) == [blob]
    assert account.attachment_content(_task(account).id, f"{_task(account).id}.a1", by="olga")


def test_files_of_tasks_a_restart_deleted_go_young_ones_stay(account: Account) -> None:
    _attach(account, KEPT)
    [old] = _files(account)
    _age([old], T0)
    account.attempt(lambda: account.restart("homework", by="olga"))
    assert account.store.find_tasks() == []
    # a young orphan (written 10 minutes ago) and the old one
    account.runner.now = T0 + 2 * HOUR
    young = account.files.stage(LOST)
    account.files.promote(young)
    [young_path] = [p for p in _files(account) if p.name == young.key]
    _age([young_path], account.now - timedelta(minutes=10))
    dry = collect_orphans(account, HOUR, dry_run=True)
    assert [e.name for e in dry.removed] == [old.name] and dry.dry_run
    assert len(_files(account)) == 2
    done = collect_orphans(account, HOUR)
    assert [e.name for e in done.removed] == [content_key(KEPT)]
    assert (done.referenced, done.young) == (0, 1)
    assert _files(account) == [young_path]


def test_a_file_promoted_again_is_young_again(account: Account) -> None:
    """A task that comes to name an old orphan's bytes writes the file again: a clean-up
    that listed the old file does not delete it."""
    files = account.files
    assert isinstance(files, LocalFileStore)
    files.promote(files.stage(KEPT))
    [path] = _files(account)
    _age([path], T0 - 2 * HOUR)
    [listed] = files.entries()
    files.promote(files.stage(KEPT))  # a request attaching the same bytes committed
    _age([path], T0)
    assert files.remove(listed, not_after=T0 - HOUR) is False
    assert path.read_bytes() == KEPT
    assert files.remove(listed, not_after=T0) is True
    assert files.remove(listed, not_after=T0) is False  # gone already
    with pytest.raises(KeyError):
        files.remove(type(listed)("../x.part", True, 0, T0), not_after=T0)


def test_a_grace_period_under_a_minute_is_refused(account: Account) -> None:
    _attach(account, KEPT)
    with pytest.raises(Refused, match="older_than: at least 60 seconds"):
        collect_orphans(account, timedelta(seconds=59))
    assert len(_files(account)) == 1


def test_a_committed_file_never_promoted_is_promoted_not_deleted(account: Account) -> None:
    """The process died between the commit and the promote: the task names the key, the
    bytes are still staged. A clean-up promotes them once they are past the grace period."""
    task = _task(account)
    with account.store.transaction():
        account.attach(task, "hw.pdf", KEPT, by="anna")
    account.staged_files.clear()  # died before promoting
    [part] = _files(account)
    assert part.name.startswith(content_key(KEPT) + ".") and part.suffix == ".part"
    _age([part], T0)
    account.runner.now = T0 + HOUR - timedelta(seconds=1)
    young = collect_orphans(account, HOUR)
    assert (young.removed, young.rescued, young.young) == ([], [], 1)
    account.runner.now = T0 + HOUR + timedelta(seconds=1)
    dry = collect_orphans(account, HOUR, dry_run=True)
    assert [e.name for e in dry.rescued] == [part.name] and dry.removed == []
    assert _files(account) == [part]
    done = collect_orphans(account, HOUR)
    assert [e.key for e in done.rescued] == [content_key(KEPT)] and done.removed == []
    [blob] = _files(account)
    assert blob.name == content_key(KEPT)
    assert account.attachment_content(task.id, f"{task.id}.a1", by="olga") == KEPT


def test_a_promote_racing_the_removal_is_never_lost(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clean-up sets the file aside before it checks its time: a promote just before
    that is noticed (the file goes back), one just after writes a file it never touches."""
    files = account.files
    assert isinstance(files, LocalFileStore)
    files.promote(files.stage(KEPT))
    [path] = _files(account)
    _age([path], T0 - 2 * HOUR)
    [listed] = files.entries()
    rename = os.rename

    def promote_then_rename(src: str | Path, dst: str | Path) -> None:
        files.promote(files.stage(KEPT))  # a request attaching the same bytes committed
        _age([path], T0)
        rename(src, dst)

    monkeypatch.setattr(os, "rename", promote_then_rename)
    assert files.remove(listed, not_after=T0 - HOUR) is False
    assert _files(account) == [path] and path.read_bytes() == KEPT

    def rename_then_promote(src: str | Path, dst: str | Path) -> None:
        rename(src, dst)
        files.promote(files.stage(KEPT))

    _age([path], T0 - 2 * HOUR)
    monkeypatch.setattr(os, "rename", rename_then_promote)
    assert files.remove(listed, not_after=T0 - HOUR) is True  # the old file went
    assert _files(account) == [path] and path.read_bytes() == KEPT  # the new one stays
