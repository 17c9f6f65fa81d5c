"""A private pcscd with vpcd readers, run as a direct child, for tests and benchmarks.

pcscd's socket path is compiled in (``/run/pcscd``), so there is one pcscd per
machine: ``Pcscd.start`` refuses to run beside a pcscd it did not start. It
runs in the foreground (never daemonised, never ``--auto-exit``), with a
private reader configuration that puts vpcd on ports of our choosing, and is
always stopped by PID and reaped (a stale PID file blocks the next pcscd while
that PID exists, even as a zombie).
"""

from __future__ import annotations

import importlib.util
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import MynacardError
from .base import NoReaderError
from .pcsc import list_pcsc_readers

PCSCD = "/usr/sbin/pcscd"
VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
OPENSC_PKCS11 = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
VPCD_FRIENDLY_NAME = "Virtual PCD"


@dataclass(frozen=True, slots=True)
class Requirement:
    """Something the PC/SC tests need, and the Debian package that provides it."""

    what: str
    package: str
    present: bool


def pcsc_requirements() -> list[Requirement]:
    """Everything the pcscd + vpcd + OpenSC interop tests use, present or not."""

    def tool(name: str) -> bool:
        return shutil.which(name) is not None

    return [
        Requirement("pcscd", "pcscd", Path(PCSCD).exists()),
        Requirement("vpcd driver", "vsmartcard-vpcd", Path(VPCD_DRIVER).exists()),
        Requirement("opensc-tool", "opensc", tool("opensc-tool") and tool("pkcs15-tool")),
        Requirement("opensc-pkcs11.so", "opensc", Path(OPENSC_PKCS11).exists()),
        Requirement("pkcs11-tool", "opensc", tool("pkcs11-tool")),
        Requirement("openssl", "openssl", tool("openssl")),
        Requirement("ssh-keygen", "openssh-client", tool("ssh-keygen")),
        Requirement(
            "pyscard (pip install 'mynacard[pcsc]')",
            "libpcsclite-dev",
            importlib.util.find_spec("smartcard") is not None,
        ),
    ]


def missing_pcsc_requirements() -> str | None:
    """None when everything is there, else a message saying what to install."""
    missing = [r for r in pcsc_requirements() if not r.present]
    if not missing:
        return None
    packages = sorted({r.package for r in missing})
    return (
        f"PC/SC interop needs {', '.join(r.what for r in missing)}: as root run "
        f"`sh scripts/system-deps.sh` (apt-get install {' '.join(packages)}), "
        "then `make test` again"
    )


class PcscdError(MynacardError, RuntimeError):
    """pcscd could not be started, got ready, or stopped."""


class ForeignPcscdError(PcscdError):
    """Another pcscd is already running; there can only be one per machine."""


def running_pcscd_pids() -> list[int]:
    """PIDs of live (non-zombie) pcscd processes on this machine."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # /proc/PID/stat: "PID (comm) STATE ..."; comm may hold spaces, so split at the last ')'.
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        state = stat[stat.rindex(")") + 2 :].split(" ", 1)[0]
        if comm == "pcscd" and state != "Z":
            pids.append(int(entry.name))
    return pids


def describe_process(pid: int) -> str:
    """``PID (command line)``, for messages about processes we did not start."""
    try:
        argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return str(pid)
    return f"{pid} ({b' '.join(a for a in argv if a).decode(errors='replace')})"


def free_port_pair(host: str = "0.0.0.0") -> int:
    """A port ``p`` such that ``p`` and ``p + 1`` are free now (vpcd's two slots)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind((host, 0))
            port = first.getsockname()[1]
            if port >= 0xFFFF:
                continue
            with socket.socket() as second:
                try:
                    second.bind((host, port + 1))
                except OSError:
                    continue
                return port
    raise PcscdError("found no two adjacent free TCP ports for vpcd")


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.02)


class Pcscd:
    """pcscd in the foreground with vpcd slots on ``vpcd_port`` and ``vpcd_port + 1``."""

    def __init__(self, workdir: Path, vpcd_port: int, *, debug: bool = False) -> None:
        self.workdir = Path(workdir)
        self.vpcd_port = vpcd_port
        self.debug = debug
        self.log_path = self.workdir / "pcscd.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def reader_names(self) -> tuple[str, str]:
        return (f"{VPCD_FRIENDLY_NAME} 00 00", f"{VPCD_FRIENDLY_NAME} 00 01")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _write_config(self) -> Path:
        config = self.workdir / "reader.conf.d"
        config.mkdir(parents=True, exist_ok=True)
        (config / "vpcd").write_text(
            f'FRIENDLYNAME "{VPCD_FRIENDLY_NAME}"\n'
            f"DEVICENAME   /dev/null:0x{self.vpcd_port:04X}\n"
            f"LIBPATH      {VPCD_DRIVER}\n"
            f"CHANNELID    0x{self.vpcd_port:04X}\n"
        )
        return config

    def start(self, timeout: float = 15.0) -> None:
        if self._process is not None:
            raise PcscdError("this pcscd is already started")
        foreign = running_pcscd_pids()
        if foreign:
            running = ", ".join(map(describe_process, foreign))
            raise ForeignPcscdError(
                f"a pcscd not started here is running (pid {running}); "
                "only one can run per machine: stop it first (e.g. `systemctl stop pcscd.socket "
                "pcscd` or kill that pid)"
            )
        config = self._write_config()
        command = [PCSCD, "--foreground", "--config", str(config)]
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            # Should this process die without stopping it (SIGKILL, a CI timeout), pcscd
            # gets SIGTERM from the kernel instead of living on and blocking the next run.
            command = [setpriv, "--pdeathsig", "TERM", *command]
        if self.debug:
            command += ["--debug", "--apdu"]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            wait_until(self._ready, timeout, "pcscd listing the vpcd readers")
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise PcscdError(
                f"pcscd exited with status {self._process.returncode} during start-up:\n"
                f"{self.log_tail()}"
            )
        try:
            return set(self.reader_names) <= set(list_pcsc_readers())
        except NoReaderError:
            return False

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait, SIGKILL if it will not go; always reaped."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        else:
            process.wait()

    def __enter__(self) -> Pcscd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
