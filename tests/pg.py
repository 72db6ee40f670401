"""PostgreSQL for tests and benchmarks: fresh databases and throwaway clusters.

Plain module, no pytest: ``bench/`` scripts import it too. The fixtures built on it live in
``tests/conftest.py``.

* :func:`shared_server_available` – does the shared server (``127.0.0.1:5432``) answer?
* :func:`fresh_database` – a new, empty database on a server, dropped afterwards.
* :class:`ThrowawayCluster` – a private server (``initdb`` + ``pg_ctl``) in a temp dir, for
  tests that stop, restart or kill the server. Never do that to the shared server.

URLs handed out use the plain ``postgresql://`` scheme (flowlane maps it to psycopg 3);
:func:`sqlalchemy_url` does that mapping for code that calls ``create_engine`` itself.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType

import psycopg
from sqlalchemy import create_engine, make_url, text

SHARED_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
"""The shared server's maintenance database (trust auth), as a SQLAlchemy URL."""

PG_BIN = Path("/usr/lib/postgresql/15/bin")
"""Where ``initdb``, ``pg_ctl`` and ``postgres`` live (Debian package ``postgresql-15``)."""

OPERATION_TIMEOUT = 30.0
"""Upper bound, in seconds, for any one cluster operation (initdb, start, stop, ...)."""

DATABASE_PREFIX = "flowlane_test_"


class ClusterError(RuntimeError):
    """A throwaway cluster could not be created, started or stopped."""


def sqlalchemy_url(url: str) -> str:
    """``url`` with ``postgresql://`` / ``postgres://`` mapped to the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def libpq_url(url: str) -> str:
    """``url`` as libpq / ``psycopg.connect`` takes it (no ``+driver`` in the scheme)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def shared_server_available(timeout: float = 2.0, url: str = SHARED_ADMIN_URL) -> str | None:
    """None when the server at ``url`` accepts a connection, else why not."""
    return _server_answers(url, timeout)


def _server_answers(url: str, timeout: float) -> str | None:
    parsed = make_url(url)
    host, port = parsed.host or "127.0.0.1", parsed.port or 5432
    # A plain TCP probe first: fails fast (refused) and honours sub-second timeouts.
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return f"PostgreSQL at {host}:{port} does not answer: {exc}"
    try:
        # libpq's connect_timeout is whole seconds (and at least 2).
        with psycopg.connect(
            libpq_url(url), connect_timeout=max(2, round(timeout)), autocommit=True
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {host}:{port} refuses a connection: {exc}".strip()
    return None


@contextmanager
def fresh_database(admin_url: str = SHARED_ADMIN_URL) -> Iterator[str]:
    """A new, empty database on the server of ``admin_url``, dropped (forcibly) at exit.

    Yields its URL as ``postgresql://user@host:port/flowlane_test_<hex>``. Connections the
    caller left open are terminated by the drop; engines the caller made are its to dispose.
    """
    name = f"{DATABASE_PREFIX}{uuid.uuid4().hex}"
    admin = create_engine(
        sqlalchemy_url(admin_url),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 5},
    )
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield libpq_url(admin.url.set(database=name).render_as_string(hide_password=False))
        finally:
            _drop_database(admin_url, name)
    finally:
        admin.dispose()


def _drop_database(admin_url: str, name: str) -> None:
    # A new engine: the caller's test may have restarted the server meanwhile.
    admin = create_engine(
        sqlalchemy_url(admin_url),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 5},
    )
    try:
        with admin.connect() as conn:
            version = conn.dialect.server_version_info or (0,)
            if version >= (13,):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        admin.dispose()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is as good as gone
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[-1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


_LIVE_CLUSTERS: weakref.WeakSet[ThrowawayCluster] = weakref.WeakSet()


@atexit.register
def _cleanup_leftovers() -> None:
    for cluster in list(_LIVE_CLUSTERS):
        with suppress(Exception):
            cluster.cleanup()


class ThrowawayCluster:
    """A private PostgreSQL 15 cluster in a temp dir, on a free port of 127.0.0.1.

    ``start()`` runs initdb and starts the server (fsync, synchronous_commit and
    full_page_writes off: fast; see :meth:`kill`) and creates database ``test``; ``url``
    points at it. ``restart()``, ``stop()``, ``kill()`` change the server's state; the data
    directory and port stay the same until ``cleanup()`` removes everything. As root, the
    binaries run as user ``postgres`` through ``runuser``. Use it as a context manager, or
    call ``cleanup()``; leftovers are cleaned up at interpreter exit.
    """

    USER = "postgres"

    def __init__(
        self,
        bin_dir: Path | str = PG_BIN,
        timeout: float = OPERATION_TIMEOUT,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        """``settings``: extra server settings (``-c name=value``), e.g. max_connections;
        they come last, so they also override the speed settings (``synchronous_commit``)."""
        self.bin_dir = Path(bin_dir)
        self.timeout = timeout
        self.settings = dict(settings or {})
        self.base_dir: Path | None = None
        self.port: int | None = None
        self._pid: int | None = None

    # -- availability -------------------------------------------------------------------

    @classmethod
    def available(cls, bin_dir: Path | str = PG_BIN) -> str | None:
        """None when a cluster can be made here, else why not."""
        bin_path = Path(bin_dir)
        for tool in ("initdb", "pg_ctl", "postgres"):
            if not os.access(bin_path / tool, os.X_OK):
                return f"{bin_path / tool} not found (install postgresql-15)"
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                return "running as root and `runuser` is not installed"
            try:
                pwd.getpwnam(cls.USER)
            except KeyError:
                return f"running as root and there is no user {cls.USER!r}"
        return None

    # -- paths and state ----------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._base / "data"

    @property
    def log_file(self) -> Path:
        return self._base / "postgres.log"

    @property
    def _base(self) -> Path:
        if self.base_dir is None:
            raise ClusterError("cluster not created: call start() first")
        return self.base_dir

    @property
    def admin_url(self) -> str:
        """SQLAlchemy URL of the maintenance database (for :func:`fresh_database`)."""
        return f"postgresql+psycopg://{self.USER}@127.0.0.1:{self._port}/postgres"

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:<port>/test``."""
        return f"postgresql://{self.USER}@127.0.0.1:{self._port}/test"

    @property
    def _port(self) -> int:
        if self.port is None:
            raise ClusterError("cluster not started: call start() first")
        return self.port

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        return self._pid if self.running else None

    @property
    def running(self) -> bool:
        return self._pid is not None and _pid_alive(self._pid)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> ThrowawayCluster:
        """initdb (first time only), start the server, wait until it accepts connections."""
        if self.running:
            return self
        if self.base_dir is None:
            reason = self.available(self.bin_dir)
            if reason:
                raise ClusterError(f"cannot create a PostgreSQL cluster: {reason}")
            _LIVE_CLUSTERS.add(self)
            try:
                self._create()
                self._first_start()
            except BaseException:
                self.cleanup()  # the error carries the log tail; leave nothing behind
                raise
        else:
            self._start_server()
        return self

    def _first_start(self) -> None:
        for attempt in range(3):  # a free port may be taken before the server binds it
            self.port = _free_port()
            try:
                self._start_server()
                break
            except ClusterError:
                if attempt == 2 or "could not bind" not in self._log_tail():
                    raise
        with psycopg.connect(self._libpq("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE test")

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m <mode>`` (smart, fast or immediate) and wait until it is down."""
        if not self.running:
            self._pid = None
            return
        result = self._run(
            self._bin("pg_ctl"),
            "stop",
            "-D",
            str(self.data_dir),
            "-m",
            mode,
            "-w",
            "-t",
            str(round(self.timeout)),
        )
        if result.returncode != 0 and self.running:
            raise ClusterError(self._failure("pg_ctl stop failed", result))
        self._wait_gone(self._pid)
        self._pid = None

    def restart(self, mode: str = "fast") -> None:
        """Stop (if running), then start the same data dir on the same port."""
        self.stop(mode)
        self.start()

    def kill(self) -> None:
        """SIGKILL the postmaster and its children: a crash. ``start()`` then recovers.

        The cluster runs with ``synchronous_commit=off``, so commits of the last few hundred
        ms may be lost by a kill. Tests of durability across a kill need
        ``ThrowawayCluster(settings={"synchronous_commit": "on"})`` (or ``SET`` it per
        session). ``fsync=off`` does not matter here: the OS page cache survives a kill.
        """
        pid = self._pid
        if pid is None or not self.running:
            return
        victims = [pid, *_children(pid)]
        for victim in victims:
            with suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        for victim in victims:
            self._wait_gone(victim)
        self._pid = None
        # Killed processes may linger as zombies until reaped, and the postmaster takes a
        # zombie's pid in its lock files for a live server: remove the stale lock files.
        port = self._port
        for stale in (
            self.data_dir / "postmaster.pid",
            self._base / f".s.PGSQL.{port}.lock",
            self._base / f".s.PGSQL.{port}",
        ):
            stale.unlink(missing_ok=True)

    def cleanup(self) -> None:
        """Stop the server if it runs (killing it if it will not stop) and remove the dir."""
        if self.running:
            try:
                self.stop("immediate")
            except ClusterError:
                self.kill()
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None
        _LIVE_CLUSTERS.discard(self)

    def __enter__(self) -> ThrowawayCluster:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ThrowawayCluster port={self.port} dir={self.base_dir} {state}>"

    # -- internals ----------------------------------------------------------------------

    def _create(self) -> None:
        base = Path(tempfile.mkdtemp(prefix="flowlane-pg-"))
        self.base_dir = base
        if os.geteuid() == 0:
            user = pwd.getpwnam(self.USER)
            os.chown(base, user.pw_uid, user.pw_gid)
        result = self._run(
            self._bin("initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            self.USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        if result.returncode != 0:
            raise ClusterError(self._failure("initdb failed", result))

    def _start_server(self) -> None:
        base = shlex.quote(str(self._base))
        options = [
            f"-p {self._port}",
            "-h 127.0.0.1",
            f"-k {base}",
            "-c fsync=off",
            "-c synchronous_commit=off",
            "-c full_page_writes=off",
            f"-c unix_socket_directories={base}",
        ]
        # pg_ctl hands the options to /bin/sh: quote them.
        options += [f"-c {shlex.quote(f'{k}={v}')}" for k, v in self.settings.items()]
        result = self._run(
            self._bin("pg_ctl"),
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(round(self.timeout)),
            "-o",
            " ".join(options),
        )
        self._pid = self._read_pid()
        if result.returncode != 0:
            self.kill()
            raise ClusterError(self._failure(f"pg_ctl start on port {self._port} failed", result))
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        last = "no attempt"
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self._libpq("postgres"), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.Error as exc:
                last = str(exc).strip()
            time.sleep(0.05)
        raise ClusterError(
            f"PostgreSQL on port {self._port} not ready after {self.timeout:.0f} s: {last}\n"
            f"log tail:\n{self._log_tail()}"
        )

    def _wait_gone(self, pid: int | None) -> None:
        deadline = time.monotonic() + self.timeout
        while pid is not None and _pid_alive(pid):
            if time.monotonic() > deadline:
                raise ClusterError(f"process {pid} still alive after {self.timeout:.0f} s")
            time.sleep(0.02)

    def _read_pid(self) -> int | None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except (OSError, ValueError):
            return None
        # A stale pid file may name a process that is not ours any more.
        return pid if comm in ("postgres", "postmaster") else None

    def _libpq(self, database: str) -> str:
        return f"postgresql://{self.USER}@127.0.0.1:{self._port}/{database}"

    def _bin(self, tool: str) -> str:
        return str(self.bin_dir / tool)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = list(args)
        if os.geteuid() == 0:
            argv = ["runuser", "-u", self.USER, "--", *argv]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        try:
            return subprocess.run(
                argv,
                cwd=self._base,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self.timeout + 5,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(
                f"{' '.join(argv)} timed out after {exc.timeout:.0f} s\n"
                f"log tail:\n{self._log_tail()}"
            ) from None

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text_ = self.log_file.read_text(errors="replace")
        except (OSError, ClusterError):
            return "(no log)"
        return "\n".join(text_.splitlines()[-lines:]) or "(empty log)"

    def _failure(self, what: str, result: subprocess.CompletedProcess[str]) -> str:
        output = (result.stdout + result.stderr).strip()
        return (
            f"{what} (exit {result.returncode}) in {self.base_dir}:\n{output}\n"
            f"log tail:\n{self._log_tail()}"
        )
