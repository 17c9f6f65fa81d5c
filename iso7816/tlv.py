"""The two TLV encodings found on the card, kept apart on purpose.

* BER-TLV (ISO/IEC 8825-1): multi-byte tags, definite lengths in short or long
  form. The 券面 APs use private-class tags (``DF xx``, ``FF xx``) and long-form
  lengths even where short would do, so the encoder lets callers force them.
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


def ber_encode_length(length: int, long_form_bytes: int = 0) -> bytes:
    """Definite length; ``long_form_bytes`` forces the ``8n`` form with n bytes."""
    if length < 0:
        raise ValueError("negative length")
    if long_form_bytes:
        if length >= 1 << (8 * long_form_bytes):
            raise ValueError(f"{length} does not fit {long_form_bytes} length bytes")
        return bytes((0x80 | long_form_bytes,)) + length.to_bytes(long_form_bytes, "big")
    if length < 0x80:
        return bytes((length,))
    n = (length.bit_length() + 7) // 8
    return bytes((0x80 | n,)) + length.to_bytes(n, "big")


def ber_encode(tag: int, value: bytes, long_form_bytes: int = 0) -> bytes:
    tag_bytes = tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")
    return tag_bytes + ber_encode_length(len(value), long_form_bytes) + value


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
