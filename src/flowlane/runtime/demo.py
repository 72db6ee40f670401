"""The demo account ``flowlane demo`` installs: every scenario recipe in one account with people
and sample data, so that a newcomer who runs ``make run`` sees a living account.

:func:`install_demo` deploys the merged recipes (:data:`DEMO_RECIPES`: all of ``recipes/``
but ``launches``, whose processes only show launch kinds and would all fire on the demo's
orders) and, on an empty database, adds the people (an owner, an admin, two sales managers,
clients) and objects in many states: orders (new ones enter ``new-order`` and wait for
payment, others paid, cancelled, in work; a large one is announced to the sales heads),
homework handed out to clients, a purchase email waiting for the owner's check and a webinar
in three days, events at several stages with registrations, contracts with reviews waiting
for their managers, a birthday, a course about to end and a lesson not done. Everything goes
through the services, as a person would do it, so the processes start and run as they would
for real. Installing again on a database that has the demo's owner changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flowlane.core.errors import ValidationError
from flowlane.model.recipe import Recipe, merge_recipes
from flowlane.model.validate import validate_recipe
from flowlane.runtime.durable import deploy, request_account
from flowlane.services.account import Account
from flowlane.store.sql.store import SqlStore

DEMO_RECIPES = ("order-processing", "homework", "course", "events", "reviews", "examples")
"""The recipes the demo account runs (folders under ``recipes/``)."""
DEMO_PASSWORD = "flowlane-demo"
"""Every demo person's password (printed by ``flowlane demo``)."""
DOMAIN = "demo.flowlane.dev"

PEOPLE: tuple[tuple[str, dict[str, Any]], ...] = (
    ("olga", {"name": "Olga Owner", "role": "owner"}),
    ("adam", {"name": "Adam Admin", "role": "admin"}),
    ("maria", {"name": "Maria Sokolova", "role": "manager", "groups": ["sales"]}),
    ("boris", {"name": "Boris Ivanov", "role": "manager", "groups": ["sales"]}),
    (
        "anna",
        {
            "name": "Anna Petrova",
            "role": "client",
            "phone": "+79161234567",
            "groups": ["with-homework"],
        },
    ),
    (
        "pavel",
        {
            "name": "Pavel Smirnov",
            "role": "client",
            "phone": "+79031112233",
            "groups": ["with-homework"],
        },
    ),
    ("kira", {"name": "Kira Lebedeva", "role": "client", "groups": ["with-homework"]}),
    ("ivan", {"name": "Ivan Kuznetsov", "role": "client", "phone": "+79265554433"}),
)
"""Demo people: id -> fields (emails are ``<id>@demo.flowlane.dev``)."""


@dataclass
class DemoAccount:
    """What :func:`install_demo` did: whether it added the sample data, and who may log in."""

    installed: bool
    logins: list[tuple[str, str, str]] = field(default_factory=list)
    """(email, role, name) of every demo person."""


def recipes_folder() -> Path:
    """``recipes/`` of the source tree (``make run`` runs there), else of the working folder."""
    here = Path(__file__).resolve().parents[3] / "recipes"
    return here if here.is_dir() else Path("recipes")


def demo_recipe(folders: list[Path] | None = None) -> Recipe:
    """The demo's recipes merged into one, refused with every error when invalid."""
    roots = folders or [recipes_folder() / name for name in DEMO_RECIPES]
    recipe = merge_recipes(roots)
    errors = [p for p in recipe.problems + validate_recipe(recipe) if p.severity == "error"]
    if errors:
        raise ValidationError("\n".join(str(p) for p in errors))
    return recipe


def _email(uid: str) -> str:
    return f"{uid}@{DOMAIN}"


def logins() -> list[tuple[str, str, str]]:
    return [(_email(uid), str(data["role"]), str(data["name"])) for uid, data in PEOPLE]


def install_demo(recipe: Recipe, store: SqlStore, data: Path | None = None) -> DemoAccount:
    """Deploy the recipe and, when the demo's owner is not there yet, the sample data."""
    deploy(recipe, store)
    acc = request_account(store, data)
    with store.transaction():
        present = store.get_object("olga") is not None
    if present:
        return DemoAccount(False, logins())
    acc.attempt(lambda: _people(acc))
    if "new-order" in recipe.processes:
        acc.attempt(lambda: _orders(acc))
    if "homework" in recipe.processes:
        acc.attempt(lambda: _homework(acc))
    if "intake" in recipe.processes:
        acc.attempt(lambda: _events(acc))
    if "review-request" in recipe.processes:
        acc.attempt(lambda: _reviews(acc))
    if "webinar" in recipe.processes:
        acc.attempt(lambda: _course(acc))
    if "large-order-alert" in recipe.processes:
        acc.attempt(lambda: _examples(acc))
    return DemoAccount(True, logins())


def _people(acc: Account) -> None:
    for uid, data in PEOPLE:
        fields = {**data, "email": _email(uid), "password": DEMO_PASSWORD}
        acc.create_object("user", fields, object_id=uid)


ORDERS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("A-1001", {"client": "anna", "amount": 12000, "status": "new"}),
    ("A-1002", {"client": "pavel", "amount": 4900, "status": "new"}),
    ("A-1003", {"client": "kira", "amount": 29900, "status": "new"}),
    ("A-1004", {"client": "ivan", "amount": 7500, "status": "new", "paid_amount": 2500}),
    ("A-0995", {"client": "anna", "amount": 3900, "status": "paid", "paid_amount": 3900}),
    (
        "A-0996",
        {
            "client": "pavel",
            "amount": 15000,
            "status": "cancelled",
            "cancel_reason": "too_expensive",
        },
    ),
    ("A-0997", {"client": "ivan", "amount": 8900, "status": "in_work", "manager": "maria"}),
    (
        "A-0998",
        {"client": "kira", "amount": 5400, "status": "awaiting_payment", "manager": "boris"},
    ),
)


def _orders(acc: Account) -> None:
    for number, data in ORDERS:
        acc.create_object("order", {"number": number, **data}, object_id=number.lower())


HOMEWORK = (
    ("anna", "Funnels", "Draw the sales funnel of your own school and mark where people leave."),
    ("pavel", "Landing page", "Write the first screen of a landing page for your course."),
    ("kira", "Email chain", "Plan three welcome emails for new students."),
)


def _homework(acc: Account) -> None:
    for uid, topic, text in HOMEWORK:
        acc.start("homework", uid, {"topic": topic, "homework": text}, by="olga")


def _events(acc: Account) -> None:
    now = acc.now
    day = timedelta(days=1)

    def at(days: int, hour: int) -> str:
        moment: datetime = (now + days * day).astimezone(acc.store.tz)
        return moment.replace(hour=hour, minute=0, second=0, microsecond=0).isoformat()

    events = (
        ("spring-meetup", "Spring meetup for course authors", "offline", 12, "Main st. 1, Moscow"),
        ("webinar-funnels", "Webinar: funnels that sell", "online", 5, None),
        ("open-day", "Open day at the studio", "hybrid", 20, "Studio, Tverskaya 7"),
        ("launch-stream", "Product launch stream", "online", 30, None),
    )
    for eid, title, kind, days, address in events:
        fields: dict[str, Any] = {
            "title": title,
            "kind": kind,
            "start": at(days, 18),
            "end": at(days, 20),
            "seats": 40,
            "responsible": "maria",
        }
        if address:
            fields["address"] = address
        if kind != "offline" and eid != "launch-stream":  # the stream has no link yet
            fields["online_link"] = f"https://meet.example/{eid}"
        acc.create_object("event", fields, object_id=eid)  # intake: to preparation
    for eid in ("spring-meetup", "webinar-funnels"):
        acc.move_stage(eid, "registration", by="maria")
    guests = (
        ("anna", "Anna Petrova", "spring-meetup", "waiting"),
        ("pavel", "Pavel Smirnov", "spring-meetup", "waiting"),
        ("kira", "Kira Lebedeva", "spring-meetup", "new"),
        ("ivan", "Ivan Kuznetsov", "webinar-funnels", "waiting"),
    )
    titles = {e[0]: e[1] for e in events}
    # entering `waiting` counts a registration on its event and schedules its reminders
    for n, (uid, name, eid, stage) in enumerate(guests, start=1):
        acc.create_object(
            "registration",
            {
                "event": eid,
                "name": name,
                "email": _email(uid),
                "event_title": titles[eid],
                "stage": stage,
            },
            object_id=f"reg-{n}",
        )


DEPARTMENTS = (
    ("dev", "Development", "adam", "review-development"),
    ("promo", "Promotion", "boris", "review-promotion"),
    ("support", "Support", "maria", "review-support"),
)
CONTRACTS: tuple[tuple[str, dict[str, Any]], ...] = (
    # due: a subscription in work signed 45 days ago, never reviewed
    (
        "C-101",
        {
            "customer": "Petrova Studio",
            "billing": "subscription",
            "status": "in_work",
            "service": "site_support",
            "department": "support",
            "manager": "maria",
            "signed": -45,
            "client_emails": ["anna@demo.flowlane.dev", "office@petrova.example"],
        },
    ),
    # due: a one-off site finished ten days ago
    (
        "C-102",
        {
            "customer": "Smirnov & Co",
            "billing": "one_off",
            "status": "done",
            "service": "site_development",
            "department": "dev",
            "manager": "boris",
            "signed": -120,
            "finished": -10,
            "client_emails": ["pavel@demo.flowlane.dev"],
        },
    ),
    # not due: reviewed 12 days ago; new; an excluded service
    (
        "C-103",
        {
            "customer": "Lebedeva Yoga",
            "billing": "subscription",
            "status": "in_work",
            "service": "seo",
            "department": "promo",
            "manager": "boris",
            "signed": -200,
            "last_review": -12,
            "client_emails": ["kira@demo.flowlane.dev"],
        },
    ),
    (
        "C-104",
        {
            "customer": "Kuznetsov Garage",
            "billing": "one_off",
            "status": "new",
            "service": "context_ads",
            "department": "promo",
            "manager": "maria",
            "signed": -2,
            "client_emails": ["ivan@demo.flowlane.dev"],
        },
    ),
    (
        "C-105",
        {
            "customer": "Petrova Studio",
            "billing": "subscription",
            "status": "in_work",
            "service": "hosting",
            "department": "support",
            "manager": "maria",
            "signed": -300,
            "client_emails": ["anna@demo.flowlane.dev"],
        },
    ),
)
"""Contracts of the reviews recipe; dates are days from today."""


def _reviews(acc: Account) -> None:
    """Departments with their heads, Olga among the directors, contracts in every state; the
    two that are due get their review now (as the daily check would), which asks their
    managers where to send the request."""
    acc.update_object("olga", {"groups": ["directors"]})
    for did, name, head, form in DEPARTMENTS:
        acc.create_object("department", {"name": name, "head": head, "form": form}, object_id=did)
    today = acc.now.astimezone(acc.store.tz).date()
    for number, raw in CONTRACTS:
        fields = {
            k: (today + timedelta(days=v)).isoformat()
            if isinstance(v, int) and k != "amount"
            else v
            for k, v in raw.items()
        }
        acc.create_object("contract", {"number": number, **fields}, object_id=number.lower())
    for cid in ("c-101", "c-102"):
        contract = acc.get_object(cid).data
        acc.create_object(
            "review",
            {
                "contract": cid,
                "status": "new",
                "department": contract["department"],
                "manager": contract["manager"],
                "service": contract["service"],
            },
        )
        acc.update_object(cid, {"last_review": today.isoformat()})


def _course(acc: Account) -> None:
    """A purchase email waiting for Olga's check (S1.1) and a webinar in three days whose
    reminder goes out the day before and whose homework follows an hour after it (S1.2)."""
    acc.fire_event(
        "email",
        None,
        {
            "from": "payments@shop.example",
            "subject": "New order 1042",
            "text": "Name: Sergey Volkov\nEmail: sergey@demo.flowlane.dev\nTicket: watch-only",
            "name": "Sergey Volkov",
            "email": "sergey@demo.flowlane.dev",
            "ticket": "watch-only",
        },
    )
    start = (acc.now + timedelta(days=3)).astimezone(acc.store.tz)
    acc.start(
        "webinar",
        None,
        {
            "webinar_at": start.replace(hour=19, minute=0, second=0, microsecond=0).isoformat(),
            "topic": "Sales funnels",
            "link": "https://meet.example/sales-funnels",
            "homework": "Draw the funnel of your own school and mark where people leave.",
        },
        by="olga",
    )


def _examples(acc: Account) -> None:
    """S6: Ivan's birthday is today (the hourly check gives him a discount), Pavel's yoga
    course ends in five days (reminded two days from now), Anna has not done lesson 3 (her
    curator Adam hears in ten days), and a large order is announced to Boris, a sales head."""
    local = acc.now.astimezone(acc.store.tz)
    acc.update_object("boris", {"groups": ["sales", "sales-heads"]})
    acc.update_object("adam", {"groups": ["curators"]})
    acc.update_object("ivan", {"birthday": local.date().replace(year=1991).isoformat()})
    acc.create_object(
        "purchase",
        {
            "number": "P-301",
            "status": "active",
            "offer": "Yoga course, 3 months",
            "client": "pavel",
            "manager": "maria",
            "starts": (local - timedelta(days=85)).isoformat(),
            "expires": (local + timedelta(days=5)).isoformat(),
        },
        object_id="p-301",
    )
    acc.create_object(
        "lesson_progress",
        {"student": "anna", "lesson": "Lesson 3: Funnels in practice", "curator": "adam"},
        object_id="anna-lesson-3",
    )
    acc.create_object(
        "order",
        {"number": "A-1005", "client": "kira", "amount": 120000, "status": "new"},
        object_id="a-1005",
    )
