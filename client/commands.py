"""Card commands as a host sends them: ISO 7816-4 SELECT, READ BINARY, VERIFY and friends.

Each function builds the APDU, exchanges it through a ``CardConnection`` and turns
the status word into a return value or a ``CardCommandError``.
"""

from __future__ import annotations

from ..errors import MynacardError
from ..iso7816.apdu import CommandAPDU, ResponseAPDU
from ..iso7816.sw import SW, describe
from ..iso7816.tlv import TLVError, ber_read_header
from ..readers.base import CardConnection

MAX_SHORT_LE = 256


class CardCommandError(MynacardError):
    """The card refused a command; ``sw`` is its status word."""

    def __init__(self, what: str, sw: int) -> None:
        super().__init__(f"{what}: card answered {sw:04X} ({describe(sw)})")
        self.sw = sw


class CardDataError(MynacardError):
    """What the card returned is malformed (wrong tag, truncated, bad field)."""

    headline = "unreadable card data"


class WrongPinError(CardCommandError):
    """VERIFY failed; ``tries_left`` attempts remain (0: now blocked)."""

    def __init__(self, what: str, sw: int) -> None:
        super().__init__(what, sw)
        self.tries_left = sw & 0x0F


class PinBlockedError(CardCommandError):
    """The PIN is blocked (``6984``); only the issuing municipality can unblock it."""


class PinFormatError(MynacardError, ValueError):
    """A PIN that no card PIN can be (refused before it reaches the card, costing no try)."""


MAX_PIN_CHARS = 16
"""The longest PIN or password of any application on the card (the signing password)."""


def pin_bytes(pin: str, what: str = "PIN") -> bytes:
    """``pin`` as VERIFY carries it: printable ASCII, 1 to ``MAX_PIN_CHARS`` characters."""
    if not pin.isascii() or not pin.isprintable():
        raise PinFormatError(f"{what}: must be printable ASCII (half-width letters and digits)")
    if not 1 <= len(pin) <= MAX_PIN_CHARS:
        raise PinFormatError(f"{what}: must be 1 to {MAX_PIN_CHARS} characters, not {len(pin)}")
    return pin.encode("ascii")


def call(connection: CardConnection, apdu: CommandAPDU, what: str) -> ResponseAPDU:
    response = connection.transmit(apdu)
    if not response.ok:
        raise CardCommandError(what, response.sw)
    return response


def select_df(connection: CardConnection, aid: bytes) -> None:
    call(connection, CommandAPDU(0x00, 0xA4, 0x04, 0x0C, aid), f"SELECT DF {aid.hex().upper()}")


def select_ef(connection: CardConnection, fid: int) -> None:
    call(connection, CommandAPDU(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big")),
         f"SELECT EF {fid:04X}")


def read_binary(connection: CardConnection, offset: int, length: int) -> bytes:
    if not 0 <= offset <= 0x7FFF:
        raise ValueError(f"offset {offset} does not fit READ BINARY's 15 bits")
    return call(connection, CommandAPDU(0x00, 0xB0, offset >> 8, offset & 0xFF, le=length),
                f"READ BINARY at {offset}").data


def read_tlv_object(connection: CardConnection, what: str = "EF") -> bytes:
    """Read the BER-TLV object at the start of the current EF, as real clients do: read the
    header, then exactly the length it announces (the filler after it stays unread)."""
    head = read_binary(connection, 0, 8)
    try:
        header = ber_read_header(head)
    except TLVError as exc:
        raise CardDataError(f"{what} does not start with a BER-TLV object ({exc})") from None
    data = head
    while len(data) < header.total_length:
        wanted = min(MAX_SHORT_LE, header.total_length - len(data))
        chunk = read_binary(connection, len(data), wanted)
        if not chunk:
            raise CardDataError(f"{what} ends before its TLV object does")
        data += chunk
    return data[:header.total_length]


def verify(connection: CardConnection, pin: bytes, what: str = "VERIFY") -> None:
    response = connection.transmit(CommandAPDU(0x00, 0x20, 0x00, 0x80, pin))
    if response.ok:
        return
    if response.sw & 0xFFF0 == 0x63C0:
        raise WrongPinError(what, response.sw)
    if response.sw == SW.AUTH_METHOD_BLOCKED:
        raise PinBlockedError(what, response.sw)
    raise CardCommandError(what, response.sw)


def pin_tries_left(connection: CardConnection) -> int:
    """Tries left on the current PIN EF, by an empty VERIFY (consumes nothing)."""
    response = connection.transmit(CommandAPDU(0x00, 0x20, 0x00, 0x80))
    if response.sw & 0xFFF0 == 0x63C0:
        return response.sw & 0x0F
    raise CardCommandError("VERIFY (retry query)", response.sw)


def change_reference_data(connection: CardConnection, new_pin: bytes) -> None:
    call(connection, CommandAPDU(0x00, 0x24, 0x01, 0x80, new_pin), "CHANGE REFERENCE DATA")
