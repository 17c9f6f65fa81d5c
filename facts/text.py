"""券面事項入力補助AP (card-info input support): identifiers and record layouts (facts §4).

The 基本4情報 record, as the card writes it and a host reads it::

    EF 0002  FF 20 { DF21 offsets of DF22..DF25 from the file start (4 × 2 bytes),
                     DF22 name (UTF-8), DF23 address (UTF-8), DF24 birth YYYYMMDD, DF25 sex }

Lengths as the card writes them (``card_record_encode``): short form up to 127 bytes,
``82 HH LL`` from 128 — a record of 128-255 bytes starts ``FF 20 82 00 LL``, never
``FF 20 81 LL`` (lanesky/mnbcard reads the DF21 offsets at file bytes 8-15).

DF32 of the integrity record (EF 0003) is SHA-256 over DF22..DF25 (the offset table
skipped); DF31 over all of EF 0001 (``FF 10 0C`` + 12 digits + ``FF FF``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..iso7816.tlv import card_record_encode

AID = bytes.fromhex("D3921000310001010408")
LABEL = "券面事項入力補助AP"

EF_MY_NUMBER = 0x0001
EF_ATTRIBUTES = 0x0002
EF_INTEGRITY = 0x0003
EF_CERTIFICATE = 0x0004
EF_AP_INFO = 0x0005
EF_SESSION_KEY = 0x0006
EF_SIGNED_KEY = 0x0007
EF_PIN = 0x0011
EF_BLOCKED = 0x0012
EF_AP_KEY = 0x0013
EF_CODE_A = 0x0014
EF_CODE_B = 0x0015

TAG_MY_NUMBER = 0xFF10
TAG_ATTRIBUTES = 0xFF20
TAG_OFFSETS = 0xDF21
TAG_NAME, TAG_ADDRESS, TAG_BIRTH_DATE, TAG_SEX = 0xDF22, 0xDF23, 0xDF24, 0xDF25
TAG_INTEGRITY = 0xFF30
TAG_MY_NUMBER_DIGEST, TAG_ATTRIBUTES_DIGEST, TAG_INTEGRITY_SIGNATURE = 0xDF31, 0xDF32, 0xDF33
TAG_AP_INFO = 0xFF40
TAG_SIGNED_KEY = 0xFF50
TAG_SIGNED_KEY_PUBLIC, TAG_SIGNED_KEY_SIGNATURE = 0xDF51, 0xDF52

MY_NUMBER_FILLER = b"\xff\xff"
AP_INFO_EF_SIZE = 256
"""EF 0005 is 256 bytes, the ``FF 40`` TLV then ``FF`` filler: jpki/myna ``text info`` reads
``00 B0 00 00 00`` and pymyna ``00 B0 00 00 00 01 00``, and both reject any other size."""
FILLER = 0xFF


def my_number_ef(number: str) -> bytes:
    """EF 0001: 17 bytes, the TLV then two filler bytes the integrity digest covers."""
    if len(number) != 12 or not number.isascii() or not number.isdigit():
        raise ValueError("a 個人番号 is 12 ASCII digits")
    return card_record_encode(TAG_MY_NUMBER, number.encode()) + MY_NUMBER_FILLER


@dataclass(frozen=True, slots=True)
class BasicFour:
    """基本4情報, the same value on both sides of the wire."""

    name: str
    """Family and given name separated by U+3000."""
    address: str
    birth_date: dt.date
    """Written on the card as ``YYYYMMDD`` (Gregorian)."""
    sex: str
    """One ISO 5218 digit: 1 male, 2 female, 9 not applicable, 0 unknown."""

    def _values(self) -> tuple[tuple[int, bytes], ...]:
        return ((TAG_NAME, self.name.encode("utf-8")),
                (TAG_ADDRESS, self.address.encode("utf-8")),
                (TAG_BIRTH_DATE, f"{self.birth_date:%Y%m%d}".encode("ascii")),
                (TAG_SEX, self.sex.encode("ascii")))

    def fields(self) -> bytes:
        """DF22..DF25: what DF32 of the integrity record hashes."""
        return b"".join(card_record_encode(tag, value) for tag, value in self._values())

    def encode(self) -> bytes:
        """EF 0002: ``FF 20`` {DF21 offsets of DF22..DF25 from the file start, DF22..DF25}."""
        fields = self.fields()
        table_tlv_length = 2 + 1 + 8
        inner_length = table_tlv_length + len(fields)
        outer_header = len(card_record_encode(TAG_ATTRIBUTES, bytes(inner_length))) - inner_length
        offsets, pos = b"", outer_header + table_tlv_length
        for tag, value in self._values():
            if pos > 0xFFFF:
                raise ValueError("基本4情報 too long for the 2-byte offsets of DF21")
            offsets += pos.to_bytes(2, "big")
            pos += len(card_record_encode(tag, value))
        return card_record_encode(TAG_ATTRIBUTES, card_record_encode(TAG_OFFSETS, offsets) + fields)
