"""The reader interface every back end implements.

Host code (clients, apps, the CLI) talks to cards only through these two
abstract classes, so it runs unchanged on the in-process simulator, on the
simulator behind pcscd, and on a real card in a real reader.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..errors import MynacardError
from ..iso7816.apdu import APDUFormatError, CommandAPDU, ResponseAPDU


class ReaderError(MynacardError):
    """Base of every reader-layer failure."""


class NoReaderError(ReaderError):
    """No reader matches the request."""


class NoCardError(ReaderError):
    """The reader holds no card."""


class CardRemovedError(ReaderError):
    """The card was removed (or reset by someone else) while connected."""


class TransmitError(ReaderError):
    """The APDU could not be exchanged with the card."""


def _with_short_le(raw: bytes, le: int) -> bytes | None:
    """``raw`` resent with the Le a ``6Cxx`` asked for; None when it has no short Le to fix
    (a data byte of a command without Le must never be overwritten)."""
    try:
        apdu = CommandAPDU.parse(raw)
    except APDUFormatError:
        return None
    if apdu.le is None or apdu.extended:
        return None
    return raw[:-1] + bytes((le,))


class CardConnection(ABC):
    """An open session with one card."""

    @property
    @abstractmethod
    def atr(self) -> bytes: ...

    @abstractmethod
    def transmit_raw(self, command: bytes) -> bytes:
        """Send one command APDU; return response data + SW1 SW2 as the card sent them."""

    @abstractmethod
    def reset(self) -> bytes:
        """Warm-reset the card (clears its security state); return the ATR."""

    @abstractmethod
    def disconnect(self) -> None: ...

    def transmit(self, command: CommandAPDU | bytes) -> ResponseAPDU:
        """Exchange an APDU, following ``61xx`` (GET RESPONSE) and ``6Cxx`` (wrong Le)."""
        raw = command.encode() if isinstance(command, CommandAPDU) else bytes(command)
        response = ResponseAPDU.parse(self.transmit_raw(raw))
        if response.sw1 == 0x6C and (corrected := _with_short_le(raw, response.sw2)):
            response = ResponseAPDU.parse(self.transmit_raw(corrected))
        if response.sw1 != 0x61:
            return response
        data = bytearray(response.data)
        while response.sw1 == 0x61:
            get_response = bytes((raw[0] & 0x03, 0xC0, 0x00, 0x00, response.sw2))
            response = ResponseAPDU.parse(self.transmit_raw(get_response))
            data += response.data
        return ResponseAPDU(bytes(data), response.sw)

    def __enter__(self) -> CardConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()


class Reader(ABC):
    """A slot a card can be in."""

    name: str
    cuts_power_mid_write: bool = False
    """True when the back end can cut the card's power in the middle of a memory write
    (only the in-process simulator): what fault injection's ``tear`` needs."""

    @abstractmethod
    def card_present(self) -> bool: ...

    @abstractmethod
    def connect(self) -> CardConnection:
        """Power the card and open a connection; NoCardError if the slot is empty."""
