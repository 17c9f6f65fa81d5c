"""How a handler ends a command with a status word other than 9000."""

from __future__ import annotations


class StatusError(Exception):
    """Raised inside the card to answer ``sw`` (no data); never escapes ``transmit``."""

    __slots__ = ("sw",)

    def __init__(self, sw: int) -> None:
        super().__init__(f"SW {sw:04X}")
        self.sw = sw
