"""券面事項確認AP (card-face confirmation), AID D3 92 10 00 31 00 01 01 04 02 (facts §5).

Files and access at a glance (``FILES`` below is the authority):

====  ====================================================  ===========================
EF    content                                               read after VERIFY of
====  ====================================================  ===========================
0001  age record ``FF 10`` {DF11 birth, DF12 key, DF13 sig}   生年月日 key 0011
0002  card face ``FF 20`` {DF21 offsets, DF22..DF2A} + FF     照合番号A 0013 or B 0012
0003  AP basic info ``FF 30`` {DF31..DF35}                    free
0004  CV certificate ``7F 21``                                free
0005  個人番号 image ``FF 40`` {DF41 PNG, DF42 key, DF43 sig}  照合番号A 0013
0006  unknown (16 × FF)                                       照合番号A or B
0011  生年月日 key: birth YYMMDD in era years
0012  照合番号B, 0013 照合番号A
001A  the AP's own key: ``80 2A 00 00`` signs with it, no credential needed
001C  key reference, purpose unknown: selectable; READ BINARY / VERIFY ``6981``
001E  key reference, purpose unknown: selectable; READ BINARY / VERIFY ``6981``
====  ====================================================  ===========================

Signatures (RSASSA-PKCS1-v1_5, by the municipality key certified in EF 0004): ``0001`` and
``0005`` over every TLV before the signature; ``0002`` over a SHA-256 DigestInfo whose
"digest" is the 96-byte concatenation SHA-256(DF22‖DF23‖DF24) ‖ SHA-256(DF25‖DF26) ‖
SHA-256(DF27) — DF29 (expiry) and DF2A (security-code image) are not covered.

Every record's lengths follow the card's one rule (``iso7816.tlv.card_record_encode``):
short form up to 127, ``82 HH LL`` from 128 — so a small security-code PNG is ``DF 2A 6E``,
never ``DF 2A 82 00 6E`` (jpki/myna rejects long forms below 128 as non-minimal).

001C and 001E exist on the real card (AokiApp/jsapdu ``UNKNOWN_1C``/``UNKNOWN_1E``) but
nothing about them is published: modelled as unusable key references.

Choices where the facts are silent: the retry limits of the three keys (``cardsim.pin``);
DF35 carries a simulator key ID and 256 random bytes (its meaning is unknown).
"""

from __future__ import annotations

import datetime as dt

from cryptography.hazmat.primitives.asymmetric import rsa

from ..facts.cvc import CVCAuthority, KeyId, encode_public_key
from ..facts.pins import BIRTH_KEY, CODE_A, CODE_B
from ..facts.visual import (
    AID,
    EF_AGE,
    EF_AP_INFO,
    EF_AP_KEY,
    EF_BIRTH_KEY,
    EF_CERTIFICATE,
    EF_CODE_A,
    EF_CODE_B,
    EF_FACE,
    EF_NUMBER_IMAGE,
    EF_UNKNOWN,
    FACE_TAGS,
    FILLER,
    TAG_ADDRESS_IMAGE,
    TAG_AGE,
    TAG_AGE_BIRTH,
    TAG_AGE_KEY,
    TAG_AGE_SIGNATURE,
    TAG_AP_INFO,
    TAG_BIRTH_DATE,
    TAG_CARD_KEY,
    TAG_EXPIRY,
    TAG_FACE,
    TAG_FACE_SIGNATURE,
    TAG_NAME_IMAGE,
    TAG_NUMBER_IMAGE,
    TAG_NUMBER_KEY,
    TAG_NUMBER_PNG,
    TAG_NUMBER_SIGNATURE,
    TAG_OFFSETS,
    TAG_PHOTO,
    TAG_SECURITY_CODE_IMAGE,
    TAG_SEX,
    CardFace,
    face_digest_info,
)
from ..iso7816.sw import SW
from ..iso7816.tlv import CARD_RECORD_LENGTH_MAX, card_record_encode
from .application import CLA_PROPRIETARY, INS_COMPUTE_DIGITAL_SIGNATURE, Application
from .files import ALWAYS, BinaryEF, KeyEF, KeyReferenceEF, KeyUsage, PinEF, after_verify
from .signing import raw_pkcs1_v15_sign


class VisualApplication(Application):
    NAME = "visual"
    AID = AID
    FILES = {
        EF_AGE: BinaryEF("年齢確認 record", read=after_verify(EF_BIRTH_KEY)),
        EF_FACE: BinaryEF("券面 record", read=after_verify(EF_CODE_A, EF_CODE_B)),
        EF_AP_INFO: BinaryEF("AP basic info", read=ALWAYS),
        EF_CERTIFICATE: BinaryEF("CV certificate of the signing key", read=ALWAYS),
        EF_NUMBER_IMAGE: BinaryEF("個人番号 image record", read=after_verify(EF_CODE_A)),
        EF_UNKNOWN: BinaryEF("16 × FF; purpose unknown", read=after_verify(EF_CODE_A, EF_CODE_B)),
        EF_BIRTH_KEY: PinEF(BIRTH_KEY, changeable=False),
        EF_CODE_B: PinEF(CODE_B, changeable=False),
        EF_CODE_A: PinEF(CODE_A, changeable=False),
        EF_AP_KEY: KeyEF("AP key", use=ALWAYS, usage=frozenset({KeyUsage.DEFAULT_SIGNATURE})),
        # Exist on the real card (jsapdu lists them); purpose unknown, so unusable here.
        0x001C: KeyReferenceEF("key reference, purpose unknown"),
        0x001E: KeyReferenceEF("key reference, purpose unknown"),
    }
    DEFAULT_KEY = EF_AP_KEY
    SESSION_KEY_REFUSAL = SW.SECURITY_ENVIRONMENT_FAULT
    INSTRUCTIONS = {
        **Application.INSTRUCTIONS,
        (CLA_PROPRIETARY, INS_COMPUTE_DIGITAL_SIGNATURE): Application.compute_digital_signature,
    }


# -- record encoders (issuance) -------------------------------------------------------------

AP_IDENTIFICATION = bytes.fromhex("06030E01")
AP_INFO_KEY_ID = KeyId("9000024")
"""DF32: a key ID whose purpose is unknown (``…24`` on real cards); simulator-prefixed."""
REFERENCE_KEY_ID = KeyId("9000025")
"""First 16 bytes of DF35, whose meaning is unknown."""
AP_VERSION = 0x01


def age_ef(birth_date: dt.date, card_key: rsa.RSAPublicKey, signer: CVCAuthority) -> bytes:
    signed = (card_record_encode(TAG_AGE_BIRTH, f"{birth_date:%Y%m%d}".encode("ascii"))
              + card_record_encode(TAG_AGE_KEY, encode_public_key(card_key)))
    signature = card_record_encode(TAG_AGE_SIGNATURE, signer.sign(signed))
    return card_record_encode(TAG_AGE, signed + signature)


def face_ef(face: CardFace, card_key: rsa.RSAPublicKey, signer: CVCAuthority) -> bytes:
    """EF 0002: the card-face record, its signature made the way the card's issuer makes it."""
    def ascii_date(day: dt.date) -> bytes:
        return f"{day:%Y%m%d}".encode("ascii")

    tlvs = {
        TAG_BIRTH_DATE: card_record_encode(TAG_BIRTH_DATE, ascii_date(face.birth_date)),
        TAG_SEX: card_record_encode(TAG_SEX, face.sex.encode("ascii")),
        TAG_CARD_KEY: card_record_encode(TAG_CARD_KEY, encode_public_key(card_key)),
        TAG_NAME_IMAGE: card_record_encode(TAG_NAME_IMAGE, face.name_png),
        TAG_ADDRESS_IMAGE: card_record_encode(TAG_ADDRESS_IMAGE, face.address_png),
        TAG_PHOTO: card_record_encode(TAG_PHOTO, face.photo_jp2),
        TAG_EXPIRY: card_record_encode(TAG_EXPIRY, ascii_date(face.expiry)),
        TAG_SECURITY_CODE_IMAGE: card_record_encode(TAG_SECURITY_CODE_IMAGE,
                                                    face.security_code_png),
    }
    tlvs[TAG_FACE_SIGNATURE] = card_record_encode(
        TAG_FACE_SIGNATURE, raw_pkcs1_v15_sign(signer.key, face_digest_info(tlvs)))
    # The offsets count from the file start, so the outer header's size comes first; it
    # depends only on the body's length, which the (fixed-size) table does not change.
    table_tlv_length = len(card_record_encode(TAG_OFFSETS, bytes(2 * len(FACE_TAGS))))
    body_length = table_tlv_length + sum(len(tlvs[t]) for t in FACE_TAGS)
    if body_length > CARD_RECORD_LENGTH_MAX:
        raise ValueError(f"card face record of {body_length} bytes exceeds the 16-bit "
                         "offset table")
    pos = len(card_record_encode(TAG_FACE, bytes(body_length))) - body_length + table_tlv_length
    offsets = b""
    for tag in FACE_TAGS:
        offsets += pos.to_bytes(2, "big")
        pos += len(tlvs[tag])
    body = card_record_encode(TAG_OFFSETS, offsets) + b"".join(tlvs[t] for t in FACE_TAGS)
    return face_filler(card_record_encode(TAG_FACE, body))


FACE_PAGE = 256
"""The page an Android sample reads the face EF in (``00 B0 <i> 00 00``)."""


def face_filler(record: bytes) -> bytes:
    """The face EF's physical content: the record, then FF filler up to the next whole
    256-byte page, at least one byte of it.

    A client (an Android sample, ``readVisualFileBinary``) reads pages ``00 B0 i 00 00``
    until the last byte of a page is FF, so the page holding the record's end (or the one
    after it, when the record ends on a page boundary) must end in FF; the EF size of a
    real card is not published, this is the smallest that satisfies that reader.
    """
    filler = FACE_PAGE - len(record) % FACE_PAGE
    return record + bytes((FILLER,)) * filler


def ap_info_ef(municipality_code: str, reference: bytes) -> bytes:
    if len(reference) != 256:
        raise ValueError("the DF35 block is 256 bytes after its key ID")
    return card_record_encode(
        TAG_AP_INFO, card_record_encode(0xDF31, AP_IDENTIFICATION)
        + card_record_encode(0xDF32, AP_INFO_KEY_ID.encode())
        + card_record_encode(0xDF33, bytes((AP_VERSION,)))
        + card_record_encode(0xDF34, municipality_code.encode("ascii"))
        + card_record_encode(0xDF35, REFERENCE_KEY_ID.encode() + reference))


def number_image_ef(png: bytes, card_key: rsa.RSAPublicKey, signer: CVCAuthority) -> bytes:
    signed = (card_record_encode(TAG_NUMBER_PNG, png)
              + card_record_encode(TAG_NUMBER_KEY, encode_public_key(card_key)))
    signature = card_record_encode(TAG_NUMBER_SIGNATURE, signer.sign(signed))
    return card_record_encode(TAG_NUMBER_IMAGE, signed + signature)
