"""Where task attachments' bytes live: a small interface and a folder on disk (ADR 0008).

A file is written in two phases so that a request that is rolled back leaves nothing behind:
:meth:`FileStore.stage` writes the bytes under a temporary name during the request, and
:meth:`FileStore.promote` moves them to their final key after the database committed
(:meth:`FileStore.discard` drops them when it did not). Keys are the SHA-256 of the content:
the user's file name never becomes part of a path. :meth:`FileStore.entries` and
:meth:`FileStore.remove` let a clean-up delete files no task names (``collect_orphans`` in
:mod:`flowlane.services.taskwork`).
"""

from __future__ import annotations

import hashlib
import os
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
    is when it was last written (aware, UTC).
    """

    name: str
    staged: bool
    size: int
    modified: datetime


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
        """Delete the file unless it was written after ``not_after`` (checked again just
        before); True when it was deleted, False when it was younger or already gone."""
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
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise KeyError(key)
        return self.root / "blobs" / key[:2] / key

    def stage(self, content: bytes) -> Staged:
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Staged(content_key(content), name)

    def promote(self, staged: Staged) -> None:
        target = self._blob(staged.key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Replaced even when the key exists: same bytes, and a fresh modification time
        # keeps a clean-up running now from deleting a file a task has just come to name.
        os.replace(staged.temp, target)

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
                )
            )
        return found

    def remove(self, entry: FileEntry, *, not_after: datetime) -> bool:
        if entry.staged:
            if "/" in entry.name or "\\" in entry.name or not entry.name.endswith(".part"):
                raise KeyError(entry.name)
            path = self.root / "tmp" / entry.name
        else:
            path = self._blob(entry.name)
        try:
            if datetime.fromtimestamp(path.stat().st_mtime, UTC) > not_after:
                return False  # written again since it was listed
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def _blob_paths(self) -> list[Path]:
        blobs = self.root / "blobs"
        return sorted(p for p in blobs.glob("*/*") if p.is_file()) if blobs.is_dir() else []
