"""A real IMAP server for tests: Dovecot (``dovecot -F``) on 127.0.0.1, one user, maildir.

    with Dovecot(tmp_path) as server:
        server.append(raw_bytes)
        assert server.flags() == {1: {"\\\\Seen"}}

Everything lives in one folder of its own (config, ``base_dir``, state, log, mail, a
self-signed certificate made with ``openssl req``), so several servers run side by side.
Port ``port`` speaks plain IMAP and STARTTLS, ``tls_port`` IMAP over TLS; ``cafile`` is the
certificate to trust. Run as root, Dovecot's mail processes may not be root: the mail then
belongs to the ``dovecot`` user in a folder under the system's temporary folder (the test's
own tmp_path is not reachable for that user); run as another user, everything runs as that
user in the given folder.
"""

from __future__ import annotations

import getpass
import imaplib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from tests.smtp_sink import free_port

__all__ = ["Dovecot", "dovecot_binary"]

USER = "box"
PASSWORD = "box secret"


def dovecot_binary() -> str:
    """The dovecot binary (Debian: ``apt-get install -y dovecot-imapd``)."""
    found = shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(p, os.X_OK)),
        None,
    )
    if found is None:
        raise RuntimeError("dovecot is not installed: apt-get install -y dovecot-imapd")
    return found


class Dovecot:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.tls_port = free_port()
        self.user = USER
        self.password = PASSWORD
        self._own_root: Path | None = None
        if os.geteuid() == 0:
            self._own_root = Path(tempfile.mkdtemp(prefix="flowlane-dovecot-"))
            self.root = self._own_root
            os.chmod(self.root, 0o755)
            mail_user = pwd.getpwnam("dovecot")
        else:
            self.root = folder
            folder.mkdir(parents=True, exist_ok=True)
            mail_user = pwd.getpwuid(os.getuid())
        self.cafile = str(self.root / "cert.pem")
        self._mail_uid, self._mail_gid = mail_user.pw_uid, mail_user.pw_gid
        self._mail_user = mail_user.pw_name
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: BinaryIO | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Dovecot:
        conf = self._configure()
        self._stderr = open(self.root / "stderr.log", "wb")  # noqa: SIM115 - closed by stop()
        self._proc = subprocess.Popen(
            [dovecot_binary(), "-F", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"dovecot exited:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not answer on port {self.port}:\n{self.log()}")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._own_root is not None:
            shutil.rmtree(self._own_root, ignore_errors=True)
            self._own_root = None

    def log(self) -> str:
        parts = [self.root / "dovecot.log", self.root / "stderr.log"]
        return "\n".join(p.read_text(errors="replace") for p in parts if p.exists())

    def _configure(self) -> Path:
        root = self.root
        for name in ("run", "state", "mail"):
            (root / name).mkdir(exist_ok=True)
        os.chown(root / "mail", self._mail_uid, self._mail_gid)
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem"),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        os.chmod(root / "key.pem", 0o600)
        users = root / "users"
        users.write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        if os.geteuid() == 0:  # the auth process runs as the dovecot user
            os.chown(users, 0, self._mail_gid)
            os.chmod(users, 0o640)
        own_user = "" if os.geteuid() == 0 else getpass.getuser()
        users_lines = (
            f"default_internal_user = {own_user}\ndefault_login_user = {own_user}\n"
            if own_user
            else ""
        )
        conf = root / "dovecot.conf"
        conf.write_text(
            f"""base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
{users_lines}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid={self._mail_uid} gid={self._mail_gid} home={root}/mail/%u
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
}}
"""
        )
        return conf

    # ---- the mailbox, seen from a mail client ------------------------------------------------

    def client(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        conn.login(self.user, self.password)
        return conn

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        conn = self.client()
        try:
            typ, data = conn.append(
                folder, None, None, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            )
            assert typ == "OK", data
        finally:
            conn.logout()

    def create(self, folder: str) -> None:
        conn = self.client()
        try:
            typ, data = conn.create(folder)
            assert typ == "OK", data
        finally:
            conn.logout()

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """Every message of the folder: UID → its flags (without \\Recent)."""
        conn = self.client()
        try:
            typ, data = conn.select(folder, readonly=True)
            assert typ == "OK", data
            typ, data = conn.uid("FETCH", "1:*", "(FLAGS)")
            assert typ == "OK", data
            found: dict[int, set[str]] = {}
            for line in data:
                if not isinstance(line, bytes):
                    continue
                uid = re.search(rb"UID (\d+)", line)
                flags = re.search(rb"FLAGS \(([^)]*)\)", line)
                if uid and flags:
                    names = flags.group(1).decode().split()
                    found[int(uid.group(1))] = {f for f in names if f != "\\Recent"}
            return found
        finally:
            conn.logout()
