"""券面事項確認AP (card-face confirmation): identifiers and record layouts (facts §5).

The card-face record, as the card writes it and a host reads it::

    EF 0002  FF 20 { DF21 offsets of DF22..DF2A from the file start (9 × 2 bytes),
                     DF22 birth YYYYMMDD, DF23 sex, DF24 card public key, DF25 name PNG,
                     DF26 address PNG, DF27 photo JP2, DF28 signature, DF29 expiry YYYYMMDD,
                     DF2A security-code PNG }

DF28 signs (raw RSASSA-PKCS1-v1_5) a SHA-256 DigestInfo whose "digest" is the 96-byte
concatenation of the digests of ``SIGNED_GROUPS``; DF29 and DF2A are not covered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from .cvc import concatenated_digest_info

AID = bytes.fromhex("D3921000310001010402")
LABEL = "券面事項確認AP"

EF_AGE = 0x0001
EF_FACE = 0x0002
EF_AP_INFO = 0x0003
EF_CERTIFICATE = 0x0004
EF_NUMBER_IMAGE = 0x0005
EF_UNKNOWN = 0x0006
EF_BIRTH_KEY = 0x0011
EF_CODE_B = 0x0012
EF_CODE_A = 0x0013
EF_AP_KEY = 0x001A

TAG_AGE = 0xFF10
TAG_AGE_BIRTH, TAG_AGE_KEY, TAG_AGE_SIGNATURE = 0xDF11, 0xDF12, 0xDF13
TAG_FACE = 0xFF20
TAG_OFFSETS = 0xDF21
TAG_BIRTH_DATE, TAG_SEX, TAG_CARD_KEY = 0xDF22, 0xDF23, 0xDF24
TAG_NAME_IMAGE, TAG_ADDRESS_IMAGE, TAG_PHOTO = 0xDF25, 0xDF26, 0xDF27
TAG_FACE_SIGNATURE, TAG_EXPIRY, TAG_SECURITY_CODE_IMAGE = 0xDF28, 0xDF29, 0xDF2A
TAG_AP_INFO = 0xFF30
TAG_NUMBER_IMAGE = 0xFF40
TAG_NUMBER_PNG, TAG_NUMBER_KEY, TAG_NUMBER_SIGNATURE = 0xDF41, 0xDF42, 0xDF43

FACE_TAGS = tuple(range(TAG_BIRTH_DATE, TAG_SECURITY_CODE_IMAGE + 1))
"""DF22..DF2A, in file order (the offset table lists them in this order)."""
SIGNED_GROUPS = ((TAG_BIRTH_DATE, TAG_SEX, TAG_CARD_KEY), (TAG_NAME_IMAGE, TAG_ADDRESS_IMAGE),
                 (TAG_PHOTO,))
"""Each group's TLVs are hashed together; DF28 signs the three digests."""

FILLER = 0xFF
"""What follows the face record in its EF (an Android sample reads pages until one ends FF)."""
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JP2_MAGIC = b"\x00\x00\x00\x0cjP  \r\n\x87\n"


@dataclass(frozen=True, slots=True)
class CardFace:
    """What the card face shows, the same value on both sides of the wire."""

    birth_date: dt.date
    sex: str
    """One ISO 5218 digit."""
    expiry: dt.date
    name_png: bytes
    address_png: bytes
    photo_jp2: bytes
    security_code_png: bytes


def face_digest_info(tlvs: dict[int, bytes]) -> bytes:
    """The signed payload of EF 0002, from the fields' TLVs (header included)."""
    digest = b"".join(hashlib.sha256(b"".join(tlvs[t] for t in group)).digest()
                      for group in SIGNED_GROUPS)
    return concatenated_digest_info(digest)
