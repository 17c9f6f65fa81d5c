"""The two TLV encodings found on the card, kept apart on purpose.

* BER-TLV (ISO/IEC 8825-1): multi-byte tags, definite lengths in short or long
  form. ``ber_encode`` writes minimal (DER) lengths, for the GlobalPlatform and
  X.509 objects; ``card_record_encode`` writes lengths the way the My Number card
  writes its records (private-class tags ``DF xx``/``FF xx`` of the 券面 APs, CV
  certificates): short form up to 127, ``82 HH LL`` from 128 on, never ``81``.
* SIMPLE-TLV (ISO/IEC 7816-4 §5.2.1): one-byte tag, one-byte length (or ``FF``
  followed by two bytes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import MynacardError


class TLVError(MynacardError, ValueError):
    """Malformed TLV bytes."""


@dataclass(frozen=True, slots=True)
class BerHeader:
    tag: int
    header_length: int
    value_length: int

    @property
    def total_length(self) -> int:
        return self.header_length + self.value_length


def ber_read_header(buf: bytes, offset: int = 0) -> BerHeader:
    """Decode the tag and definite length starting at ``offset``."""
    pos = offset
    try:
        first = buf[pos]
        tag = first
        pos += 1
        if first & 0x1F == 0x1F:
            while True:
                b = buf[pos]
                tag = (tag << 8) | b
                pos += 1
                if not b & 0x80:
                    break
                if pos - offset > 4:
                    raise TLVError("tag longer than 4 bytes")
        lb = buf[pos]
        pos += 1
        if lb < 0x80:
            length = lb
        elif lb == 0x80:
            raise TLVError("indefinite length is not allowed")
        else:
            n = lb & 0x7F
            if n > 4:
                raise TLVError(f"length of {n} bytes is not supported")
            if pos + n > len(buf):
                raise TLVError("length field is truncated")
            length = int.from_bytes(buf[pos:pos + n], "big")
            pos += n
    except IndexError:
        raise TLVError("TLV header is truncated") from None
    return BerHeader(tag, pos - offset, length)


def ber_encode_length(length: int) -> bytes:
    """Minimal (DER) definite length."""
    if length < 0:
        raise ValueError("negative length")
    if length < 0x80:
        return bytes((length,))
    n = (length.bit_length() + 7) // 8
    return bytes((0x80 | n,)) + length.to_bytes(n, "big")


def _tag_bytes(tag: int) -> bytes:
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def ber_encode(tag: int, value: bytes) -> bytes:
    """A TLV with a minimal (DER) length: for GP and X.509 objects, not for card records."""
    return _tag_bytes(tag) + ber_encode_length(len(value)) + value


CARD_RECORD_LENGTH_MAX = 0xFFFF
"""``82 HH LL`` is the longest length form the card writes (no record exceeds 64 KiB)."""


def card_record_length(length: int) -> bytes:
    """A length as the card writes it: one byte up to 127, ``82 HH LL`` from 128 on.

    Real cards write ``FF 40 82 00 9F``, ``DF 43 82 00 80`` and ``FF 20 82 00 86`` where
    ``81`` would do, and short ``FF 20 65`` below 128. Clients depend on both halves:
    lanesky/mnbcard and an Android sample hard-code the 5-byte ``FF 20 82 HH LL`` header,
    jpki/myna's asn1 fork rejects long forms below 128 as non-minimal.
    """
    if length < 0:
        raise ValueError("negative length")
    if length < 0x80:
        return bytes((length,))
    if length > CARD_RECORD_LENGTH_MAX:
        raise ValueError(f"a card record length is at most {CARD_RECORD_LENGTH_MAX}, "
                         f"not {length}")
    return b"\x82" + length.to_bytes(2, "big")


def card_record_encode(tag: int, value: bytes) -> bytes:
    """A BER-TLV of a card record (券面 AP records, CV certificates, card keys): the one
    encoder of every object the card itself holds, lengths per ``card_record_length``."""
    return _tag_bytes(tag) + card_record_length(len(value)) + value


def ber_iter(buf: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield (tag, value) for each BER-TLV in ``buf``; trailing ``FF``/``00`` filler ends it."""
    pos = 0
    while pos < len(buf):
        if buf[pos] in (0x00, 0xFF) and all(b == buf[pos] for b in buf[pos:]):
            return
        header = ber_read_header(buf, pos)
        end = pos + header.total_length
        if end > len(buf):
            raise TLVError(f"value of tag {header.tag:X} runs past the end of the data")
        yield header.tag, bytes(buf[pos + header.header_length:end])
        pos = end


def simple_encode(tag: int, value: bytes) -> bytes:
    if not 0x01 <= tag <= 0xFE:
        raise ValueError("SIMPLE-TLV tags are 01-FE")
    n = len(value)
    if n < 0xFF:
        return bytes((tag, n)) + value
    if n <= 0xFFFF:
        return bytes((tag, 0xFF)) + n.to_bytes(2, "big") + value
    raise ValueError("SIMPLE-TLV value longer than 65535 bytes")


def simple_iter(buf: bytes) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while pos < len(buf):
        if pos + 2 > len(buf):
            raise TLVError("SIMPLE-TLV header is truncated")
        tag, n = buf[pos], buf[pos + 1]
        pos += 2
        if n == 0xFF:
            if pos + 2 > len(buf):
                raise TLVError("SIMPLE-TLV length is truncated")
            n = int.from_bytes(buf[pos:pos + 2], "big")
            pos += 2
        if pos + n > len(buf):
            raise TLVError(f"value of tag {tag:02X} runs past the end of the data")
        yield tag, bytes(buf[pos:pos + n])
        pos += n
