"""``flowlane token create RECIPE USER_ID`` prints a new API token; ``flowlane user password
RECIPE USER_ID`` sets a user's password (from a prompt, or the first line of stdin)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from flowlane.cli.durable import DbOption, RecipeArg, _fail
from flowlane.core.errors import FlowlaneError
from flowlane.runtime.durable import load_valid_recipe, open_durable, request_account
from flowlane.services import auth, users
from flowlane.services.account import Account

T = TypeVar("T")

token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
user_app = typer.Typer(help="Users: create one, set a password.", no_args_is_help=True)

UserArg = Annotated[str, typer.Argument(help="The user's id")]


def _with_account(recipe: RecipeArg, db: str | None, work: Callable[[Account], T]) -> T:
    try:
        store = open_durable(load_valid_recipe(recipe), db)
    except FlowlaneError as exc:
        raise _fail(exc) from exc
    try:
        account = request_account(store)
        box: list[T] = []
        account.attempt(lambda: box.append(work(account)))
        return box[-1]
    except FlowlaneError as exc:
        raise _fail(exc) from exc
    finally:
        store.close()


@token_app.command("create")
def token_create(
    recipe: RecipeArg,
    user_id: UserArg,
    name: Annotated[str, typer.Option("--name", help="What the token is for")] = "cli",
    db: DbOption = None,
) -> None:
    """Make an API token for the user and print it (shown this once; keep it secret). Use
    it as ``Authorization: Bearer <token>``."""
    made = _with_account(recipe, db, lambda acc: auth.create_token(acc, user_id, name, by=None))
    typer.echo(made.token)


@user_app.command("password")
def user_password(recipe: RecipeArg, user_id: UserArg, db: DbOption = None) -> None:
    """Set the user's password: asked twice on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    _with_account(recipe, db, lambda acc: auth.set_password(acc, user_id, password, by=None))
    typer.echo(f"password of {user_id} set")


@user_app.command("create")
def user_create(
    recipe: RecipeArg,
    user_id: UserArg,
    email: Annotated[str, typer.Option("--email", help="Login email")],
    name: Annotated[str | None, typer.Option("--name", help="Display name")] = None,
    role: Annotated[
        str, typer.Option("--role", help="owner, admin, manager, employee or client")
    ] = "owner",
    db: DbOption = None,
) -> None:
    """Create a user (the first owner of a new account, say); set a password with
    ``flowlane user password``."""
    data = {"email": email, "role": role, "name": name or user_id}
    _with_account(recipe, db, lambda acc: users.create_user(acc, data, user_id=user_id, by=None))
    typer.echo(f"user {user_id} ({role}) created")
