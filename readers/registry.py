"""Reader specs: one string picks the back end, so every command runs on any of them.

* ``sim:DIR`` — the card image in DIR, simulated in this process;
* ``pcsc`` — the first PC/SC reader holding a card (a real card, or the simulator
  served through pcscd + vpcd);
* ``pcsc:NAME`` — the PC/SC reader called NAME;
* ``replay:FILE`` — a recorded APDU trace answering in order (``readers.trace``);
* ``faults:OPTIONS:SPEC`` — the reader SPEC with injected faults (``readers.faults``),
  e.g. ``faults:remove-after=5,seed=1:sim:card1``.

With ``MYNACARD_TRACE=FILE`` in the environment, the reader is recorded into FILE
(``readers.trace``; secrets redacted unless ``MYNACARD_TRACE_NO_REDACT=1``).
"""

from __future__ import annotations

import os

from .base import NoReaderError, Reader


def open_reader(spec: str) -> Reader:
    reader = _open(spec)
    from .trace import NO_REDACT_ENV, TRACE_ENV, TracingReader

    trace = os.environ.get(TRACE_ENV)
    if trace:
        return TracingReader(reader, trace, redact=os.environ.get(NO_REDACT_ENV) != "1")
    return reader


def _open(spec: str) -> Reader:
    kind, _, argument = spec.partition(":")
    if kind == "sim":
        if not argument:
            raise NoReaderError("reader spec 'sim:' needs a card image directory, e.g. sim:card1")
        from .simulator import SimulatorReader

        return SimulatorReader.for_image(argument)
    if kind == "pcsc":
        from .pcsc import pcsc_reader

        return pcsc_reader(argument or None)
    if kind == "replay":
        if not argument:
            raise NoReaderError("reader spec 'replay:' needs a trace file, e.g. replay:card.jsonl")
        from .trace import ReplayReader

        return ReplayReader(argument)
    if kind == "faults":
        from .faults import FaultPlan, FaultyReader

        options, separator, inner = argument.partition(":")
        if not separator or not inner:
            raise NoReaderError("reader spec 'faults:' needs options and a reader, e.g. "
                                "faults:remove-after=5,seed=1:sim:card1")
        plan = FaultPlan.parse(options)  # a bad option is named before any reader opens
        return FaultyReader(_open(inner), plan)
    raise NoReaderError(f"unknown reader spec {spec!r}: use sim:DIR, pcsc, pcsc:NAME, "
                        "replay:FILE or faults:OPTIONS:SPEC")
