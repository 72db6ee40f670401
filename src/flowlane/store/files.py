"""Where task attachments' bytes live: a small interface and a folder on disk (ADR 0008).

A file is written in two phases so that a request that is rolled back leaves nothing behind:
:meth:`FileStore.stage` writes the bytes under a temporary name during the request, and
:meth:`FileStore.promote` moves them to their final key after the database committed
(:meth:`FileStore.discard` drops them when it did not). Keys are the SHA-256 of the content:
the user's file name never becomes part of a path. :meth:`FileStore.entries` and
:meth:`FileStore.remove` let a clean-up delete files no task names (``collect_orphans`` in
:mod:`flowlane.services.taskwork`), and :meth:`FileStore.rescue` promote a staged file whose
request committed but died before promoting it (a staged file's name carries its key).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

DEFAULT_DATA_FOLDER = "./flowlane-data"
"""The data folder when neither ``FLOWLANE_DATA`` nor the caller names one."""


def data_folder(env: Mapping[str, str] = os.environ) -> Path:
    """The data folder: ``FLOWLANE_DATA``, else ``./flowlane-data``."""
    return Path(env.get("FLOWLANE_DATA") or DEFAULT_DATA_FOLDER)


def content_key(content: bytes) -> str:
    """The key a file is stored under: the SHA-256 of its bytes, in hex."""
    return hashlib.sha256(content).hexdigest()


@dataclass(frozen=True, slots=True)
class Staged:
    """Bytes written under a temporary name, waiting for the commit."""

    key: str
    temp: str


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a store: content under its key, or bytes staged by a request.

    ``name`` is the key of a content file, the temporary name of a staged one; ``modified``
    is when it was last written (aware, UTC); ``key`` the key of the content (of a staged
    file too: its name carries it; None for a staged file of an older name).
    """

    name: str
    staged: bool
    size: int
    modified: datetime
    key: str | None = None


class FileStore(Protocol):
    """Storage of attachment bytes by key (a folder now; an S3-like bucket later)."""

    def stage(self, content: bytes) -> Staged:
        """Write the bytes under a temporary name; the key is their SHA-256."""
        ...

    def promote(self, staged: Staged) -> None:
        """Make staged bytes readable under their key (after the commit)."""
        ...

    def discard(self, staged: Staged) -> None:
        """Drop staged bytes (the request was rolled back)."""
        ...

    def read(self, key: str) -> bytes:
        """The bytes stored under ``key``; KeyError if there are none."""
        ...

    def exists(self, key: str) -> bool: ...

    def entries(self) -> list[FileEntry]:
        """Every content file and every staged file, with when each was last written."""
        ...

    def remove(self, entry: FileEntry, *, not_after: datetime) -> bool:
        """Delete the file unless it was written after ``not_after`` (checked again on the
        file set aside, so that a concurrent promote is never lost); True when it was
        deleted, False when it was younger or already gone."""
        ...

    def rescue(self, entry: FileEntry) -> bool:
        """Promote a staged file to its key (its request committed, then died before
        promoting); True when it was moved, False when it was gone or names no key."""
        ...


class LocalFileStore:
    """Files under ``root``: ``blobs/ab/<sha256>`` and ``tmp/`` for staged writes.

    Identical contents share one file; promoting bytes whose key exists already writes the
    file again (a fresh modification time), so a clean-up that takes the older file for an
    orphan leaves the new one alone. Files whose tasks were deleted (a process's restart),
    and staged files of a process that died before its commit, stay until a clean-up
    (:meth:`entries`, :meth:`remove`) deletes them.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def _blob(self, key: str) -> Path:
        if not _is_key(key):
            raise KeyError(key)
        return self.root / "blobs" / key[:2] / key

    def stage(self, content: bytes) -> Staged:
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        key = content_key(content)
        # ``<key>.<random>.part``: a clean-up can tell which key a left-behind file holds.
        fd, name = tempfile.mkstemp(dir=tmp, prefix=f"{key}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Staged(key, name)

    def promote(self, staged: Staged) -> None:
        target = self._blob(staged.key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Replaced even when the key exists: same bytes, and a fresh modification time
        # keeps a clean-up running now from deleting a file a task has just come to name.
        try:
            os.replace(staged.temp, target)
        except FileNotFoundError:
            if not target.is_file():  # else a clean-up rescued it (``rescue``) meanwhile
                raise

    def discard(self, staged: Staged) -> None:
        Path(staged.temp).unlink(missing_ok=True)

    def read(self, key: str) -> bytes:
        path = self._blob(key)
        if not path.is_file():
            raise KeyError(key)
        return path.read_bytes()

    def exists(self, key: str) -> bool:
        try:
            return self._blob(key).is_file()
        except KeyError:
            return False

    def keys(self) -> list[str]:
        """Every stored key."""
        return [p.name for p in self._blob_paths()]

    def staged_files(self) -> list[Path]:
        """Temporary files left behind (a process that died between write and commit)."""
        tmp = self.root / "tmp"
        return sorted(tmp.glob("*.part")) if tmp.is_dir() else []

    def entries(self) -> list[FileEntry]:
        found: list[FileEntry] = []
        listed = [(p, False) for p in self._blob_paths()]
        listed += [(p, True) for p in self.staged_files()]
        for path, staged in listed:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue  # promoted or removed meanwhile
            found.append(
                FileEntry(
                    name=path.name,
                    staged=staged,
                    size=st.st_size,
                    modified=datetime.fromtimestamp(st.st_mtime, UTC),
                    key=_staged_key(path.name) if staged else path.name,
                )
            )
        return found

    def _staged_path(self, entry: FileEntry) -> Path:
        if "/" in entry.name or "\\" in entry.name or not entry.name.endswith(".part"):
            raise KeyError(entry.name)
        return self.root / "tmp" / entry.name

    def remove(self, entry: FileEntry, *, not_after: datetime) -> bool:
        if entry.staged:
            path = self._staged_path(entry)
            try:
                if _mtime(path) > not_after:
                    return False  # written again since it was listed
                path.unlink()
            except FileNotFoundError:
                return False  # promoted or removed meanwhile
            return True
        # A content file is first set aside (an atomic rename), then checked: a promote
        # that replaced it before the rename left a fresh file, which goes back; one after
        # the rename writes a new file under the key, which this never touches.
        path = self._blob(entry.name)
        aside = self.root / "tmp" / f"{entry.name}.{secrets.token_hex(8)}.part"
        aside.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return False
        if _mtime(aside) > not_after:  # written again since it was listed: restore
            if path.is_file():
                aside.unlink()  # promoted once more meanwhile: the same bytes are there
            else:
                os.replace(aside, path)
            return False
        aside.unlink()
        return True

    def rescue(self, entry: FileEntry) -> bool:
        key = _staged_key(entry.name) if entry.staged else None
        if key is None:
            return False
        path = self._staged_path(entry)
        try:
            self.promote(Staged(key, str(path)))
        except FileNotFoundError:
            return False  # promoted or removed meanwhile
        return True

    def _blob_paths(self) -> list[Path]:
        blobs = self.root / "blobs"
        if not blobs.is_dir():
            return []
        return sorted(p for p in blobs.glob("*/*") if p.is_file() and _is_key(p.name))


def _is_key(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def _staged_key(name: str) -> str | None:
    """The key a staged file's name carries (``<key>.<random>.part``), else None."""
    key = name.partition(".")[0]
    return key if _is_key(key) else None


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)
