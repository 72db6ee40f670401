"""Work on a task beyond answering it: attachments, process variables, hand-made tasks.

Every function checks everything first and refuses with a :class:`Refused` naming the
reason, changing nothing; :class:`~flowlane.services.account.Account` calls them (see its
methods of the same names). Attachment bytes go to the account's file store in two phases
(ADR 0008): staged during the request, promoted after the commit by ``Account.attempt``;
:func:`collect_orphans` deletes the files no task names any more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, get_args

from flowlane.core.duration import parse_duration
from flowlane.core.errors import Forbidden, Invalid, Refused, TooLarge, UnsupportedType
from flowlane.engine.state import InstanceState
from flowlane.engine.step import NO_SETTINGS
from flowlane.engine.taskrules import may_act
from flowlane.model.process import Priority
from flowlane.services import permissions
from flowlane.store.files import FileEntry
from flowlane.store.records import TaskRecord

if TYPE_CHECKING:
    from flowlane.services.account import Account

MANUAL_STATUS = "manual"
"""Status of the instance that holds one hand-made task (it runs no blocks)."""
MANUAL_BLOCK = "manual"
"""The ``block`` of a hand-made task."""
MAX_TITLE = 200
MAX_FILE_NAME = 200
MB = 1024 * 1024

DEFAULT_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "txt": "text/plain",
    "csv": "text/csv",
    "rtf": "application/rtf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "heic": "image/heic",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "zip": "application/zip",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "ogg": "audio/ogg",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
}
"""Extensions accepted by default, with the content type each stands for."""

SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "pdf": (b"%PDF",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpg": (b"\xff\xd8\xff",),
    "jpeg": (b"\xff\xd8\xff",),
    "gif": (b"GIF87a", b"GIF89a"),
    "zip": (b"PK",),
    "docx": (b"PK",),
    "xlsx": (b"PK",),
    "pptx": (b"PK",),
}
"""How the content of some types begins: a file whose bytes disagree is refused."""

EXECUTABLE = (b"MZ", b"\x7fELF", b"\xcf\xfa\xed\xfe", b"#!")
"""Beginnings of programs: refused whatever the file is called."""


@dataclass(frozen=True, slots=True)
class AttachmentLimits:
    """What a task accepts: files up to ``max_bytes`` with one of ``types``' extensions."""

    max_bytes: int = 10 * MB
    types: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TYPES))


def _size(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB // 10 else f"{n} bytes"


def check_file(
    filename: str, content: bytes, content_type: str | None, limits: AttachmentLimits
) -> tuple[str, str]:
    """The file's name (its last path part) and content type; refused naming the limit."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or name in (".", "..") or any(ord(c) < 32 for c in name):
        raise Invalid(f"attachment {filename[:40]!r}: not a usable file name", field="file")
    if len(name) > MAX_FILE_NAME:
        raise Invalid(
            f"attachment {name[:40]!r}: the name is over {MAX_FILE_NAME} characters", field="file"
        )
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    allowed = ", ".join(sorted(limits.types))
    if ext not in limits.types:
        what = f"type .{ext}" if ext else "a file without an extension"
        raise UnsupportedType(
            f"attachment {name!r}: {what} is not allowed (allowed: {allowed})", field="file"
        )
    if not content:
        raise Invalid(f"attachment {name!r}: the file is empty", field="file")
    if len(content) > limits.max_bytes:
        raise TooLarge(
            f"attachment {name!r}: {_size(len(content))} is over the size limit of "
            f"{_size(limits.max_bytes)}",
            field="file",
            limit=limits.max_bytes,
        )
    expected = limits.types[ext]
    if content_type is not None and content_type.split(";")[0].strip().lower() != expected:
        raise UnsupportedType(
            f"attachment {name!r}: content type {content_type!r} does not match "
            f".{ext} ({expected})",
            field="file",
        )
    if content.startswith(EXECUTABLE):
        raise UnsupportedType(f"attachment {name!r}: programs are not allowed", field="file")
    signatures = SIGNATURES.get(ext)
    if signatures and not content.startswith(signatures):
        raise UnsupportedType(
            f"attachment {name!r}: the content is not a .{ext} file", field="file"
        )
    return name, expected


def add_files(
    account: Account, task: TaskRecord, files: list[tuple[str, bytes]], by: str | None
) -> list[dict[str, Any]]:
    """Check every file, then stage them and note them on the task (with history lines)."""
    checked = [
        (*check_file(name, content, None, account.attachment_limits), content)
        for name, content in files
    ]
    return [_store_file(account, task, n, ct, c, by) for n, ct, c in checked]


def attach(
    account: Account,
    task: TaskRecord,
    filename: str,
    content: bytes,
    *,
    by: str | None,
    content_type: str | None = None,
) -> dict[str, Any]:
    name, ctype = check_file(filename, content, content_type, account.attachment_limits)
    return _store_file(account, task, name, ctype, content, by)


def _store_file(
    account: Account, task: TaskRecord, name: str, ctype: str, content: bytes, by: str | None
) -> dict[str, Any]:
    staged = account.files.stage(content)
    account.staged_files.append(staged)
    meta = {
        "id": f"{task.id}.a{len(task.attachments) + 1}",
        "name": name,
        "size": len(content),
        "content_type": ctype,
        "key": staged.key,
        "by": by,
        "at": account.now,
    }
    task.attachments.append(meta)
    task.history.append(
        {"at": account.now, "by": by, "what": "attachment", "attachment": meta["id"], "name": name}
    )
    return meta


# ---- process variables -------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return str(value)


def variable_specs(account: Account, task: TaskRecord) -> tuple[InstanceState, dict[str, Any]]:
    state = account.store.get_instance(task.instance_id)
    if state is None:
        raise Refused(f"task {task.id}: its instance {task.instance_id} does not exist")
    definition = account.store.version(state.process, state.version)
    return state, dict(definition.spec.variables)


def set_variables(
    account: Account, task: TaskRecord, values: dict[str, Any], by: str | None
) -> dict[str, Any]:
    state, specs = variable_specs(account, task)
    if state.status not in ("running", "incident", MANUAL_STATUS):
        raise Refused(f"instance {state.id} is {state.status}: its variables no longer change")
    if not values:
        raise Refused("no variables given")
    clean: dict[str, Any] = {}
    for name, raw in values.items():
        spec = specs.get(name)
        if spec is None:
            known = ", ".join(sorted(specs)) or "none"
            raise Refused(
                f"variable {name!r} does not exist in process {state.process} (variables: {known})"
            )
        if raw is None or raw == "":
            if spec.get("required"):
                raise Refused(f"variable {name!r} is required")
            clean[name] = None
            continue
        try:
            clean[name] = account.coerce_field(name, spec, raw)
        except Refused as exc:
            msg = str(exc)
            raise Refused(msg if repr(name) in msg else f"variable {name!r}: {msg}") from exc
    state.vars.update(clean)
    account.store.put_instance(state)
    task.history.append(
        {
            "at": account.now,
            "by": by,
            "what": "variables",
            "values": {k: _jsonable(v) for k, v in clean.items()},
        }
    )
    account.store.put_task(task)
    return clean


# ---- hand-made tasks ---------------------------------------------------------------------


def add_task(
    account: Account,
    process: str,
    *,
    object_id: str | None,
    title: str,
    text: str,
    assignee: str | None,
    priority: str | None,
    by: str | None,
) -> TaskRecord:
    """A task of the process put by hand, held by an instance of its own (ADR 0008)."""
    d = account.definition(process)
    settings = d.spec.task or NO_SETTINGS
    permissions.require_task_work(account, by, f"add tasks to {process}")
    if by is not None and not may_act(
        by,
        role=account.role_of(by),
        assignee=None,
        executors=settings.executors,
        supervisors=settings.supervisors,
        users_of=account.members_for(by),
    ):
        raise Forbidden(
            f"{by} may not add tasks to {process} (its executors, supervisors, admins, owners)"
        )
    if not title.strip():
        raise Refused("title: a task needs a title")
    if len(title) > MAX_TITLE:
        raise Refused(f"title: at most {MAX_TITLE} characters")
    if object_id is not None:
        account.get_object(object_id, expect_type=d.spec.object)
    if assignee is not None:
        account.role_of(assignee)
    levels = get_args(Priority)
    chosen = priority or settings.priority
    if chosen not in levels:
        raise Refused(f"priority {chosen!r} does not exist (priorities: {', '.join(levels)})")
    iid = account.store.new_instance_id()
    account.store.put_instance(
        InstanceState(
            id=iid,
            process=process,
            version=d.version,
            object_id=object_id,
            status=MANUAL_STATUS,
            started_at=account.now,
        )
    )
    reaction = settings.reaction
    task = TaskRecord(
        id=f"{iid}.t1",
        instance_id=iid,
        process=process,
        block=MANUAL_BLOCK,
        kind="task",
        object_id=object_id,
        title=title.strip(),
        text=text,
        assignee=assignee,
        options=(),
        fields={},
        workflow=None,
        waits=False,
        priority=chosen,
        reaction_s=int(parse_duration(reaction).total_seconds()) if reaction else None,
        created_at=account.now,
        history=[{"at": account.now, "by": by, "what": "created", "assignee": assignee}],
        inbox=settings.inbox,
    )
    account.store.put_task(task)
    account.store.count_task_created(process, MANUAL_BLOCK, object_id)
    account.runner.record(
        {
            "instance": iid,
            "process": process,
            "block": None,
            "event": "task_added",
            "details": {"task": task.id, "assignee": assignee, "by": by},
        }
    )
    return task


# ---- orphan files ------------------------------------------------------------------------

MIN_GRACE = timedelta(minutes=1)
"""The shortest grace period a clean-up accepts: no request runs longer than this."""


@dataclass(frozen=True, slots=True)
class Collected:
    """What a clean-up found: the files it deleted (or would delete: ``dry_run``), and how
    many files it kept because a task names them or because they are too young; ``rescued``:
    staged files it promoted (or would) because a task names their key and it is missing."""

    removed: list[FileEntry]
    referenced: int
    young: int
    dry_run: bool = False
    rescued: list[FileEntry] = field(default_factory=list)

    @property
    def freed(self) -> int:
        """Bytes of the removed files."""
        return sum(e.size for e in self.removed)


def referenced_keys(account: Account) -> set[str]:
    """The keys of every file a stored task names."""
    return {
        str(meta["key"])
        for task in account.store.find_tasks()
        for meta in task.attachments
        if meta.get("key")
    }


def collect_orphans(account: Account, older_than: timedelta, *, dry_run: bool = False) -> Collected:
    """Delete the attachment files no task names (their request was rolled back by a
    process that died before discarding them, or a restart deleted their tasks) and staged
    files left behind, if they were written more than ``older_than`` before ``account.now``.

    The grace period protects the requests that run meanwhile: their staged files are young,
    and a file a task comes to name after the tasks were read is written again when its
    request promotes it (a fresh time: kept; the file store sets a file aside before checking
    its time, so that promote never races the deletion). A staged file older than the grace
    period whose key a task names while the content file is missing belonged to a request
    that committed and died before promoting it: it is promoted now, not deleted. Runs
    outside any request: the files are listed first, then the tasks are read in a
    transaction of their own. Refused for a grace period under :data:`MIN_GRACE`.
    """
    if older_than < MIN_GRACE:
        raise Refused(
            f"older_than: at least {int(MIN_GRACE.total_seconds())} seconds, so that files "
            "of requests still running are kept"
        )
    cutoff = account.now - older_than
    listed = account.files.entries()
    with account.store.transaction():
        named = referenced_keys(account)
    removed: list[FileEntry] = []
    rescued: list[FileEntry] = []
    referenced = young = 0
    for entry in listed:
        if not entry.staged and entry.name in named:
            referenced += 1
        elif entry.modified > cutoff:
            young += 1
        elif entry.staged and entry.key in named and not account.files.exists(entry.key or ""):
            # committed, then the process died before promoting: the task's file is here
            if dry_run or account.files.rescue(entry):
                rescued.append(entry)
        elif dry_run or account.files.remove(entry, not_after=cutoff):
            removed.append(entry)
        else:
            young += 1  # written again since it was listed
    return Collected(removed, referenced, young, dry_run, rescued)
