"""Process administration on every store: the lifecycle (stop, activate, restart, approval and
editing), process info, the process list (search, tags), templates, event launch rules, and
``flowlane process list``. The scenarios of ``recipes/launches`` cover what a scenario can
express; these tests cover the rest."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from flowlane.cli.main import app
from flowlane.core.errors import Refused
from flowlane.model.definition import Definition
from flowlane.model.process import ProcessFile
from flowlane.model.recipe import Recipe, load_recipe, parse_process
from flowlane.model.scenario import ScenarioFile
from flowlane.model.validate import validate_process
from flowlane.model.yamlio import parse_text
from flowlane.runtime.simulate import Database, build_account
from flowlane.services.account import Account
from flowlane.services.admin import ProcessInfo

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "launches"
TZ = ZoneInfo("Europe/Moscow")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)


@pytest.fixture(scope="module")
def recipe() -> Recipe:
    return load_recipe(RECIPE)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def account(request: pytest.FixtureRequest, recipe: Recipe, tmp_path: Path) -> Iterator[Account]:
    """The launches recipe deployed at T0, with an owner, a manager and a client."""
    db = None
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'admin.db'}")
    elif request.param == "postgresql":
        db = Database(request.getfixturevalue("pg_database"))
    acc = build_account(recipe, T0, TZ, None, db)
    try:
        people = {
            "olga": {"name": "Olga", "email": "olga@shop.example", "role": "owner"},
            "boris": {"name": "Boris", "email": "boris@shop.example", "role": "manager"},
            "anna": {"name": "Anna", "email": "anna@example.com"},
        }

        def create_people() -> None:
            for uid, data in people.items():
                acc.create_object("user", data, object_id=uid)

        _do(acc, create_people)
        yield acc
    finally:
        acc.store.close()


def _do(account: Account, action: Callable[[], object]) -> None:
    def run() -> None:
        action()

    account.attempt(run)


def _at(account: Account, when: datetime) -> None:
    account.runner.now = when


def _edited(account: Account, key: str, **changes: object) -> Definition:
    spec = account.definition(key).spec
    return Definition.build(spec.model_copy(update=changes), source=f"{key}.yaml")


def _refused(account: Account, action: Callable[[], object], text: str) -> None:
    with pytest.raises(Refused, match=text):
        _do(account, action)


# ---- approval and editing -------------------------------------------------------------------


def test_an_approved_running_process_cannot_be_edited(account: Account) -> None:
    changed = _edited(account, "refund-approval", name="Refund it")
    # not yet approved: an edit is allowed (nothing runs)
    _do(account, lambda: account.deploy(changed))
    assert account.process_info("refund-approval").version == 2
    _do(account, lambda: account.approve("refund-approval", by="olga"))

    again = _edited(account, "refund-approval", name="Refund it now")
    _refused(
        account,
        lambda: account.deploy(again),
        "process refund-approval is approved and running: stop it before editing",
    )
    info = account.process_info("refund-approval")
    assert (info.version, info.name, info.approved) == (2, "Refund it", True)
    # deploying the same version again changes nothing and is no edit
    _do(account, lambda: account.deploy(_edited(account, "refund-approval")))
    assert account.process_info("refund-approval").version == 2

    _do(account, lambda: account.stop_process("refund-approval", by="olga"))
    _do(account, lambda: account.deploy(again))
    info = account.process_info("refund-approval")
    assert (info.version, info.name, info.status) == (3, "Refund it now", "stopped")
    assert not info.approved  # the edit must be approved again
    _refused(account, lambda: account.activate_process("refund-approval", by="olga"), "approved")
    _do(account, lambda: account.create_object("order", {"number": "A-1"}, object_id="o1"))
    _refused(account, lambda: account.start("refund-approval", "o1", by="olga"), "approved")
    _do(account, lambda: account.approve("refund-approval", by="olga"))
    info = account.process_info("refund-approval")
    assert (info.status, info.approved) == ("active", True)
    _do(account, lambda: account.start("refund-approval", "o1", by="olga"))
    assert [t.block for t in account.store.find_tasks(open_only=True)] == ["refund"]


def test_a_process_without_approval_is_edited_while_running(account: Account) -> None:
    _do(account, lambda: account.deploy(_edited(account, "welcome-order", tags=["sales"])))
    info = account.process_info("welcome-order")
    assert (info.version, info.tags, info.status) == (2, ("sales",), "active")


def test_the_object_type_of_a_process_never_changes(account: Account) -> None:
    _refused(
        account,
        lambda: account.deploy(_edited(account, "call-client", object="user")),
        "its object type cannot change",
    )
    assert account.process_info("call-client").object == "order"


# ---- the lifecycle ----------------------------------------------------------------------------


def test_process_info_follows_the_lifecycle(account: Account) -> None:
    info = account.process_info("call-client")
    assert info.key == "call-client"
    assert info.name == "Call the client about an order"
    assert (
        info.description
        == "A manager calls the order's client; started by hand from the order's card."
    )
    assert (info.object, info.version, info.launch) == ("order", 1, "manual")
    assert (info.status, info.approval, info.approved) == ("active", False, False)
    assert (info.started_at, info.stopped_at, info.last_launch) == (T0, None, None)
    assert (info.tags, info.template, info.draft) == (("sales", "calls"), True, False)
    # a process that must be approved has not started before the approval
    pending = account.process_info("refund-approval")
    assert (pending.approval, pending.approved, pending.started_at) == (True, False, None)

    _do(account, lambda: account.create_object("order", {"number": "A-1"}, object_id="o1"))
    _at(account, T0 + timedelta(minutes=5))
    _do(account, lambda: account.start("call-client", "o1", by="boris"))
    assert account.process_info("call-client").last_launch == T0 + timedelta(minutes=5)

    _at(account, T0 + timedelta(hours=1))
    _refused(account, lambda: account.stop_process("call-client", by="boris"), "may not stop")
    _do(account, lambda: account.stop_process("call-client", by="olga"))
    info = account.process_info("call-client")
    assert (info.status, info.started_at, info.stopped_at) == (
        "stopped",
        T0,
        T0 + timedelta(hours=1),
    )
    _refused(account, lambda: account.start("call-client", "o1", by="boris"), "stopped")

    _at(account, T0 + timedelta(hours=2))
    _do(account, lambda: account.activate_process("call-client", by="olga"))
    info = account.process_info("call-client")
    assert (info.status, info.started_at) == ("active", T0 + timedelta(hours=2))
    assert info.last_launch == T0 + timedelta(minutes=5)

    _at(account, T0 + timedelta(hours=3))
    _do(account, lambda: account.approve("refund-approval", by="olga"))
    assert account.process_info("refund-approval").started_at == T0 + timedelta(hours=3)


def test_restart_leaves_the_process_stopped(account: Account) -> None:
    _do(account, lambda: account.create_object("order", {"number": "A-1"}, object_id="o1"))
    _do(account, lambda: account.start("call-client", "o1", by="boris"))
    _do(account, lambda: account.restart("call-client", by="olga"))
    info = account.process_info("call-client")
    assert info.status == "stopped"
    assert account.store.find_tasks(process="call-client") == []
    assert [st.status for st in account.store.instances_of("call-client")] == ["cancelled"]
    _refused(account, lambda: account.start("call-client", "o1", by="boris"), "stopped")


def test_unknown_processes_are_refused(account: Account) -> None:
    for action in (
        lambda: account.stop_process("nowhere", by="olga"),
        lambda: account.activate_process("nowhere", by="olga"),
        lambda: account.process_info("nowhere"),
    ):
        _refused(account, action, "'nowhere' is not deployed")


PERIODIC = """
key: sweep
name: Sweep delayed orders
object: order
launch: {on: periodic, every: 10m, entry: "object.status == 'delayed'"}
blocks:
  start: {type: start, next: done}
  done: {type: end}
"""


def _spec(text: str) -> ProcessFile:
    spec, problems = parse_process(parse_text(text, source="p.yaml"), source="p.yaml")
    assert spec is not None, problems
    return spec


def test_stop_ends_the_periodic_checks_and_activate_schedules_them(account: Account) -> None:
    for key in account.store.process_keys():  # only this test's periodic chain is left
        d = account.store.definition(key)
        if d is not None and d.spec.launch is not None and d.spec.launch.on == "periodic":
            _do(account, lambda key=key: account.stop_process(key, by="olga"))
    assert account.store.next_timer(T0 + timedelta(days=365)) is None
    sweep = Definition.build(_spec(PERIODIC), source="sweep.yaml")
    _do(account, lambda: account.deploy(sweep))
    far = T0 + timedelta(days=1)
    timer = account.store.next_timer(far)
    assert timer is not None and (timer.kind, timer.process) == ("periodic", "sweep")
    assert timer.due_at == T0 + timedelta(minutes=10)

    _do(account, lambda: account.stop_process("sweep", by="olga"))
    assert account.store.next_timer(far) is None
    # a new version of a stopped process does not start the checks either
    _do(account, lambda: account.deploy(_edited(account, "sweep", name="Sweep")))
    assert account.store.next_timer(far) is None

    _at(account, T0 + timedelta(hours=1))
    _do(account, lambda: account.activate_process("sweep", by="olga"))
    timer = account.store.next_timer(far)
    assert timer is not None and timer.due_at == T0 + timedelta(hours=1, minutes=10)


# ---- list, search, tags, templates ----------------------------------------------------------


def _keys(infos: list[ProcessInfo]) -> list[str]:
    return [i.key for i in infos]


def test_list_search_by_name_or_key_and_filter_by_tag(account: Account) -> None:
    every = account.list_processes()
    assert _keys(every) == sorted(
        [
            "call-client",
            "help-keyword",
            "in-work-notice",
            "not-confirmed-notice",
            "price-keyword",
            "purchase-webhook",
            "recall-unpaid",
            "refund-approval",
            "renewal-reminder",
            "signup-form",
            "stalled-order",
            "support-email",
            "vip-review",
            "welcome-order",
        ]
    )
    assert _keys(account.list_processes(search="ORDER")) == [
        "call-client",
        "in-work-notice",
        "not-confirmed-notice",
        "recall-unpaid",
        "refund-approval",
        "stalled-order",
        "vip-review",
        "welcome-order",
    ]
    assert _keys(account.list_processes(search="  price-keyword ")) == ["price-keyword"]
    assert _keys(account.list_processes(search="price-key")) == []  # a key matches whole
    assert _keys(account.list_processes(search="nothing like it")) == []
    assert _keys(account.list_processes(tag="bot")) == ["help-keyword", "price-keyword"]
    assert _keys(account.list_processes(tag="Sales")) == [
        "call-client",
        "recall-unpaid",
        "stalled-order",
        "vip-review",
        "welcome-order",
    ]
    assert _keys(account.list_processes(search="order", tag="notices")) == [
        "in-work-notice",
        "not-confirmed-notice",
    ]
    assert _keys(account.list_processes(tag="nope")) == []


def test_templates_are_offered_only_for_their_object_type(account: Account) -> None:
    assert _keys(account.templates_for("order")) == ["call-client"]
    assert _keys(account.templates_for("user")) == ["signup-form"]
    assert _keys(account.templates_for("purchase")) == []
    # marking a process as template (a new version) offers it too
    _do(account, lambda: account.deploy(_edited(account, "welcome-order", template=True)))
    assert _keys(account.templates_for("order")) == ["call-client", "welcome-order"]


# ---- events -----------------------------------------------------------------------------------


def test_events_of_unknown_kinds_or_without_keys_are_refused(account: Account) -> None:
    _refused(account, lambda: account.fire_event("sms", None, {}), "event kind 'sms'")
    _refused(account, lambda: account.fire_event("form", None, {}), "a form event needs a key")
    _refused(account, lambda: account.fire_event("keyword", None, {}), "keyword event needs a key")
    _refused(account, lambda: account.fire_event("message", None, {"text": 5}), "data.text")


def test_keywords_match_whole_words_in_any_script(account: Account) -> None:
    launch = account.definition("price-keyword").spec.launch
    assert launch is not None
    price = _edited(
        account, "price-keyword", launch=launch.model_copy(update={"event": "keyword:Цена"})
    )
    _do(account, lambda: account.deploy(price))
    started: list[str] = []

    def fire(text: str) -> None:
        started[:] = account.fire_event(
            "message", None, {"email": "anna@example.com", "text": text}
        )

    _do(account, lambda: fire("Какая ЦЕНА?"))
    assert len(started) == 1
    _do(account, lambda: fire("Бесценно"))
    assert started == []


def _diagnostics(event: str) -> list[str]:
    spec = _spec(
        "key: e\nname: E\nobject: user\n"
        f"launch: {{on: event, event: {event!r}}}\n"
        "blocks:\n  start: {type: start, next: done}\n  done: {type: end}\n"
    )
    found = validate_process(
        spec, source="e.yaml", schema=None, templates=None, processes=None, in_recipe=False
    )
    return [d.message for d in found if d.severity == "error"]


def test_launch_event_names_are_checked() -> None:
    assert _diagnostics("keyword:price") == []
    assert _diagnostics("keyword:предзаказ") == []
    assert _diagnostics("email") == []
    assert _diagnostics("webhook:purchase") == []
    assert _diagnostics("keyword:") == [
        "launch.event: 'keyword:' is not form:<key>, webhook:<key>, email or keyword:<word>"
    ]
    assert _diagnostics("keyword:two words") == [
        "launch.event: 'keyword:two words': a keyword is one word "
        "(letters, digits, '_' and '-'; no spaces)"
    ]
    assert _diagnostics("webhook:a b") == [
        "launch.event: 'webhook:a b': the key after webhook: has no spaces"
    ]


def test_scenarios_have_stop_activate_and_message_events() -> None:
    parsed = ScenarioFile.model_validate(
        {
            "name": "s",
            "clock": "2026-03-02T10:00:00+03:00",
            "steps": [
                {"stop": {"process": "p", "by": "olga"}},
                {"activate": {"process": "p"}},
                {"event": {"kind": "message", "data": {"text": "price"}}},
            ],
        }
    )
    assert [s.kind for s in parsed.steps] == ["stop", "activate", "event"]


# ---- the command line -------------------------------------------------------------------------


def test_process_list_command(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["process", "list", str(RECIPE), "--tag", "bot"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "help-keyword\tv1\tuser\tevent\tactive\tsupport,bot\tOffer help",
        "price-keyword\tv1\tuser\tevent\tactive\tsupport,bot\t"
        "Send the price list to whoever asks for it",
        "2 process(es)",
    ]
    result = runner.invoke(app, ["process", "list", str(RECIPE), "--search", "refund"])
    assert result.output.splitlines()[0].split("\t")[4] == "active, not approved"

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert runner.invoke(app, ["deploy", str(RECIPE), "--db", db]).exit_code == 0
    result = runner.invoke(app, ["process", "list", str(RECIPE), "--db", db, "--search", "Call"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "call-client\tv1\torder\tmanual\tactive, template\tsales,calls\t"
        "Call the client about an order",
        "1 process(es)",
    ]
    result = runner.invoke(app, ["process", "list", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "not a recipe folder" in result.output
