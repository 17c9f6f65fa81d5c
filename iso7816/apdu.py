"""Command and response APDUs (ISO/IEC 7816-3 cases 1-4, short and extended).

``CommandAPDU.parse`` is the card's view: it never raises anything but
``APDUFormatError``, which carries the status word the card answers.
``CommandAPDU.encode`` is the host's view.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import MynacardError
from .sw import SW

SHORT_LE_MAX = 256
EXTENDED_LE_MAX = 65536


class APDUFormatError(MynacardError, ValueError):
    """The bytes are not a well-formed command APDU; ``sw`` is the card's answer."""

    def __init__(self, message: str, sw: int = SW.WRONG_LENGTH) -> None:
        super().__init__(message)
        self.sw = sw


@dataclass(frozen=True, slots=True)
class CommandAPDU:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    """Expected response length; None means no Le field (cases 1 and 3)."""
    extended: bool = False

    def __post_init__(self) -> None:
        if not (0 <= self.cla <= 0xFF and 0 <= self.ins <= 0xFF and 0 <= self.p1 <= 0xFF
                and 0 <= self.p2 <= 0xFF):
            raise ValueError("CLA, INS, P1 and P2 must each be one byte")
        if len(self.data) >= EXTENDED_LE_MAX:
            raise ValueError(f"{len(self.data)} data bytes do not fit an APDU")
        if self.le is not None and not 1 <= self.le <= EXTENDED_LE_MAX:
            raise ValueError(f"Le must be 1..{EXTENDED_LE_MAX}")

    @property
    def p1p2(self) -> int:
        return (self.p1 << 8) | self.p2

    @classmethod
    def parse(cls, raw: bytes) -> CommandAPDU:
        n = len(raw)
        if n < 4:
            raise APDUFormatError(f"{n} bytes is shorter than a command header")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        if n == 4:
            return cls(cla, ins, p1, p2)
        b5 = raw[4]
        if n == 5:
            return cls(cla, ins, p1, p2, b"", b5 or SHORT_LE_MAX)
        if b5:
            if n == 5 + b5:
                return cls(cla, ins, p1, p2, bytes(raw[5:]))
            if n == 6 + b5:
                return cls(cla, ins, p1, p2, bytes(raw[5:-1]), raw[-1] or SHORT_LE_MAX)
            raise APDUFormatError(f"Lc={b5} does not match a {n}-byte APDU")
        if n < 7:
            raise APDUFormatError("extended length field is truncated")
        ext = (raw[5] << 8) | raw[6]
        if n == 7:
            return cls(cla, ins, p1, p2, b"", ext or EXTENDED_LE_MAX, extended=True)
        if ext == 0:
            raise APDUFormatError("extended Lc of zero")
        if n == 7 + ext:
            return cls(cla, ins, p1, p2, bytes(raw[7:]), extended=True)
        if n == 9 + ext:
            le = (raw[-2] << 8) | raw[-1]
            return cls(cla, ins, p1, p2, bytes(raw[7:-2]), le or EXTENDED_LE_MAX, extended=True)
        raise APDUFormatError(f"extended Lc={ext} does not match a {n}-byte APDU")

    def encode(self) -> bytes:
        header = bytes((self.cla, self.ins, self.p1, self.p2))
        if not self.data and self.le is None:
            return header
        extended = self.extended or len(self.data) > 255 or (self.le or 0) > SHORT_LE_MAX
        if not extended:
            body = bytes((len(self.data),)) + self.data if self.data else b""
            if self.le is not None:
                body += bytes((self.le & 0xFF,))
            return header + body
        body = b"\x00"
        if self.data:
            body += len(self.data).to_bytes(2, "big") + self.data
        if self.le is not None:
            body += (self.le & 0xFFFF).to_bytes(2, "big")
        return header + body


@dataclass(frozen=True, slots=True)
class ResponseAPDU:
    data: bytes
    sw: int

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    @property
    def ok(self) -> bool:
        return self.sw == SW.OK

    @classmethod
    def parse(cls, raw: bytes) -> ResponseAPDU:
        if len(raw) < 2:
            raise APDUFormatError(f"a response needs a status word, got {len(raw)} bytes")
        return cls(bytes(raw[:-2]), (raw[-2] << 8) | raw[-1])

    def encode(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")
