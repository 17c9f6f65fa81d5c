"""Fault injection: reader wrappers that make any back end misbehave, seeded and reproducible.

A ``FaultPlan`` says which faults happen; ``FaultyReader`` / ``FaultyConnection`` wrap any
``Reader`` / ``CardConnection`` and apply it. Every random choice comes from one
``random.Random(seed)`` drawn in a fixed order, so one seed always gives the same failure
sequence (``events``) for the same APDUs. APDUs are numbered from 1 across every connection
of one wrapped reader, so a fault that fired once (a removal, a reset) does not fire again
after the host reconnects.

Faults (spec option → ``FaultPlan`` field):

* ``remove-after=N`` — the card is pulled after N APDUs: APDU N+1 and everything after it on
  that connection fail with ``CardRemovedError``; the card is powered off (its security
  state is gone), and a new ``connect`` finds it reinserted.
* ``tear=N`` — the card loses power at its N-th write of non-volatile memory (PIN retry
  counters, PIN changes) from connect; the seed decides whether that write landed. Only the
  in-process simulator can do this: on any other back end the wrapper refuses at
  construction with ``FaultNotPossibleError``.
* ``error-rate=P`` — each APDU fails with ``TransmitError`` with probability P; the seed
  decides whether the command was lost on the way in (the card never saw it) or the
  answer on the way out (the card executed it).
* ``delay=S`` — each APDU waits a seeded time in [0, S] seconds before it is sent.
* ``t0`` (and ``t0-chunk=N``, default 256) — answers as a T=0 card gives them: a command
  with data in and out is answered ``61xx`` and its data fetched with GET RESPONSE, at
  most N bytes at a time; a short Le that does not match the answer's length is answered
  ``6Cxx`` (the card's length), and the answer comes when the host resends with that Le.
* ``reset-after=N`` / ``reset-rate=P`` — the card is warm-reset behind the host's back
  after N APDUs (once) / before each APDU with probability P: its security state (verified
  PINs, selected files) is lost and the host is not told.
* ``seed=N`` — the seed (default 0).

Spec strings (``readers.registry.open_reader``): ``faults:OPTION[,OPTION…]:INNER``, e.g.
``faults:remove-after=5,seed=1:sim:card1`` or ``faults:t0,t0-chunk=64:pcsc``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Protocol, runtime_checkable

from ..iso7816.apdu import SHORT_LE_MAX, APDUFormatError, CommandAPDU, ResponseAPDU
from .base import (
    CardConnection,
    CardRemovedError,
    NoReaderError,
    Reader,
    ReaderError,
    TransmitError,
)

INS_GET_RESPONSE = 0xC0


class FaultNotPossibleError(ReaderError):
    """The fault asked for cannot physically happen on this back end."""


@runtime_checkable
class PowerCuttable(Protocol):
    """A connection whose card's power can be cut in the middle of a memory write."""

    def cut_power_at_write(self, at_write: int, *, lands: bool) -> None: ...


@dataclass(frozen=True)
class FaultPlan:
    seed: int = 0
    remove_after: int | None = None
    tear: int | None = None
    error_rate: float = 0.0
    delay: float = 0.0
    t0: bool = False
    t0_chunk: int = SHORT_LE_MAX
    reset_after: int | None = None
    reset_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("error_rate", "reset_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name.replace('_', '-')} must be between 0 and 1")
        for name in ("remove_after", "reset_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name.replace('_', '-')} must be 0 or more")
        if self.tear is not None and self.tear < 1:
            raise ValueError("tear counts writes from 1")
        if self.delay < 0:
            raise ValueError("delay must be 0 or more seconds")
        if not 1 <= self.t0_chunk <= SHORT_LE_MAX:
            raise ValueError(f"t0-chunk must be 1..{SHORT_LE_MAX}")

    @classmethod
    def parse(cls, options: str) -> FaultPlan:
        """``remove-after=5,seed=1`` → a plan; unknown or malformed options raise
        ``NoReaderError`` naming the option."""
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, object] = {}
        for option in filter(None, (o.strip() for o in options.split(","))):
            key, has_value, text = option.partition("=")
            name = key.strip().replace("-", "_")
            if name not in types:
                raise NoReaderError(f"unknown fault {key!r}: use {', '.join(_OPTION_NAMES)}")
            kind = str(types[name])
            try:
                if kind == "bool":
                    values[name] = text.strip().lower() in ("", "1", "yes", "true", "on")
                elif not has_value:
                    raise ValueError("it needs a value")
                elif "float" in kind:
                    values[name] = float(text)
                else:
                    values[name] = int(text, 0)
            except ValueError as exc:
                raise NoReaderError(f"fault option {option!r}: {exc}") from None
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ValueError as exc:
            raise NoReaderError(f"fault options {options!r}: {exc}") from None


_OPTION_NAMES = tuple(f.name.replace("_", "-") for f in fields(FaultPlan))


@dataclass(frozen=True)
class FaultEvent:
    apdu: int
    """The APDU (numbered from 1 across the wrapped reader's connections) it hit."""
    kind: str
    """``removed``, ``power-loss``, ``command-lost``, ``answer-lost``, ``delay``, ``reset``,
    ``61xx`` or ``6Cxx``."""
    detail: str = ""


@dataclass
class _FaultState:
    """What one wrapped reader's connections share: the dice, the APDU count, the log."""

    plan: FaultPlan
    sleep: Callable[[float], None]
    rng: random.Random = field(init=False)
    apdus: int = 0
    removed_once: bool = False
    reset_once: bool = False
    torn_once: bool = False
    events: list[FaultEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.plan.seed)

    def log(self, kind: str, detail: str = "") -> None:
        self.events.append(FaultEvent(self.apdus, kind, detail))


class FaultyConnection(CardConnection):
    """A connection that misbehaves as its ``FaultPlan`` says; ``events`` logs every fault."""

    def __init__(self, inner: CardConnection, plan: FaultPlan | None = None, *,
                 sleep: Callable[[float], None] = time.sleep,
                 _state: _FaultState | None = None) -> None:
        self.inner = inner
        self._state = _state or _FaultState(plan or FaultPlan(), sleep)
        self.plan = self._state.plan
        self.removed = False
        self._pending = b""
        """T=0: answer data the host has yet to fetch with GET RESPONSE."""
        self._pending_sw = 0x9000
        self._wrong_le: tuple[bytes, bytes] | None = None
        """T=0: (command without Le, answer) the card refused with 6Cxx, until it is resent."""
        if self.plan.tear is not None and not self._state.torn_once:
            if not isinstance(inner, PowerCuttable):
                raise FaultNotPossibleError(_no_tear(type(inner).__name__))
            self._state.torn_once = True
            inner.cut_power_at_write(self.plan.tear, lands=self._state.rng.random() < 0.5)

    @property
    def events(self) -> list[FaultEvent]:
        return self._state.events

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    def reset(self) -> bytes:
        self._live()
        self._pending, self._wrong_le = b"", None
        return self.inner.reset()

    def disconnect(self) -> None:
        if not self.removed:
            self.inner.disconnect()

    def _live(self) -> None:
        if self.removed:
            raise CardRemovedError("the card was removed from the reader (injected fault)")

    def _pull_card(self, why: str) -> None:
        self.removed = True
        self.inner.disconnect()
        self._state.log("removed", why)

    def transmit_raw(self, command: bytes) -> bytes:
        self._live()
        state, plan = self._state, self.plan
        state.apdus += 1
        if plan.remove_after is not None and not state.removed_once \
                and state.apdus > plan.remove_after:
            state.removed_once = True
            self._pull_card(f"after {plan.remove_after} APDUs")
            raise CardRemovedError(f"the card was removed before APDU #{state.apdus} "
                                   f"({command[:4].hex().upper()}) (injected fault)")
        if (plan.reset_after is not None and not state.reset_once
                and state.apdus > plan.reset_after) \
                or (plan.reset_rate and state.rng.random() < plan.reset_rate):
            state.reset_once = state.reset_once or plan.reset_after is not None
            self.inner.reset()
            self._pending, self._wrong_le = b"", None
            state.log("reset", "the card was reset; its security state is gone")
        if plan.delay:
            seconds = state.rng.uniform(0.0, plan.delay)
            state.log("delay", f"{seconds:.6f}")
            state.sleep(seconds)
        if plan.t0:
            return self._t0(command)
        return self._exchange(command)

    def _exchange(self, command: bytes) -> bytes:
        state, plan = self._state, self.plan
        if plan.error_rate and state.rng.random() < plan.error_rate:
            executed = state.rng.random() < 0.5
            if executed:
                self._send(command)
            kind = "answer-lost" if executed else "command-lost"
            state.log(kind)
            what = ("the answer was lost (the card executed it)" if executed
                    else "the command was lost (the card never saw it)")
            raise TransmitError(f"transmission error on APDU #{state.apdus} "
                                f"({command[:4].hex().upper()}): {what} (injected fault)")
        return self._send(command)

    def _send(self, command: bytes) -> bytes:
        try:
            return self.inner.transmit_raw(command)
        except CardRemovedError:
            if isinstance(self.inner, PowerCuttable):
                self.removed = True
                self._state.log("power-loss", "the card lost power in the middle of a write")
            raise

    def _t0(self, command: bytes) -> bytes:
        try:
            apdu = CommandAPDU.parse(command)
        except APDUFormatError:
            return self._exchange(command)
        if apdu.ins == INS_GET_RESPONSE and not apdu.data and self._pending:
            assert apdu.le is not None
            return self._next_chunk(apdu.le)
        self._pending = b""
        if apdu.extended:  # T=0 has no extended APDUs (hosts use ENVELOPE): leave them be
            return self._exchange(command)
        if self._wrong_le is not None and apdu.data == b"" and apdu.le is not None \
                and command[:-1] == self._wrong_le[0] \
                and apdu.le == len(ResponseAPDU.parse(self._wrong_le[1]).data):
            answer, self._wrong_le = self._wrong_le[1], None
            return answer
        self._wrong_le = None
        answer = self._exchange(command)
        response = ResponseAPDU.parse(answer)
        if not response.data:
            return answer
        if apdu.data:  # case 4: T=0 cannot send data back in the same exchange
            self._pending, self._pending_sw = response.data, response.sw
            return self._announce()
        if apdu.le is not None and apdu.le != len(response.data) \
                and len(response.data) <= SHORT_LE_MAX:
            self._wrong_le = (command[:-1], answer)
            self._state.log("6Cxx", f"Le {apdu.le} for {len(response.data)} bytes")
            return bytes((0x6C, len(response.data) & 0xFF))
        return answer

    def _announce(self) -> bytes:
        available = min(len(self._pending), self.plan.t0_chunk)
        self._state.log("61xx", f"{len(self._pending)} bytes waiting")
        return bytes((0x61, available & 0xFF))

    def _next_chunk(self, le: int) -> bytes:
        chunk = self._pending[:min(le, self.plan.t0_chunk)]
        self._pending = self._pending[len(chunk):]
        if self._pending:
            return chunk + self._announce()
        return chunk + self._pending_sw.to_bytes(2, "big")


def _no_tear(back_end: str) -> str:
    return (f"fault 'tear' (power loss in the middle of a write) is not possible on {back_end}: "
            "only the in-process simulator (sim:DIR) lets the reader cut the card's power while "
            "it writes its memory; a real reader cannot time a removal to a card's write")


class FaultyReader(Reader):
    """Wraps a reader: every connection it opens misbehaves per ``plan``, one shared log."""

    def __init__(self, inner: Reader, plan: FaultPlan, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if plan.tear is not None and not getattr(inner, "cuts_power_mid_write", False):
            raise FaultNotPossibleError(_no_tear(f"reader {inner.name!r}"))
        self.inner = inner
        self.name = f"faults({inner.name})"
        self.plan = plan
        self._state = _FaultState(plan, sleep)

    @property
    def events(self) -> list[FaultEvent]:
        return self._state.events

    def card_present(self) -> bool:
        return self.inner.card_present()

    def connect(self) -> FaultyConnection:
        inner = self.inner.connect()
        try:
            return FaultyConnection(inner, _state=self._state)
        except BaseException:
            inner.disconnect()
            raise

