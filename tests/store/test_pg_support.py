"""The PostgreSQL test helpers of ``tests.pg``: fresh databases and throwaway clusters."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from tests.pg import ClusterError, ThrowawayCluster, fresh_database, sqlalchemy_url


@contextmanager
def _engine(url: str, **kw: object) -> Iterator[Engine]:
    engine = create_engine(sqlalchemy_url(url), connect_args={"connect_timeout": 5}, **kw)
    try:
        yield engine
    finally:
        engine.dispose()


def _database_exists(admin_url: str, name: str) -> bool:
    with _engine(admin_url) as engine, engine.connect() as conn:
        found = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        ).first()
    return found is not None


def _public_tables(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        )
        return [row[0] for row in rows]


# -- fresh databases -------------------------------------------------------------------------


def test_fresh_database_is_empty_usable_and_dropped(pg_admin_url: str) -> None:
    with fresh_database(pg_admin_url) as url:
        assert url.startswith("postgresql://postgres@127.0.0.1:")
        name = url.rsplit("/", 1)[1]
        assert name.startswith("flowlane_test_")
        assert _database_exists(pg_admin_url, name)
        with _engine(url) as engine:
            assert _public_tables(engine) == []
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL)"))
                conn.execute(text("INSERT INTO t VALUES (1, 'one'), (2, 'two')"))
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT id, name FROM t ORDER BY id")).all()
            assert [tuple(row) for row in rows] == [(1, "one"), (2, "two")]
            # A connection still open at exit does not stop the drop (WITH (FORCE)).
            held = engine.connect()
            held.execute(text("SELECT 1"))
    assert not _database_exists(pg_admin_url, name)
    held.invalidate()
    held.close()


def test_fresh_databases_are_distinct(pg_admin_url: str) -> None:
    with fresh_database(pg_admin_url) as first, fresh_database(pg_admin_url) as second:
        assert first != second
        with _engine(first) as one, _engine(second) as two:
            with one.begin() as conn:
                conn.execute(text("CREATE TABLE only_in_first (id int)"))
            assert _public_tables(one) == ["only_in_first"]
            assert _public_tables(two) == []


def test_pg_database_fixture_gives_an_empty_database(pg_database: str) -> None:
    assert pg_database.startswith("postgresql://")
    with _engine(pg_database) as engine:
        assert _public_tables(engine) == []


# -- throwaway clusters ----------------------------------------------------------------------


def test_available_names_what_is_missing() -> None:
    reason = ThrowawayCluster.available("/nonexistent/bin")
    assert reason is not None
    assert "/nonexistent/bin/initdb" in reason


def test_url_before_start_is_an_error() -> None:
    with pytest.raises(ClusterError, match="start"):
        _ = ThrowawayCluster().url


@pytest.mark.slow
def test_cluster_restart_keeps_rows_and_pre_ping_reconnects(
    throwaway_cluster: ThrowawayCluster,
) -> None:
    cluster = throwaway_cluster
    assert cluster.running
    assert cluster.url == f"postgresql://postgres@127.0.0.1:{cluster.port}/test"
    with psycopg.connect(cluster.url, connect_timeout=5) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("test",)

    with (
        _engine(cluster.url, pool_pre_ping=True) as pinged,
        _engine(cluster.url) as unpinged,
    ):
        with pinged.begin() as conn:
            conn.execute(text("CREATE TABLE kept (id int PRIMARY KEY)"))
            conn.execute(text("INSERT INTO kept SELECT generate_series(1, 100)"))
        with unpinged.connect() as conn:  # leave a pooled connection in each engine
            conn.execute(text("SELECT 1"))
        old_pid = cluster.pid

        cluster.restart()

        assert cluster.running
        assert cluster.pid != old_pid
        with pinged.connect() as conn:  # the stale pooled connection is replaced
            assert conn.execute(text("SELECT count(*) FROM kept")).scalar_one() == 100
        # Without pre-ping the stale pooled connection fails: what pre-ping is for.
        with pytest.raises(OperationalError), unpinged.connect() as conn:
            conn.execute(text("SELECT 1"))


@pytest.mark.slow
def test_cluster_survives_kill_and_hosts_fresh_databases(
    throwaway_cluster: ThrowawayCluster,
) -> None:
    cluster = throwaway_cluster
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        # The cluster runs with synchronous_commit=off: a commit not yet flushed by the WAL
        # writer is lost by a kill. Commits that must survive one ask for it.
        conn.execute("SET synchronous_commit = on")
        conn.execute("CREATE TABLE t (id int)")
        conn.execute("INSERT INTO t VALUES (1)")

    cluster.kill()
    assert not cluster.running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.url, connect_timeout=2).close()

    cluster.start()  # crash recovery
    with psycopg.connect(cluster.url) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
    with fresh_database(cluster.admin_url) as url:
        assert url.startswith(f"postgresql://postgres@127.0.0.1:{cluster.port}/flowlane_test_")
        with _engine(url) as engine:
            assert _public_tables(engine) == []


@pytest.mark.slow
def test_cluster_cleanup_stops_it_and_removes_the_temp_dir() -> None:
    reason = ThrowawayCluster.available()
    if reason is not None:
        pytest.skip(reason)
    with ThrowawayCluster() as cluster:
        base, pid = cluster.base_dir, cluster.pid
        assert base is not None
        assert pid is not None
        assert (base / "data" / "PG_VERSION").exists()
    assert not base.exists()
    assert cluster.base_dir is None
    assert not cluster.running
    cluster.cleanup()  # idempotent


@pytest.mark.slow
def test_failed_start_reports_the_log_and_leaves_nothing() -> None:
    reason = ThrowawayCluster.available()
    if reason is not None:
        pytest.skip(reason)
    cluster = ThrowawayCluster(settings={"max_connections": "bogus"})
    with pytest.raises(ClusterError, match=r"(?s)pg_ctl start.*log tail.*max_connections"):
        cluster.start()
    assert cluster.base_dir is None
    assert not cluster.running
