"""Reader specs: one string picks the back end, so every command runs on any of them.

* ``sim:DIR`` — the card image in DIR, simulated in this process;
* ``pcsc`` — the first PC/SC reader holding a card (a real card, or the simulator
  served through pcscd + vpcd);
* ``pcsc:NAME`` — the PC/SC reader called NAME.
"""

from __future__ import annotations

from .base import NoReaderError, Reader


def open_reader(spec: str) -> Reader:
    kind, _, argument = spec.partition(":")
    if kind == "sim":
        if not argument:
            raise NoReaderError("reader spec 'sim:' needs a card image directory, e.g. sim:card1")
        from .simulator import SimulatorReader

        return SimulatorReader.for_image(argument)
    if kind == "pcsc":
        from .pcsc import pcsc_reader

        return pcsc_reader(argument or None)
    raise NoReaderError(f"unknown reader spec {spec!r}: use sim:DIR, pcsc or pcsc:NAME")
