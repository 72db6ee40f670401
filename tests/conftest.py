"""Shared fixtures."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.pg import (
    SHARED_ADMIN_URL,
    ClusterError,
    ThrowawayCluster,
    fresh_database,
    shared_server_available,
)
from tests.support import RunScenario, write_recipe

from flowlane.runtime.simulate import Database, SimResult, simulate


@pytest.fixture(autouse=True)
def _environment_unchanged() -> Iterator[None]:
    """No test leaves the process environment changed: later tests start workers and servers
    as subprocesses that inherit it (a leaked FLOWLANE_MAIL=sink once kept every later
    fault test's worker from sending). Tests that need a variable use ``monkeypatch``."""
    import os

    own = "PYTEST_CURRENT_TEST"  # pytest sets it for each phase
    before = {k: v for k, v in os.environ.items() if k != own}
    yield
    after = {k: v for k, v in os.environ.items() if k != own}
    if after != before:
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        for key in changed:
            if key in before:
                os.environ[key] = before[key]
            else:
                os.environ.pop(key, None)
        pytest.fail(f"the test changed the environment: {', '.join(changed)}")


@pytest.fixture
def run_scenario(tmp_path: Path) -> RunScenario:
    """``run_scenario(processes, scenario, objects=..., templates=...)`` -> SimResult.

    Runs the scenario three times: straight, with a JSON round trip of every instance between
    steps, and on the durable SQLite store; checks all give the same result and trace.
    """

    def run(processes: dict[str, str], scenario: str, **kw: Any) -> SimResult:
        root = write_recipe(tmp_path / "recipe", processes, **kw)
        path = tmp_path / "scenario.yaml"
        path.write_text(textwrap.dedent(scenario))
        straight = simulate(root, path)
        tripped = simulate(root, path, roundtrip=True)
        assert (straight.ok, straight.message) == (tripped.ok, tripped.message)
        assert straight.trace == tripped.trace
        db = tmp_path / "durable.db"
        db.unlink(missing_ok=True)
        durable = simulate(root, path, db=Database(f"sqlite:///{db}"))
        assert (durable.ok, durable.message) == (straight.ok, straight.message)
        assert durable.trace == straight.trace
        return straight

    return run


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """SQLAlchemy URL of a PostgreSQL maintenance database for this test session.

    The shared server when it answers; else a session-wide :class:`ThrowawayCluster`; else
    every test that needs it is skipped, with both reasons.
    """
    shared = shared_server_available()
    if shared is None:
        yield SHARED_ADMIN_URL
        return
    private = ThrowawayCluster.available()
    if private is None:
        cluster = ThrowawayCluster()
        try:
            cluster.start()
        except ClusterError as exc:
            private = str(exc)
        else:
            try:
                yield cluster.admin_url
            finally:
                cluster.cleanup()
            return
    pytest.skip(f"no PostgreSQL: {shared}; no throwaway cluster either: {private}")


@pytest.fixture
def pg_database(pg_admin_url: str) -> Iterator[str]:
    """URL (``postgresql://...``) of a fresh, empty database, dropped after the test."""
    with fresh_database(pg_admin_url) as url:
        yield url


@pytest.fixture
def throwaway_cluster() -> Iterator[ThrowawayCluster]:
    """A started private cluster (database ``test`` at ``.url``), removed after the test."""
    reason = ThrowawayCluster.available()
    if reason is not None:
        pytest.skip(f"no throwaway PostgreSQL cluster: {reason}")
    cluster = ThrowawayCluster()
    try:
        cluster.start()
    except ClusterError as exc:
        pytest.skip(f"throwaway PostgreSQL cluster does not start: {exc}")
    try:
        yield cluster
    finally:
        cluster.cleanup()
