"""Public forms (``forms/<key>.yaml``) and the forms behind signed links (S4, S5).

* :func:`form_view` / :func:`link_view`: what a page shows (inputs with labels, types and
  options; hidden values from the URL query). Opening a link applies its ``on_open`` as long
  as no submission has changed the object since the link was issued (so reopening an
  answered link never moves the object back).
* :func:`submit_form` / :func:`submit_link`: a submission, as one unit of work. A filled
  honeypot pretends success and changes nothing; too many submissions from one address
  (``rate_limit``, counted in ``form_submissions`` by a keyed hash of the address) are
  refused; a missing consent, a missing required value or a value that does not fit its
  field give visitor-facing errors per input and change no object. Otherwise the object is
  created (or, through a link, updated with the values and ``on_submit``), the single-use
  link is marked used and ``form:<key>`` fires with the data, all in one transaction.

The rate limit is counted and the submission noted in one transaction holding a lock on the
form and address (:meth:`~flowlane.store.base.Store.lock_key`), so parallel posts cannot all
pass; submissions refused for their values are noted too (``accepted`` false) and count
toward the limit, so invalid posts (probing object ids through hidden link inputs) are
limited as well. Posts over the limit are not noted: the count stays at the limit until the
window moves on. A link's opening and its submission lock the object's key, so an opening
never decides on a submission that is still being committed.

A link that cannot be used raises :class:`~flowlane.services.links.BadLink` (its message is
only "Oops, something went wrong") and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from flowlane.core.errors import NotFound, Refused
from flowlane.model.form import CONSENT, FormInput, FormSpec, duration_of, form_inputs
from flowlane.objects import coerce_value, value_problem
from flowlane.services.account import Account
from flowlane.services.links import BadLink, LinkToken, token_hash
from flowlane.services.signing import sign

log = logging.getLogger("flowlane.forms")

RATE_LIMITED = "Too many submissions from your address. Please try again later."
NOT_SAVED = "Your answer could not be saved. Please check it and try again."
CONSENT_MISSING = "Please give your consent to send the form."
REQUIRED = "Please fill this in."
BAD_HIDDEN = "This form was opened through a link that is not valid."
MAX_VALUE = 20_000
"""Longest value accepted in one input (characters)."""
_YES = frozenset({"on", "true", "yes", "1"})
_HTML_TYPES = {
    "string": "text",
    "text": "textarea",
    "integer": "number",
    "number": "number",
    "boolean": "checkbox",
    "date": "date",
    "datetime": "datetime-local",
    "email": "email",
    "phone": "tel",
    "enum": "select",
    "link": "select",
}


@dataclass(frozen=True)
class FieldView:
    """One visible input: ``widget`` is the HTML input type (``textarea``, ``select``,
    ``checkbox`` or an ``<input type>``); ``options`` the choices of a select."""

    name: str
    label: str
    widget: str
    field_type: str
    required: bool
    help: str | None = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class FormView:
    key: str
    title: str
    description: str | None
    fields: list[FieldView]
    hidden: dict[str, str]
    consent: str | None
    consent_required: bool
    honeypot: str
    object_id: str | None = None
    """The object a link form changes (None for a public form)."""


@dataclass(frozen=True)
class FormResult:
    """``ok``: the submission was taken (or a bot's was pretended to be). ``errors`` by input
    name (``""``: the form as a whole); ``rate_limited`` when the address sent too many."""

    ok: bool
    message: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    object_id: str | None = None
    rate_limited: bool = False


# ---- views -----------------------------------------------------------------------------------


def _form(account: Account, key: str) -> FormSpec:
    form = account.store.forms.get(key)
    if form is None:
        raise NotFound(f"form {key!r} does not exist")
    return form


def _options(account: Account, item: FormInput) -> tuple[str, ...]:
    spec = item.spec
    ref = spec.dictionary_ref
    if ref is not None:
        return tuple(account.store.schema.dictionaries.get(ref, ()))
    return tuple(spec.values or ())


def form_page(
    account: Account, key: str, form: FormSpec, hidden: Mapping[str, str] | None = None
) -> FormView:
    """What the page of ``form`` shows (no checks: see :func:`form_view`, :func:`link_view`)."""
    inputs = form_inputs(form, account.store.schema)
    return FormView(
        key=key,
        title=form.title or key,
        description=form.description,
        fields=[
            FieldView(
                name=i.name,
                label=i.label,
                widget=_HTML_TYPES.get(i.spec.type, "text"),
                field_type=i.spec.type,
                required=i.spec.required,
                help=i.help,
                options=_options(account, i),
            )
            for i in inputs
            if not i.hidden
        ],
        hidden=dict(hidden or {}),
        consent=form.consent.text if form.consent is not None else None,
        consent_required=form.consent is not None and form.consent.required,
        honeypot=form.honeypot,
    )


def form_view(account: Account, key: str, query: Mapping[str, str]) -> FormView:
    """The public form ``key`` with its hidden values taken from the URL ``query``.

    An update form is opened only through a signed link: :class:`NotFound` here."""
    form = _form(account, key)
    if form.mode == "update":
        raise NotFound(f"form {key!r} is opened only through a signed link")
    hidden = {
        i.name: str(query.get(i.query, ""))[:MAX_VALUE]
        for i in form_inputs(form, account.store.schema)
        if i.hidden
    }
    return form_page(account, key, form, hidden)


def _object_key(object_id: str) -> str:
    """The lock a link's opening and its submission take (:meth:`Store.lock_key`)."""
    return f"form-link:{object_id}"


def link_view(account: Account, token: str) -> FormView:
    """The form a signed link opens. Its ``on_open`` values are written (those that differ
    from the object's, so opening twice changes nothing more) unless a submission has changed
    the object since the link was issued: the link is checked again and the object read
    again inside the transaction, under the object's lock. :class:`BadLink` otherwise."""
    found, form, record = account.links.check(token, account.now)
    on_open = form.link_settings.on_open
    if on_open and on_open.set:
        wanted = on_open.set

        def run() -> None:
            account.store.lock_key(_object_key(found.object_id))
            _, _, current = account.links.check(token, account.now)
            answered = account.store.last_form_submission(current.id)
            if answered is not None and answered >= found.issued_at:
                return  # answered already: reopening must not move the object back
            changes = {k: v for k, v in wanted.items() if current.data.get(k) != v}
            if changes:
                account.update_object(current.id, changes)

        account.attempt(run)
    return replace(form_page(account, found.form, form), object_id=record.id)


# ---- submissions ---------------------------------------------------------------------------


def address_hash(account: Account, address: str) -> str:
    """A keyed hash of a visitor's address: counted, never stored in the clear."""
    return sign(account.links.secret, "form-address", address, length=16)


def _raw(item: FormInput, data: Mapping[str, str]) -> Any:
    value = data.get(item.name)
    if item.spec.type == "boolean" and not item.hidden:
        return str(value or "").strip().lower() in _YES
    if value is None or not str(value).strip():
        return None
    return str(value).strip() if item.spec.type != "text" else str(value)


def _check_values(
    account: Account, form: FormSpec, data: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The coerced values by input name, and the visitor-facing errors."""
    store = account.store
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for item in form_inputs(form, store.schema):
        raw = _raw(item, data)
        if isinstance(raw, str) and len(raw) > MAX_VALUE:
            errors[item.name] = f"Please keep this under {MAX_VALUE} characters."
            continue
        if raw is None:
            if item.spec.required:
                errors[item.name] = BAD_HIDDEN if item.hidden else REQUIRED
            continue
        problem = value_problem(item.spec, raw, schema=store.schema, tz=store.tz)
        if problem is not None:
            errors[item.name] = BAD_HIDDEN if item.hidden else _visitor_text(problem)
            continue
        value = coerce_value(item.spec, raw, schema=store.schema, tz=store.tz)
        target = item.spec.link_type
        if target is not None:
            linked = store.get_object(str(value))
            if linked is None or linked.type != target:
                errors[item.name] = BAD_HIDDEN if item.hidden else "Please choose a valid value."
                continue
        values[item.name] = value
    consent_given = str(data.get(CONSENT, "")).strip().lower() in _YES
    if form.consent is not None and form.consent.required and not consent_given:
        errors[CONSENT] = CONSENT_MISSING
    return values, errors


def _visitor_text(problem: str) -> str:
    """A coercion problem as a sentence for a visitor."""
    text = problem[:1].upper() + problem[1:]
    return text if text.endswith(".") else text + "."


def submit_form(
    account: Account,
    key: str,
    data: Mapping[str, str],
    *,
    address: str,
    link: str | None = None,
) -> FormResult:
    """Take a submission of form ``key`` from ``address``; through a signed ``link`` for an
    update form. See the module text for the rules."""
    form = _form(account, key)
    found: LinkToken | None = None
    if link is not None:
        found, _, _ = account.links.check(link, account.now)
        if found.form != key:
            log.warning("signed link refused: made for form %r, posted to %r", found.form, key)
            raise BadLink("form key changed")
    elif form.mode == "update":
        raise NotFound(f"form {key!r} is submitted only through a signed link")
    honey = str(data.get(form.honeypot, "")).strip()
    if honey:
        log.info("form %s: honeypot filled, submission dropped", key)
        return FormResult(ok=True, message=form.success)
    who = address_hash(account, address)
    since = account.now - duration_of(form.rate_limit.per)
    lock = f"form-submission:{key}:{who}"
    outcome: list[FormResult] = []

    def run() -> None:
        outcome.clear()  # a retried transaction starts over
        store = account.store
        store.lock_key(lock)  # parallel posts of one address queue here
        if store.count_form_submissions(key, who, since) >= form.rate_limit.count:
            log.info("form %s: rate limit reached for an address", key)
            outcome.append(FormResult(ok=False, message=RATE_LIMITED, rate_limited=True))
            return
        values, errors = _check_values(account, form, data)
        if errors:
            store.add_form_submission(key, who, account.now, None, accepted=False)
            outcome.append(FormResult(ok=False, message=NOT_SAVED, errors=errors))
            return
        made = _apply(account, key, form, values, found, link, who)
        outcome.append(FormResult(ok=True, message=form.success, object_id=made))

    try:
        account.attempt(run)
    except BadLink:
        raise
    except Refused as exc:
        log.warning("form %s: submission refused: %s", key, exc)

        def note_refused() -> None:
            account.store.lock_key(lock)
            account.store.add_form_submission(key, who, account.now, None, accepted=False)

        account.attempt(note_refused)
        return FormResult(ok=False, message=NOT_SAVED, errors={"": str(exc)})
    return outcome[-1]


def submit_link(
    account: Account, token: str, data: Mapping[str, str], *, address: str
) -> FormResult:
    """Submit the form a signed link opened (its key comes from the link)."""
    found, _, _ = account.links.check(token, account.now)
    return submit_form(account, found.form, data, address=address, link=token)


def _apply(
    account: Account,
    key: str,
    form: FormSpec,
    values: dict[str, Any],
    found: LinkToken | None,
    link: str | None,
    who: str,
) -> str | None:
    """The changes of one submission, inside its transaction."""
    inputs = {i.name: i for i in form_inputs(form, account.store.schema)}
    fields = {k: v for k, v in values.items() if inputs[k].to_object}
    object_id: str | None = None
    if found is not None and link is not None:
        object_id = found.object_id
        account.store.lock_key(_object_key(object_id))
        on_submit = form.link_settings.on_submit
        changes = {**fields, **(on_submit.set if on_submit else {})}
        if form.link_settings.single_use and not account.store.use_link(
            token_hash(link), object_id, account.now
        ):
            raise BadLink("already used (concurrently)")
        if changes:
            account.update_object(object_id, changes)
    elif form.type is not None:
        object_id = _existing_user(account, form, fields) or account.create_object(
            form.type, fields
        )
    account.store.add_form_submission(key, who, account.now, object_id)
    if form.event:
        data = dict(values)
        if form.consent is not None:
            data[CONSENT] = True
        if object_id is not None:
            data["object"] = object_id
        account.fire_event("form", key, data)
    return object_id


def _existing_user(account: Account, form: FormSpec, fields: dict[str, Any]) -> str | None:
    """A user form finds the user by email (as a form event does) and changes nothing of it."""
    if form.type != "user" or not fields.get("email"):
        return None
    return account.store.user_by_email(str(fields["email"]))
