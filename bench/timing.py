"""What several benchmarks share: a connection that adds up the time the card takes, so a
figure can be split into the card's share and the host's."""

from __future__ import annotations

import time

from mynacard.readers.base import CardConnection


class TimedConnection(CardConnection):
    """Passes APDUs through and adds up the time the card took."""

    def __init__(self, inner: CardConnection) -> None:
        self.inner = inner
        self.seconds = 0.0

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    def transmit_raw(self, command: bytes) -> bytes:
        start = time.perf_counter()
        try:
            return self.inner.transmit_raw(command)
        finally:
            self.seconds += time.perf_counter() - start

    def reset(self) -> bytes:
        return self.inner.reset()

    def disconnect(self) -> None:
        self.inner.disconnect()
