"""``flowlane demo`` (what ``make run`` runs): the demo account served with the UI; and
``--simulate RECIPE``: a recipe's traces, readably."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from flowlane.cli.main import app
from flowlane.runtime.demo import demo_recipe
from flowlane.runtime.durable import open_durable, request_account
from flowlane.services import tasklists
from flowlane.store.sql.store import SqlStore

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "order-processing"


def test_demo_prints_every_scenario_and_exits_0(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    # A fixed width: Rich sizes its tables from COLUMNS, which differs between terminals.
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["demo", "--simulate", str(RECIPE), "--db", db]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "demo.db").exists()
    assert "ran on the database" in result.output
    assert "flowlane demo" in result.output
    scenarios = sorted(p.stem for p in (RECIPE / "scenarios").glob("*.yaml"))
    for stem in scenarios:
        assert stem in result.output
    assert result.output.count("all expectations held") == len(scenarios)
    assert "task_opened" in result.output and "Mon 02 Mar 10:01:00" in result.output


def test_demo_in_memory_prints_the_same_tables(tmp_path: Path) -> None:
    env = {"COLUMNS": "200"}
    memory = CliRunner(env=env).invoke(app, ["demo", "--simulate", str(RECIPE)])
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    durable = CliRunner(env=env).invoke(app, ["demo", "--simulate", str(RECIPE), "--db", db])
    assert memory.exit_code == durable.exit_code == 0
    assert "ran on memory" in memory.output
    assert memory.output.rsplit("ran on", 1)[0] == durable.output.rsplit("ran on", 1)[0]


def test_demo_installs_the_account_once_and_reset_installs_it_anew(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'account.db'}"
    first = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["demo", "--db", db, "--no-serve"])
    assert first.exit_code == 0, first.output
    assert "demo account installed" in first.output
    assert "olga@demo.flowlane.dev" in first.output and "flowlane-demo" in first.output
    recipe = demo_recipe()
    store = open_durable(recipe, db)
    try:
        with store.transaction():
            orders = [store.get_object(oid) for oid in store.objects_of_type("order")]
            statuses = {o.data["status"] for o in orders if o is not None}
            assert statuses >= {"new", "paid", "cancelled", "in_work", "awaiting_payment"}
            assert _stage(store, "spring-meetup") == "registration"
            assert _stage(store, "launch-stream") == "preparation"  # no link: not ready
            assert len(store.objects_of_type("registration")) == 4
        homework = tasklists.client_tasks(request_account(store), "anna")
        assert [t.block for t in homework] == ["homework"]
    finally:
        store.close()
    again = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["demo", "--db", db, "--no-serve"])
    assert again.exit_code == 0 and "kept as it is" in again.output
    reset = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["demo", "--db", db, "--no-serve", "--reset"]
    )
    assert reset.exit_code == 0 and "demo account installed" in reset.output


def _stage(store: SqlStore, object_id: str) -> str:
    found = store.get_object(object_id)
    assert found is not None
    return str(found.data["stage"])


def test_demo_serves_the_ui_with_the_demo_account(tmp_path: Path) -> None:
    """What ``make run`` does: install, serve, log in as the owner in the UI, stop on Ctrl-C."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "FLOWLANE_DATA": str(tmp_path / "data")}
    for name in ("FLOWLANE_PUBLIC_URL", "FLOWLANE_SMTP_HOST", "FLOWLANE_MAIL"):
        env.pop(name, None)
    db = f"sqlite:///{tmp_path / 'served.db'}"
    server = subprocess.Popen(
        [sys.executable, "-m", "flowlane", "demo", "--db", db, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=5) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.get("/login")
                    break
                except httpx.TransportError:
                    assert server.poll() is None, server.communicate()
                    assert time.monotonic() < deadline, "the demo did not come up"
                    time.sleep(0.2)
            res = client.post(
                "/login",
                data={"email": "olga@demo.flowlane.dev", "password": "flowlane-demo"},
            )
            assert res.status_code == 303
            page = client.get("/account")
            assert page.status_code == 200 and "Olga Owner" in page.text
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    assert f"open {base}" in out, (out, err)
    assert server.returncode == 0, err
