"""``flowlane serve`` as a newcomer runs it: a real server process on loopback serving the
public registration form, with its embedded worker, stopped by Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable, request_account

EVENTS = Path(__file__).resolve().parents[2] / "recipes" / "events"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_serve_answers_the_public_form_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    recipe = load_valid_recipe(EVENTS)
    store = open_durable(recipe, db)
    try:
        deploy(recipe, store)
        account = request_account(store, tmp_path / "data")
        with store.transaction():
            account.create_object(
                "user", {"name": "Mila", "email": "mila@events.example"}, object_id="mila"
            )
            account.create_object(
                "event",
                {
                    "title": "Spring meetup",
                    "kind": "offline",
                    "address": "Main st. 1",
                    "responsible": "mila",
                    "stage": "registration",
                },
                object_id="meetup",
            )
    finally:
        store.close()
    port = _free_port()
    env = {**os.environ, "FLOWLANE_DATA": str(tmp_path / "data"), "FLOWLANE_MAIL": "sink"}
    env.pop("FLOWLANE_PUBLIC_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "flowlane", "serve", str(EVENTS), "--db", db, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, page = _get(f"{base}/forms/registration?event=meetup")
                break
            except (ConnectionError, urllib.error.URLError):
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        assert status == 200 and "Register for the event" in page
        assert _get(f"{base}/forms/no-such-form")[0] == 404
        body = urllib.parse.urlencode(
            {"name": "Zoe", "email": "zoe@example.com", "consent": "on", "event": "meetup"}
        ).encode()
        with urllib.request.urlopen(
            f"{base}/forms/registration?event=meetup", body, timeout=5
        ) as r:
            assert r.status == 200
            assert "You are registered" in r.read().decode()
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert f"flowlane serves {EVENTS} at {base}" in out
    store = open_durable(recipe, db)
    try:
        (registration,) = store.objects_of_type("registration")
        record = store.get_object(registration)
        assert record is not None
        assert record.data["stage"] == "waiting"
        assert record.data["event_title"] == "Spring meetup"
    finally:
        store.close()
