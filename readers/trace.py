"""APDU traces: record every exchange of a connection to JSON Lines, and replay a trace as a
reader back end. The format is documented in ``docs/traces.md``.

Recording wraps any ``CardConnection`` (``TracingConnection``, ``record``) or ``Reader``
(``TracingReader``); it logs what crosses the wire (``transmit_raw``), so GET RESPONSE and
``6Cxx`` retries appear as the card saw them. Secrets are redacted by default: the data
field of every command in ``SECRET_COMMANDS`` is replaced by ``**`` per byte (its length
kept) and its byte range listed under ``redacted``.

``ReplayReader`` answers each command with the recorded answer, strictly in order, and
raises ``TraceMismatchError`` the moment the host sends anything else; a redacted command
matches on every byte but the redacted ones.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..iso7816.apdu import APDUFormatError, CommandAPDU
from .base import (
    CardConnection,
    CardRemovedError,
    NoCardError,
    Reader,
    ReaderError,
    TransmitError,
)

TRACE_FORMAT = "mynacard-apdu-trace"
TRACE_VERSION = 1
TRACE_ENV = "MYNACARD_TRACE"
"""When set, every reader ``open_reader`` returns records into this file (appending)."""
NO_REDACT_ENV = "MYNACARD_TRACE_NO_REDACT"
"""When ``1``, the ``MYNACARD_TRACE`` recording keeps secrets (private debugging only)."""
REDACTED_BYTE = "**"

SECRET_COMMANDS: dict[tuple[int | None, int], str] = {
    (None, 0x20): "VERIFY (PIN, password or 照合番号)",
    (None, 0x24): "CHANGE REFERENCE DATA (new PIN)",
    (None, 0x2C): "RESET RETRY COUNTER (unblocking code, new PIN)",
    (0x80, 0x32): "CHANGE KEY (new PIN, JICSAP)",
    (0x80, 0xAE): "SET SESSION KEY (key material)",
    (0x84, 0xE6): "INSTALL (install parameters carry the applet's PIN)",
}
"""(CLA or None for any ISO class, INS) → what secret its data field carries."""

_ERRORS: dict[str, type[ReaderError]] = {
    cls.__name__: cls for cls in (CardRemovedError, NoCardError, TransmitError, ReaderError)
}


class TraceError(ReaderError):
    """A trace file is unreadable or not a mynacard APDU trace."""


class TraceMismatchError(ReaderError):
    """The host did something other than what the trace recorded."""


def secret_range(command: bytes) -> tuple[int, int] | None:
    """(offset, length) of the secret in ``command``'s data field, or None."""
    if len(command) < 4:
        return None
    cla, ins = command[0], command[1]
    iso_class = cla & 0x80 == 0
    if (cla, ins) not in SECRET_COMMANDS and not (iso_class and (None, ins) in SECRET_COMMANDS):
        return None
    try:
        apdu = CommandAPDU.parse(command)
    except APDUFormatError:
        # Not a well-formed APDU: everything after the header may be a secret.
        return (4, len(command) - 4) if len(command) > 4 else None
    if not apdu.data:
        return None
    offset = 7 if apdu.extended else 5
    return offset, len(apdu.data)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def masked_hex(command: bytes, redacted: tuple[int, int] | None) -> str:
    text = command.hex().upper()
    if redacted is None:
        return text
    offset, length = redacted
    return text[:2 * offset] + REDACTED_BYTE * length + text[2 * (offset + length):]


class TraceWriter:
    """Appends trace records to a JSON Lines file, one flushed line per event, so a crash
    keeps everything up to the last exchange."""

    def __init__(self, path: Path | str, *, redact: bool = True) -> None:
        self.path = Path(path)
        self.redact = redact
        self._file: IO[str] = self.path.open("a", encoding="utf-8")
        self._seq = 0

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps({"type": record.pop("type"), "time": _now(), **record},
                                    ensure_ascii=False) + "\n")
        self._file.flush()

    def session(self, reader: str, atr: bytes) -> None:
        self.write({"type": "session", "format": TRACE_FORMAT, "version": TRACE_VERSION,
                    "reader": reader, "atr": atr.hex().upper(), "redacted": self.redact})

    def apdu(self, command: bytes, response: bytes) -> None:
        self._seq += 1
        secret = secret_range(command) if self.redact else None
        record: dict[str, Any] = {"type": "apdu", "seq": self._seq,
                                  "command": masked_hex(command, secret),
                                  "response": response[:-2].hex().upper(),
                                  "sw": response[-2:].hex().upper()}
        if secret is not None:
            record["redacted"] = [list(secret)]
        self.write(record)

    def error(self, command: bytes, error: ReaderError) -> None:
        self._seq += 1
        self.write({"type": "error", "seq": self._seq,
                    "command": masked_hex(command, secret_range(command) if self.redact
                                          else None),
                    "error": type(error).__name__, "message": str(error)})

    def close(self) -> None:
        self._file.close()


class TracingConnection(CardConnection):
    """Records every exchange of ``inner`` through ``writer``; otherwise transparent."""

    def __init__(self, inner: CardConnection, writer: TraceWriter, reader_name: str,
                 *, owns_writer: bool = False) -> None:
        self.inner = inner
        self.writer = writer
        self._owns_writer = owns_writer
        self._open = True
        writer.session(reader_name, inner.atr)

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    def transmit_raw(self, command: bytes) -> bytes:
        try:
            response = self.inner.transmit_raw(command)
        except ReaderError as exc:
            self.writer.error(command, exc)
            raise
        self.writer.apdu(command, response)
        return response

    def reset(self) -> bytes:
        atr = self.inner.reset()
        self.writer.write({"type": "reset", "atr": atr.hex().upper()})
        return atr

    def disconnect(self) -> None:
        """Idempotent, as every connection's disconnect: only the first is recorded."""
        if not self._open:
            return
        self._open = False
        try:
            self.inner.disconnect()
        finally:
            self.writer.write({"type": "disconnect"})
            if self._owns_writer:
                self.writer.close()


class TracingReader(Reader):
    """Every connection of ``inner`` is recorded into ``path`` (appended, one session each)."""

    def __init__(self, inner: Reader, path: Path | str, *, redact: bool = True) -> None:
        self.inner = inner
        self.name = inner.name
        self.path = Path(path)
        self.redact = redact

    def card_present(self) -> bool:
        return self.inner.card_present()

    def connect(self) -> TracingConnection:
        inner = self.inner.connect()
        return TracingConnection(inner, TraceWriter(self.path, redact=self.redact), self.name,
                                 owns_writer=True)


@contextmanager
def record(connection: CardConnection, path: Path | str, *, redact: bool = True,
           reader_name: str = "") -> Iterator[TracingConnection]:
    """Record ``connection``'s exchanges into ``path`` while the block runs (for fixtures);
    the wrapped connection is yielded and ``connection`` is left open."""
    writer = TraceWriter(path, redact=redact)
    try:
        yield TracingConnection(connection, writer,
                                reader_name or type(connection).__name__)
    finally:
        writer.write({"type": "end"})
        writer.close()


# -- reading and replaying ---------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One recorded ``apdu`` or ``error`` line."""

    seq: int
    command: str
    """Hex, ``**`` for each redacted byte."""
    response: bytes | None
    """Data + SW, or None when the exchange failed with ``error``."""
    error: str = ""
    message: str = ""
    line: int = 0
    """Its line in the trace file (``seq`` restarts with every session)."""

    def matches(self, command: bytes) -> bool:
        sent = command.hex().upper()
        return len(sent) == len(self.command) and all(
            want in ("*", got) for want, got in zip(self.command, sent, strict=True))

    @property
    def redacted(self) -> bool:
        return REDACTED_BYTE in self.command


@dataclass
class Session:
    reader: str
    atr: bytes
    events: list[Exchange | bytes]
    """Exchanges in order; a ``bytes`` entry is a reset (the ATR it gave)."""


def read_trace(path: Path | str) -> list[Session]:
    """The sessions of a trace file, in order; ``TraceError`` names the bad line."""
    sessions: list[Session] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"cannot read trace {path}: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            kind = entry["type"]
            if kind == "session":
                if entry.get("format") != TRACE_FORMAT or entry.get("version") != TRACE_VERSION:
                    raise ValueError(f"not a {TRACE_FORMAT} version {TRACE_VERSION} session")
                sessions.append(Session(entry["reader"], bytes.fromhex(entry["atr"]), []))
                continue
            if kind in ("disconnect", "end"):
                continue
            if not sessions:
                raise ValueError("an exchange before any session line")
            if kind == "reset":
                sessions[-1].events.append(bytes.fromhex(entry["atr"]))
            elif kind == "apdu":
                command = str(entry["command"]).upper()
                bytes.fromhex(command.replace("*", "0"))  # well-formed hex apart from masks
                sessions[-1].events.append(Exchange(
                    int(entry["seq"]), command,
                    bytes.fromhex(entry["response"] + entry["sw"]), line=number))
            elif kind == "error":
                sessions[-1].events.append(Exchange(
                    int(entry["seq"]), str(entry["command"]).upper(), None,
                    str(entry["error"]), str(entry["message"]), line=number))
            else:
                raise ValueError(f"unknown record type {kind!r}")
        except (ValueError, KeyError, TypeError) as exc:
            raise TraceError(f"{path} line {number}: {exc}") from None
    if not sessions:
        raise TraceError(f"{path} holds no session")
    return sessions


class ReplayConnection(CardConnection):
    def __init__(self, reader: ReplayReader, session: Session) -> None:
        self._reader = reader
        self._events = iter(session.events)
        self._atr = session.atr
        self.closed = False

    @property
    def atr(self) -> bytes:
        return self._atr

    def _next(self, doing: str) -> Exchange | bytes:
        if self.closed:
            raise ReaderError("connection is closed")
        event = next(self._events, None)
        if event is None:
            raise TraceMismatchError(f"the host {doing}, but the recorded session of "
                                     f"{self._reader.path} has ended")
        self._reader.replayed += 1
        return event

    def transmit_raw(self, command: bytes) -> bytes:
        event = self._next(f"sent {command.hex().upper()}")
        if isinstance(event, bytes):
            raise TraceMismatchError(f"the host sent {command.hex().upper()} where the trace "
                                     "recorded a reset")
        if not event.matches(command):
            raise TraceMismatchError(
                f"APDU #{event.seq} (line {event.line}) differs from the trace "
                f"{self._reader.path}:\n"
                f"  recorded {event.command}\n  sent     {command.hex().upper()}")
        if event.response is None:
            raise _ERRORS.get(event.error, ReaderError)(f"{event.message} (replayed)")
        return event.response

    def reset(self) -> bytes:
        event = self._next("reset the card")
        if not isinstance(event, bytes):
            raise TraceMismatchError(f"the host reset the card where the trace recorded "
                                     f"APDU #{event.seq} {event.command}")
        self._atr = event
        return event

    def disconnect(self) -> None:
        self.closed = True


class ReplayReader(Reader):
    """A reader whose card answers from a trace: one recorded session per ``connect``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._sessions = read_trace(self.path)
        self._next_session = 0
        self.replayed = 0
        self.name = f"replay of {self._sessions[0].reader} ({self.path.name})"

    def card_present(self) -> bool:
        return self._next_session < len(self._sessions)

    def connect(self) -> ReplayConnection:
        if not self.card_present():
            raise NoCardError(f"every session of {self.path} has been replayed")
        session = self._sessions[self._next_session]
        self._next_session += 1
        return ReplayConnection(self, session)

    def unreplayed(self) -> int:
        """How many recorded events (exchanges and resets) the host has not asked for."""
        total = sum(len(session.events) for session in self._sessions)
        return total - self.replayed
