"""A private PostgreSQL server, run as a direct child, for tests and benchmarks.

Debian's server binaries (package ``postgresql``) live in ``/usr/lib/postgresql/<ver>/bin``.
The server gets its own data directory and Unix socket in a fresh temporary directory and its
own free TCP port on 127.0.0.1, trusts local connections (it is a throwaway), runs as an
unprivileged user when we are root (PostgreSQL refuses to run as root), and is always stopped
by PID and reaped; should our process die first, the kernel sends it SIGTERM (setpriv
``--pdeathsig``).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ...errors import MynacardError

DEBIAN_ROOT = Path("/usr/lib/postgresql")
UNPRIVILEGED_USER = "nobody"
SUPERUSER = "postgres"


class PostgresError(MynacardError, RuntimeError):
    """The private PostgreSQL server could not be set up, started or stopped."""


def postgres_bindir() -> Path | None:
    """The newest installed PostgreSQL server's bin directory, or None."""
    found = [path.parent for path in DEBIAN_ROOT.glob("*/bin/postgres")
             if (path.parent / "initdb").exists()]
    found += [Path(p).parent for p in (shutil.which("postgres"),) if p]
    if not found:
        return None

    def version(bindir: Path) -> tuple[int, ...]:
        match = re.search(r"/(\d+)(?:\.(\d+))?/bin$", str(bindir))
        return tuple(int(g) for g in match.groups() if g) if match else (0,)

    return max(found, key=version)


def missing_postgres() -> str | None:
    """None when a server can be started here, else a message saying what to install."""
    if postgres_bindir() is None:
        return ("PostgreSQL tests need the PostgreSQL server: as root run "
                "`sh scripts/system-deps.sh` (apt-get install postgresql), then `make test` again")
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "running PostgreSQL as an unprivileged user needs setpriv (util-linux)"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class PostgresServer:
    """``initdb`` into a temporary directory, then ``postgres`` in the foreground on it."""

    def __init__(self, *, fsync: bool = False) -> None:
        self.fsync = fsync
        self.port = 0
        self.workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def socket_dir(self) -> Path:
        assert self.workdir is not None, "start the server first"
        return self.workdir / "socket"

    def url(self, database: str = SUPERUSER) -> str:
        """A SQLAlchemy URL for ``database`` through the private Unix socket."""
        return (f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}"
                f"&port={self.port}")

    def _as_server_user(self, command: list[str]) -> list[str]:
        setpriv = shutil.which("setpriv")
        prefix = [setpriv, "--pdeathsig", "TERM"] if setpriv else []
        if os.geteuid() == 0:
            user = pwd.getpwnam(UNPRIVILEGED_USER)
            prefix += [f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
        return [*prefix, *command]

    def start(self, timeout: float = 30.0) -> PostgresServer:
        missing = missing_postgres()
        if missing:
            raise PostgresError(missing)
        bindir = postgres_bindir()
        assert bindir is not None
        # Not under pytest's 0700 tree: the unprivileged server user must reach its files.
        self.workdir = Path(tempfile.mkdtemp(prefix="mynacard-pg-"))
        data = self.workdir / "data"
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            user = pwd.getpwnam(UNPRIVILEGED_USER)
            for path in (self.workdir, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        env = {**os.environ, "LC_ALL": "C.UTF-8"}
        init = subprocess.run(
            self._as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER,
                                  "-A", "trust", "-E", "UTF8", "--no-sync"]),
            capture_output=True, env=env, cwd=self.workdir)
        if init.returncode != 0:
            self._cleanup()
            raise PostgresError(f"initdb failed: {init.stderr.decode(errors='replace')[-500:]}")
        self.port = free_port()
        log = (self.workdir / "postgres.log").open("wb")
        command = [str(bindir / "postgres"), "-D", str(data), "-p", str(self.port),
                   "-h", "127.0.0.1", "-k", str(self.socket_dir),
                   "-c", "shared_buffers=16MB", "-c", "max_connections=60",
                   "-c", f"fsync={'on' if self.fsync else 'off'}"]
        with log:
            self._process = subprocess.Popen(self._as_server_user(command), stdout=log,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             env=env, cwd=self.workdir)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise PostgresError(f"postgres exited with status {self._process.returncode}:"
                                    f"\n{self.log_tail()}")
            try:
                psycopg.connect(host=str(self.socket_dir), port=self.port, user=SUPERUSER,
                                dbname=SUPERUSER, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise PostgresError(f"postgres not ready within {timeout:g} s:\n"
                                        f"{self.log_tail()}") from None
                time.sleep(0.05)

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(host=str(self.socket_dir), port=self.port, user=SUPERUSER,
                             dbname=SUPERUSER, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def log_tail(self, lines: int = 20) -> str:
        if self.workdir is None:
            return "(no log)"
        try:
            text = (self.workdir / "postgres.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """Fast shutdown (SIGINT) by PID, SIGKILL if it will not go; reaped; files removed."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            else:
                process.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
