"""Private PostgreSQL and Mosquitto instances for fault tests and ``bench/chaos.py``: started in a
temp directory on a free loopback port, so that they can be stopped, frozen (SIGSTOP) or killed
without touching the machine's shared servers.

PostgreSQL comes from the installed server binaries (``/usr/lib/postgresql/*/bin``); ``initdb``
refuses to run as root, so as root the instance runs as the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == 0


def _wait(condition: Callable[[], bool], what: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    end = time.monotonic() + START_TIMEOUT_S
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        if time.monotonic() > end:
            raise RuntimeError(f"{what}: gave up after {START_TIMEOUT_S:.0f} s")
        time.sleep(0.05)  # poll interval of the readiness check


def pg_bin() -> Path | None:
    """The directory of the newest installed PostgreSQL server binaries, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    on_path = shutil.which("pg_ctl")
    if found:
        return Path(found[-1]).parent
    return Path(on_path).parent if on_path else None


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (trust auth, database ``test``) in `directory`."""

    def __init__(self, directory: Path | None = None) -> None:
        """`directory` must be reachable by the ``postgres`` user when running as root (default: a
        new directory in the system's temp directory, removed by :meth:`close`)."""
        directory = directory or Path(tempfile.mkdtemp(prefix="quartiere-pg-"))
        bindir = pg_bin()
        if bindir is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb/pg_ctl) installed")
        self.bin = bindir
        self.dir = directory
        self.data = directory / "pgdata"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@{HOST}:{self.port}/postgres"
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as_user, str(self.bin / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses={HOST} -c unix_socket_directories={self.dir} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "pg.log"), "-w", "start")
        _wait(lambda: listening(self.port), "private PostgreSQL")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (`mode` ``immediate`` drops every connection at once, like a crash)."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate (openssl);
    returns (CA, client certificate, client key), all PEM; the server's are server.pem/.key."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, cwd=directory, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=quartiere-test-ca",
            "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, extra in (("server", ["-extfile", "san.ext"]), ("client", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr")  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-out", f"{name}.pem", *extra)  # fmt: skip
    return directory / "ca.pem", directory / "client.pem", directory / "client.key"


class PrivateMosquitto:
    """A private Mosquitto with persistence (so it may be restarted or killed), optionally with
    a password file (``users``: name -> password; then anonymous clients are refused) and an ACL."""

    def __init__(
        self, directory: Path, users: dict[str, str] | None = None, acl: str | None = None, tls: bool = False
    ) -> None:
        """With `tls`, the listener speaks TLS only, with a certificate for 127.0.0.1 signed by a
        throw-away CA (``self.ca``, PEM) that also signs a client certificate (``self.client_cert``,
        ``self.client_key``); clients must present one."""
        self.dir = directory
        self.port = free_port()
        lines = [
            f"listener {self.port} {HOST}",
            "persistence true",
            f"persistence_location {directory}/",
            "log_dest none",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        if users:
            passwd = directory / "passwd"
            passwd.write_text("")
            for name, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), name, password], check=True)
            passwd.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if tls:
            self.ca, self.client_cert, self.client_key = make_certificates(directory)
            lines += [
                f"cafile {self.ca}",
                f"certfile {directory / 'server.pem'}",
                f"keyfile {directory / 'server.key'}",
                "require_certificate true",
            ]
        if acl is not None:
            (directory / "acl").write_text(acl)
            lines.append(f"acl_file {directory / 'acl'}")
        self.conf = directory / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([shutil.which("mosquitto") or "mosquitto", "-c", str(self.conf)])
        _wait(lambda: listening(self.port), "private mosquitto", self.proc)

    def signal(self, sig: signal.Signals) -> None:
        """SIGSTOP (hang), SIGCONT (resume), SIGKILL (crash: retained messages since the last save are lost)."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        if sig == signal.SIGKILL:
            self.proc.wait(timeout=START_TIMEOUT_S)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(timeout=START_TIMEOUT_S)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children ...), from /proc (Linux)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
