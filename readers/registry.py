"""Reader specs on the command line: ``sim:DIR``, ``pcsc``, ``pcsc:NAME``."""

from __future__ import annotations

from readers.base import NoReaderError, Reader


def open_reader(spec: str) -> Reader:
    """The reader a spec names: ``pcsc`` is the first PC/SC reader holding a card."""
    kind, _, arg = spec.partition(":")
    if kind == "pcsc":
        from readers.pcsc import open_pcsc_reader

        return open_pcsc_reader(arg or None)
    raise NoReaderError(f"unknown reader spec {spec!r} (expected sim:DIR, pcsc or pcsc:NAME)")
