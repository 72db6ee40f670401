"""``flowlane token create`` and ``flowlane user password``: then the API accepts them."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.api.conftest import API, RECIPE
from typer.testing import CliRunner

from flowlane.cli.main import app as cli


def test_a_cli_token_works_over_the_api(db_url: str, client: TestClient) -> None:
    result = CliRunner().invoke(
        cli, ["token", "create", str(RECIPE), "manager", "--name", "curl", "--db", db_url]
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token.startswith("flowlane_")
    me = client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["id"] == "manager"
    names = [
        t["name"]
        for t in client.get(f"{API}/tokens", headers={"Authorization": f"Bearer {token}"}).json()
    ]
    assert "curl" in names


def test_a_cli_token_for_nobody_is_refused(db_url: str) -> None:
    result = CliRunner().invoke(cli, ["token", "create", str(RECIPE), "ghost", "--db", db_url])
    assert result.exit_code == 1
    assert "ghost" in result.output


def test_a_password_set_on_the_cli_logs_in(db_url: str, client: TestClient) -> None:
    result = CliRunner().invoke(
        cli, ["user", "password", str(RECIPE), "client", "--db", db_url], input="brand new pw\n"
    )
    assert result.exit_code == 0, result.output
    login = {"email": "client@example.com", "password": "brand new pw"}
    assert client.post(f"{API}/auth/login", json=login).status_code == 200
    short = CliRunner().invoke(
        cli, ["user", "password", str(RECIPE), "client", "--db", db_url], input="short\n"
    )
    assert short.exit_code == 1 and "password" in short.output


def test_a_first_owner_is_created_on_the_cli(db_url: str, client: TestClient) -> None:
    made = CliRunner().invoke(
        cli,
        ["user", "create", str(RECIPE), "boss", "--email", "boss@example.com", "--db", db_url],
    )
    assert made.exit_code == 0, made.output
    CliRunner().invoke(
        cli, ["user", "password", str(RECIPE), "boss", "--db", db_url], input="boss password\n"
    )
    login = {"email": "boss@example.com", "password": "boss password"}
    body = client.post(f"{API}/auth/login", json=login).json()
    assert body["user"]["role"] == "owner"
    again = CliRunner().invoke(
        cli,
        ["user", "create", str(RECIPE), "boss2", "--email", "boss@example.com", "--db", db_url],
    )
    assert again.exit_code == 1 and "exists already" in again.output
