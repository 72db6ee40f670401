"""What comes in from outside: webhook calls, emails, replies to task emails.

* A webhook ``POST /hooks/<key>?token=<t>`` (token: :func:`hook_token`) fires the event
  ``webhook:<key>``; with a ``text`` (or ``message``) field it is a bot-like message too and
  fires a ``message`` event, so ``keyword:<word>`` launches match (:func:`receive_hook`).
* An email (:func:`receive_email`) is a reply to a task's email when it is addressed to a
  reply address ``reply+<task id>.<user id>.<signature>@<domain>`` (:func:`reply_address`,
  signature purpose ``reply`` over the task and the user the email went to, 12 bytes): its
  text, quotes stripped, and its attachments become a comment of that user on the task,
  provided the ``From`` address is that user's (and no ``Authentication-Results`` header
  says DKIM or SPF failed for it). A delivery status notification naming one of our sent
  emails by its signed Message-ID (:func:`outbox_signature`) marks it bounced. Anything else
  fires the ``email`` event with the sender, the subject, the text and the ``Key: value``
  lines of the text as fields. A refused email gets a fixed ``550 5.7.1 Not accepted``; the
  reason is in the outcome's result (for the log), never in the SMTP reply.

Each message is handled once (``Store.claim_inbound``: an email by its Message-ID, a webhook
call by its ``Idempotency-Key``), in one transaction with what it sets off.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses, parseaddr
from typing import Any
from urllib.parse import quote

from flowlane.core.errors import Refused, ValidationError
from flowlane.services.account import Account
from flowlane.services.signing import sign, verify

PURPOSE = "reply"
SIGNATURE_BYTES = 12
PREFIX = "reply+"
MAX_LOCAL_PART = 64
"""The longest local part of an address (RFC 5321, section 4.5.3.1.1)."""
MESSAGE_ID_PURPOSE = "message-id"
NOT_ACCEPTED = "5.7.1 Not accepted"
HOOK_PURPOSE = "hook"
MAX_KEY = 300
"""Longest idempotency key or Message-ID kept (longer ones are hashed)."""

__all__ = [
    "EmailOutcome",
    "hook_token",
    "hook_url",
    "mail_domain",
    "outbox_signature",
    "receive_email",
    "receive_hook",
    "reply_address",
    "reply_target",
    "strip_quoted",
]


# ---- reply addresses and hook tokens ---------------------------------------------------------


_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def _reply_message(task_id: str, user_id: str) -> str:
    return f"{task_id}\n{user_id}"


def reply_address(secret: bytes, task_id: str, user_id: str, domain: str) -> str:
    """The address through which user ``user_id`` replies to an email about task
    ``task_id``: ``reply+<task id>.<user id>.<signature>@<domain>``, the signature over both
    ids. A ValidationError when the ids cannot be carried in a local part (characters
    outside RFC 5322 dot-atom, or longer than :data:`MAX_LOCAL_PART`)."""
    for what, ident in (("task id", task_id), ("user id", user_id)):
        if not _DOT_ATOM.fullmatch(ident):
            raise ValidationError(f"the {what} {ident!r} cannot be part of a reply address")
    signature = sign(secret, PURPOSE, _reply_message(task_id, user_id), length=SIGNATURE_BYTES)
    local = f"{PREFIX}{task_id}.{user_id}.{signature}"
    if len(local) > MAX_LOCAL_PART:
        raise ValidationError(
            f"the reply address of task {task_id} for {user_id} would be longer than "
            f"{MAX_LOCAL_PART} characters before the @"
        )
    return f"{local}@{domain}"


def is_reply_address(address: str) -> bool:
    return address.strip().strip("<>").lower().startswith(PREFIX)


def reply_target(secret: bytes, address: str) -> tuple[str, str] | None:
    """``(task id, user id)`` of a reply address whose signature is right; else None (not a
    reply address, or a forged or damaged one)."""
    if not is_reply_address(address):
        return None
    local = address.strip().strip("<>").rpartition("@")[0]
    ids, dot, signature = local[len(PREFIX) :].rpartition(".")
    if not dot or not signature:
        return None
    # Both ids may hold dots (``i7.t2``): try every split, the signature tells the right one.
    parts = ids.split(".")
    for n in range(1, len(parts)):
        task_id, user_id = ".".join(parts[:n]), ".".join(parts[n:])
        message = _reply_message(task_id, user_id)
        if verify(secret, PURPOSE, message, signature, length=SIGNATURE_BYTES):
            return task_id, user_id
    return None


def outbox_signature(secret: bytes, outbox_id: str) -> str:
    """The signature the Message-ID of the email with outbox id ``outbox_id`` carries (its
    last dot-separated part before the ``@``), so that a delivery report naming it is known
    to be about an email flowlane sent (``flowlane.runtime.mail.message_id``)."""
    return sign(secret, MESSAGE_ID_PURPOSE, outbox_id, length=SIGNATURE_BYTES)


def signed_outbox_id(secret: bytes, message_id: str, outbox_id: str | None = None) -> str | None:
    """The outbox id a Message-ID ``<...@flowlane>`` names, if its signature is right: the
    ``X-Flowlane-Outbox`` header's id ``outbox_id`` when given (the Message-ID must carry its
    signature), else the Message-ID's part before the signature. None otherwise."""
    text = message_id.strip()
    if not (text.startswith("<") and text.endswith(">")):
        return None
    left, at, domain = text[1:-1].rpartition("@")
    if not at or domain != "flowlane":
        return None
    named, dot, signature = left.rpartition(".")
    if not dot or not signature:
        return None
    candidate = outbox_id if outbox_id is not None else named
    if not candidate or not verify(
        secret, MESSAGE_ID_PURPOSE, candidate, signature, length=SIGNATURE_BYTES
    ):
        return None
    return candidate


def mail_domain(sender: str, env: Mapping[str, str] = os.environ) -> str:
    """The domain of reply addresses: ``FLOWLANE_MAIL_DOMAIN``, else the sender's domain."""
    configured = env.get("FLOWLANE_MAIL_DOMAIN", "").strip()
    if configured:
        return configured
    _local, at, domain = parseaddr(sender)[1].rpartition("@")
    return domain.strip() if at and domain.strip() else "localhost"


def hook_token(secret: bytes, key: str) -> str:
    """The token of the inbound webhook ``key`` (its URL carries it)."""
    return sign(secret, HOOK_PURPOSE, key)


def hook_token_ok(secret: bytes, key: str, token: str) -> bool:
    return bool(token) and verify(secret, HOOK_PURPOSE, key, token)


def hook_url(public_url: str, secret: bytes, key: str) -> str:
    """The full URL an outside service calls to fire ``webhook:<key>``."""
    base = public_url.rstrip("/")
    return f"{base}/hooks/{quote(key, safe='')}?token={hook_token(secret, key)}"


def _inbound_key(kind: str, ident: str) -> str:
    if len(ident) > MAX_KEY:
        ident = "sha256:" + hashlib.sha256(ident.encode()).hexdigest()
    return f"{kind}:{ident}"


# ---- webhooks ------------------------------------------------------------------------------


def message_text(data: Mapping[str, Any]) -> str | None:
    """The text of a bot-like message: the ``text`` or ``message`` field."""
    for name in ("text", "message"):
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def receive_hook(
    account: Account, key: str, data: dict[str, Any], idempotency_key: str | None = None
) -> dict[str, Any]:
    """Fire ``webhook:<key>`` (and a ``message`` event when the data has a text) in one
    transaction; ``{"started": [instance ids]}``. A call with an idempotency key seen before
    fires nothing and answers what the first call answered."""
    if not key.strip():
        raise Refused("a webhook needs a key")
    out: dict[str, Any] = {}

    def action() -> None:
        out.clear()
        claim = _inbound_key("webhook", f"{key}/{idempotency_key}") if idempotency_key else None
        if claim is not None:
            before = account.store.claim_inbound(claim, account.now)
            if before is not None:
                out.update(before)
                return
        started = account.fire_event("webhook", key, dict(data))
        text = message_text(data)
        if text is not None:
            # the webhook delivered its BPMN message already
            started += account.fire_event("message", key, {**data, "text": text}, bpmn=False)
        out["started"] = started
        if claim is not None:
            account.store.finish_inbound(claim, dict(out))

    account.attempt(action)
    return dict(out)


# ---- email ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmailOutcome:
    """What became of an email: the SMTP reply to give (``code`` 250, 550 or 451) and what
    was done (``result``: ``kind`` reply / bounce / event / ignored, and its details)."""

    code: int
    text: str
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def reply(self) -> str:
        return f"{self.code} {self.text}"


_QUOTE_HEADER = re.compile(r"^\s*(On\b.*|.*\bwrote:|-+\s*Original Message\s*-+)\s*$", re.I)
_FIELD = re.compile(r"^\s*([A-Za-z][A-Za-z0-9 _-]{0,40}?)\s*:\s*(\S.*?)\s*$")


def strip_quoted(text: str) -> str:
    """A reply's own text: everything before the quoted part (an ``On … wrote:`` line, an
    ``-----Original Message-----`` line) without ``>`` lines and the signature."""
    lines = text.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if line.rstrip() == "--":  # "-- " opens the signature
            break
        if _QUOTE_HEADER.match(line) and _is_quote_header(lines, i):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip()


def _is_quote_header(lines: list[str], i: int) -> bool:
    line = lines[i].strip()
    if "original message" in line.lower() or line.endswith("wrote:"):
        return True
    # "On Mon, 1 Jan 2026 at 10:00, Anna <anna@example.com>" / "wrote:" on the next line
    return (
        line.lower().startswith("on ") and i + 1 < len(lines) and lines[i + 1].strip() == ("wrote:")
    )


def body_fields(text: str) -> dict[str, str]:
    """The ``Key: value`` lines of a text as fields: the key in lower case with ``_`` for
    spaces and dashes (``Ticket type: VIP`` → ``ticket_type``); the first one of a key wins."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        found = _FIELD.match(line)
        if found is None or found.group(2).startswith("//"):  # a URL, not a field
            continue
        name = re.sub(r"[\s-]+", "_", found.group(1).strip().lower())
        fields.setdefault(name, found.group(2))
    return fields


def _plain_text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    text = content if isinstance(content, str) else ""
    if part.get_content_subtype() == "html":
        text = re.sub(r"<br\s*/?>|</p>", "\n", text, flags=re.I)
        text = re.sub(r"<[^>]+>", "", text)
    return text


def _attachments(msg: EmailMessage) -> list[tuple[str, bytes]]:
    files = []
    for part in msg.iter_attachments():
        if not isinstance(part, EmailMessage):
            continue
        name = part.get_filename()
        content = part.get_payload(decode=True)
        if name and isinstance(content, bytes):
            files.append((name, content))
    return files


def _sender(msg: EmailMessage) -> tuple[str, str]:
    name, address = parseaddr(str(msg.get("From", "")))
    return name, address.strip()


def _message_key(msg: EmailMessage, raw: bytes) -> str:
    mid = str(msg.get("Message-ID", "")).strip()
    return _inbound_key("email", mid or "sha256:" + hashlib.sha256(raw).hexdigest())


def _reply_targets(msg: EmailMessage, rcpt_tos: Sequence[str]) -> list[str]:
    headers = [str(v) for name in ("To", "Cc", "Delivered-To") for v in msg.get_all(name, [])]
    addresses = [*rcpt_tos, *(a for _n, a in getaddresses(headers))]
    return [a for a in addresses if is_reply_address(a)]


def receive_email(
    account: Account, raw: bytes, rcpt_tos: Sequence[str], secret: bytes
) -> EmailOutcome:
    """Handle one inbound email (the raw bytes as received; ``rcpt_tos``: the envelope's
    recipients), once per Message-ID, in one transaction. A refusal (a forged reply address,
    a sender who is not the user the reply address was made for, someone who may not
    comment) is a fixed 550 (the reason only in ``result``) and changes nothing."""
    msg = BytesParser(policy=default_policy).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    key = _message_key(msg, raw)
    targets = _reply_targets(msg, rcpt_tos)
    result: dict[str, Any] = {}

    def action() -> None:
        result.clear()
        before = account.store.claim_inbound(key, account.now)
        if before is not None:
            result.update(before, duplicate=True)
            return
        if targets:
            result.update(_reply(account, msg, targets, secret))
        elif _is_delivery_report(msg):
            result.update(_bounce(account, msg, secret))
        else:
            result.update(_event(account, msg))
        account.store.finish_inbound(key, dict(result))

    try:
        account.attempt(action)
    except Refused as exc:
        return EmailOutcome(550, NOT_ACCEPTED, {"kind": "refused", "reason": str(exc)})
    return EmailOutcome(250, "2.0.0 Message accepted", dict(result))


def _reply(
    account: Account, msg: EmailMessage, targets: list[str], secret: bytes
) -> dict[str, Any]:
    found = [t for a in targets if (t := reply_target(secret, a)) is not None]
    task_id, user = found[0] if found else (None, None)
    task = account.store.get_task(task_id) if task_id is not None else None
    if task is None or user is None:
        raise Refused("no such recipient: the reply address is not valid")
    _name, address = _sender(msg)
    record = account.store.get_object(user)
    email = str(record.data.get("email") or "") if record and record.type == "user" else ""
    if not address or address.lower() != email.strip().lower():
        raise Refused(
            f"sender {address or 'unknown'} is not the user {user} the reply address is for"
        )
    failed = _failed_authentication(msg, address)
    if failed:
        raise Refused(f"sender {address}: {failed} failed (Authentication-Results)")
    text = strip_quoted(_plain_text(msg))
    files = _attachments(msg)
    account.comment(task, text, by=user, files=files)
    return {"kind": "reply", "task": task.id, "by": user, "files": len(files)}


_AUTH_RESULT = re.compile(r"\b(dkim|spf|dmarc)\s*=\s*(fail|softfail|permerror)\b", re.I)
_AUTH_DOMAIN = re.compile(r"\b(?:header\.(?:d|i|from)|smtp\.mailfrom)\s*=\s*([^\s;()]+)", re.I)


def _failed_authentication(msg: EmailMessage, address: str) -> str | None:
    """``dkim`` / ``spf`` / ``dmarc`` when an ``Authentication-Results`` header (added by the
    receiving server, RFC 8601) says that check failed for the sender's domain; else None.
    Results naming another domain (``header.d=``, ``smtp.mailfrom=``, ...) are skipped."""
    domain = address.rpartition("@")[2].lower()
    for header in msg.get_all("Authentication-Results", []):
        for result in str(header).split(";")[1:]:
            found = _AUTH_RESULT.search(result)
            if found is None:
                continue
            named = [
                v.rpartition("@")[2].strip("<>\"'").rstrip(".").lower()
                for v in _AUTH_DOMAIN.findall(result)
            ]
            if not named or domain in named:
                return found.group(1).lower()
    return None


def _is_delivery_report(msg: EmailMessage) -> bool:
    return (
        msg.get_content_type() == "multipart/report"
        and str(msg.get_param("report-type", "")).lower() == "delivery-status"
    )


def _original_headers(msg: EmailMessage) -> list[Message]:
    found: list[Message] = []
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            for item in inner if isinstance(inner, list) else [inner]:
                if isinstance(item, Message):
                    found.append(item)
        elif ctype == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            found.append(HeaderParser(policy=default_policy).parsestr(text))
    return found


def _bounced_id(headers: Message, secret: bytes) -> str | None:
    """The outbox id of the original email a report quotes: only when its Message-ID carries
    our signature (a report anyone can write must not name any email it likes)."""
    outbox = str(headers.get("X-Flowlane-Outbox", "")).strip() or None
    return signed_outbox_id(secret, str(headers.get("Message-ID", "")), outbox)


def _diagnostic(msg: EmailMessage) -> str:
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            text = part.as_string()
            for name in ("Diagnostic-Code", "Status"):
                found = re.search(rf"^{name}:\s*(.+)$", text, re.M | re.I)
                if found:
                    return found.group(1).strip()
    return "the receiving server reported a permanent failure"


def _failed(msg: EmailMessage) -> bool:
    """A report of a failure (``Action: failed``), not of a delay or of a success."""
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            actions = re.findall(r"^Action:\s*(\S+)", part.as_string(), re.M | re.I)
            return not actions or any(a.lower() == "failed" for a in actions)
    return True


def _bounce(account: Account, msg: EmailMessage, secret: bytes) -> dict[str, Any]:
    ids = [i for h in _original_headers(msg) if (i := _bounced_id(h, secret)) is not None]
    if not ids or not _failed(msg):
        return {"kind": "ignored", "reason": "a delivery report about no email of ours"}
    reason = _diagnostic(msg)
    marked = [i for i in dict.fromkeys(ids) if account.store.mark_bounced(i, reason)]
    return {"kind": "bounce", "messages": marked, "reason": reason}


RESERVED = ("from", "subject", "text")
"""Fields of an email event that the ``Key: value`` lines of its text do not replace."""


def email_event_data(msg: EmailMessage) -> dict[str, Any]:
    """The data of the ``email`` event an email fires: ``from`` and ``email`` (the sender's
    address), ``name`` (the sender's name), ``subject``, ``text`` and the text's fields."""
    name, address = _sender(msg)
    text = strip_quoted(_plain_text(msg))
    data: dict[str, Any] = {
        "from": address,
        "email": address,
        "name": name or None,
        "subject": str(msg.get("Subject", "")),
        "text": text,
    }
    for k, v in body_fields(text).items():
        if k not in RESERVED:
            data[k] = v
    return {k: v for k, v in data.items() if v is not None}


def _event(account: Account, msg: EmailMessage) -> dict[str, Any]:
    started = account.fire_event("email", None, email_event_data(msg))
    return {"kind": "event", "started": started}
