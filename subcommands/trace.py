"""``mynacard trace``: record the APDUs of any command, and compare a trace with the simulator."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from ..errors import MynacardError
from ..readers.base import ReaderError
from ..readers.trace import NO_REDACT_ENV, TRACE_ENV, Exchange, read_trace

INS_GET_CHALLENGE = 0x84
SNIPPET_BYTES = 12
"""How much of a differing answer the report shows, from the first differing byte."""


@click.group("trace")
def trace() -> None:
    """Record APDU traces, replay them (--reader replay:FILE), compare them with the simulator."""


@trace.command("record", context_settings={"ignore_unknown_options": True})
@click.option("--reader", "reader_spec", metavar="SPEC",
              help="Reader the command uses (added to it as --reader SPEC); omit it when the "
                   "command names its own --card or --reader.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Trace file to write (JSON Lines, replaced if it exists).")
@click.option("--no-redact", is_flag=True,
              help="Keep PINs, passwords and 照合番号 in the trace (private debugging only).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def record(reader_spec: str | None, out: Path, no_redact: bool, command: tuple[str, ...]) -> None:
    """Run the mynacard COMMAND (after --) with every APDU recorded into --out.

    Example: mynacard trace record --reader sim:card1 --out show.jsonl -- card show
    """
    out.unlink(missing_ok=True)
    out.touch(mode=0o600)  # a --no-redact trace holds secrets: never world-readable
    env = {**os.environ, TRACE_ENV: str(out.resolve())}
    env.pop(NO_REDACT_ENV, None)
    if no_redact:
        env[NO_REDACT_ENV] = "1"
    args = [*command, *(["--reader", reader_spec] if reader_spec else [])]
    status = subprocess.run([sys.executable, "-m", "mynacard", *args], env=env,
                            check=False).returncode
    click.echo(f"recorded {_count(out)} APDUs into {out}", err=True)
    sys.exit(status)


def _count(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines()
               if '"type": "apdu"' in line or '"type": "error"' in line)


@dataclass(frozen=True)
class Difference:
    where: str
    """``line N`` of the trace file, or ``ATR`` of session N."""
    command: str
    recorded: bytes | str
    simulator: bytes | str
    """Answer (data + SW); text for an ATR (hex) or for an exchange that failed."""


class CompareError(MynacardError):
    """The trace cannot be played against the simulator."""


def _secret_filled(event: Exchange, secrets: list[bytes]) -> bytes:
    """The recorded command with each ``**`` byte run replaced by the next ``--secret``."""
    text = event.command
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] != "*":
            out.append(int(text[i:i + 2], 16))
            i += 2
            continue
        run = 0
        while i < len(text) and text[i] == "*":
            run += 1
            i += 1
        if not secrets:
            raise CompareError(f"line {event.line} (APDU #{event.seq}) carries a redacted "
                               f"secret ({run // 2} bytes): give the simulator card's PIN or "
                               "password with --secret, once per redacted command, in order")
        secret = secrets.pop(0)
        if len(secret) != run // 2:
            raise CompareError(f"line {event.line} (APDU #{event.seq}) had a {run // 2}-byte "
                               f"secret; the --secret given for it has {len(secret)} bytes")
        out += secret
    return bytes(out)


def _answers_differ(command: bytes, recorded: bytes, simulated: bytes) -> bool:
    if len(command) > 1 and command[1] == INS_GET_CHALLENGE:
        # A challenge is random by design: only its length and status word can be compared.
        return len(recorded) != len(simulated) or recorded[-2:] != simulated[-2:]
    return recorded != simulated


def compare_trace(path: Path, card_dir: Path, secrets: list[bytes]) -> tuple[int, list[Difference]]:
    """(APDUs compared, differences) of the trace against a scratch copy of ``card_dir``."""
    from ..readers.simulator import SimulatorReader

    sessions = read_trace(path)
    differences: list[Difference] = []
    compared = 0
    with tempfile.TemporaryDirectory(prefix="mynacard-compare-") as scratch:
        copy = Path(scratch) / "card"
        shutil.copytree(card_dir, copy, ignore=shutil.ignore_patterns("lock"))
        reader = SimulatorReader.for_image(copy)
        for number, session in enumerate(sessions, 1):
            with reader.connect() as connection:
                if connection.atr != session.atr:
                    differences.append(Difference(f"session {number} ATR", "(power on)",
                                                  session.atr.hex().upper(),
                                                  connection.atr.hex().upper()))
                for event in session.events:
                    if isinstance(event, bytes):
                        atr = connection.reset()
                        if atr != event:
                            differences.append(Difference(f"session {number} ATR", "(reset)",
                                                          event.hex().upper(), atr.hex().upper()))
                        continue
                    compared += 1
                    command = _secret_filled(event, secrets) if event.redacted \
                        else bytes.fromhex(event.command)
                    try:
                        answer: bytes | str = connection.transmit_raw(command)
                    except ReaderError as exc:
                        answer = f"{type(exc).__name__}: {exc}"
                    recorded = event.response if event.response is not None \
                        else f"{event.error}: {event.message}"
                    if isinstance(answer, str) or isinstance(recorded, str):
                        differ = isinstance(answer, str) != isinstance(recorded, str)
                    else:
                        differ = _answers_differ(command, recorded, answer)
                    if differ:
                        differences.append(Difference(f"line {event.line}", event.command,
                                                      recorded, answer))
                    if isinstance(answer, str):
                        break  # the simulated card is gone for this session
    return compared, differences


def _summary(answer: bytes | str, other: bytes | str, full: bool) -> str:
    if isinstance(answer, str):
        return answer
    sw, data = answer[-2:].hex().upper(), answer[:-2]
    if full or isinstance(other, str):
        return f"{sw} {data.hex().upper()}".rstrip()
    other_data = other[:-2]
    if data == other_data:
        return f"{sw} (data same, {len(data)} bytes)" if data else sw
    first = next((i for i, (a, b) in enumerate(zip(data, other_data, strict=False)) if a != b),
                 min(len(data), len(other_data)))
    snippet = data[first:first + SNIPPET_BYTES].hex().upper()
    more = "…" if len(data) > first + SNIPPET_BYTES else ""
    return f"{sw} {len(data)} bytes, from byte {first}: {snippet}{more}"


def _abbreviated(command: str, full: bool) -> str:
    return command if full or len(command) <= 40 else f"{command[:36]}… ({len(command) // 2} B)"


@trace.command("compare")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--card", "card_dir", required=True, metavar="DIR",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Card image to answer the trace's commands (a scratch copy is used).")
@click.option("--secret", "secrets", multiple=True, metavar="VALUE",
              help="The simulator card's PIN or password for each redacted command, in order.")
@click.option("--full", is_flag=True, help="Show whole commands and answers, not excerpts.")
def compare(file: Path, card_dir: Path, secrets: tuple[str, ...], full: bool) -> None:
    """Send every command of the trace FILE to the simulator (in order, one session per
    recorded session, on a scratch copy of DIR) and print each APDU whose answer differs,
    as a Markdown table for a bug report. Exit status 1 when anything differs."""
    compared, differences = compare_trace(file, card_dir,
                                          [s.encode("utf-8") for s in secrets])
    if not differences:
        click.echo(f"all {compared} APDUs of {file.name} got the recorded answers from "
                   f"{card_dir}")
        return
    click.echo(f"{len(differences)} of {compared} APDUs of {file.name} differ from the "
               f"simulator ({card_dir}):\n")
    click.echo("| where | command | trace answer | simulator answer |")
    click.echo("|-------|---------|--------------|------------------|")
    for d in differences:
        command = d.command if d.command.startswith("(") else _abbreviated(d.command, full)
        recorded = _summary(d.recorded, d.simulator, full)
        simulated = _summary(d.simulator, d.recorded, full)
        click.echo(f"| {d.where} | `{command}` | `{recorded}` | `{simulated}` |")
    sys.exit(1)

