"""券面事項入力補助AP (card-info input support), AID D3 92 10 00 31 00 01 01 04 08 (facts §4).

Files and access at a glance (``FILES`` below is the authority):

====  ==========================================  =====================================
EF    content                                     read after VERIFY of
====  ==========================================  =====================================
0001  個人番号 ``FF 10 0C`` + 12 digits + ``FF FF``  PIN 0011 or 照合番号A 0014
0002  基本4情報 ``FF 20`` {DF21..DF25}             PIN 0011 or 照合番号B 0015
0003  integrity record ``FF 30`` {DF31..DF33}      PIN or either 照合番号
0004  CV certificate ``7F 21``                     free
0005  AP basic info ``FF 40`` {DF41..DF43} + FF    free; 256 bytes (TLV, then FF filler)
0006  session-key encryption public key ``A1``     PIN or either 照合番号
0007  signed AP public key ``FF 50`` {DF51, DF52}  PIN or either 照合番号
0008  unknown (16 × FF)                            selectable, never readable
0010  key reference, purpose unknown               selectable; READ/VERIFY ``6981``
0011  PIN (4 digits, 3 tries)
0012  key reference blocked at issuance (``63C0`` / ``6984``)
0013  the AP's own key: ``80 2A 00 00`` signs with it, no credential needed
0014  照合番号A = the 12-digit 個人番号
0015  照合番号B = birth YYMMDD (era year) ‖ expiry year ‖ security code
001C  key reference, purpose unknown               selectable; READ/VERIFY ``6981``
001E  key reference, purpose unknown               selectable; READ/VERIFY ``6981``
====  ==========================================  =====================================

0010, 001C and 001E exist on the real card (AokiApp/jsapdu ``UNKNOWN_*``) but nothing about
them is published; among the card's key references and read by no client, they are
modelled as unusable key references (``cardsim.files.KeyReferenceEF``).

Choices where the facts are silent: the 照合番号 retry limits (``cardsim.pin``; per card
in the image); 照合番号A/B cannot be changed (``6985``).

Secure messaging is not implemented, on purpose. On the real card this AP alone accepts
SET SESSION KEY ``80 AE`` after its PIN and then runs CLA ``08`` commands (facts §4), but
the only description of that protocol is soltia48/myna-card's reverse engineering — no
J-LIS text, no second implementation, open questions (the answer to an SM VERIFY, SELECT
under a live session, short Le) — too little to be faithful. So the simulator answers as
the card does with no session open: SET SESSION KEY ``6982`` (what the card answers
without the PIN; after the PIN this is a known deviation), and on every AP CLA ``08``/``0C``
READ BINARY and VERIFY ``69FC``, SELECT and everything else under SM ``6882``
(``cardsim.card``). The ``0006`` key is still issued so that the EF reads as on the card.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric import rsa

from ..facts.cvc import CVCAuthority, KeyId, encode_public_key
from ..facts.pins import BLOCKED_AT_ISSUANCE, CODE_A, CODE_B, TEXT_PIN
from ..facts.text import (
    AID,
    AP_INFO_EF_SIZE,
    EF_AP_INFO,
    EF_AP_KEY,
    EF_ATTRIBUTES,
    EF_BLOCKED,
    EF_CERTIFICATE,
    EF_CODE_A,
    EF_CODE_B,
    EF_INTEGRITY,
    EF_MY_NUMBER,
    EF_PIN,
    EF_SESSION_KEY,
    EF_SIGNED_KEY,
    FILLER,
    TAG_AP_INFO,
    TAG_ATTRIBUTES_DIGEST,
    TAG_INTEGRITY,
    TAG_INTEGRITY_SIGNATURE,
    TAG_MY_NUMBER_DIGEST,
    TAG_SIGNED_KEY,
    TAG_SIGNED_KEY_PUBLIC,
    TAG_SIGNED_KEY_SIGNATURE,
    BasicFour,
)
from ..iso7816.tlv import card_record_encode
from .application import CLA_PROPRIETARY, INS_COMPUTE_DIGITAL_SIGNATURE, Application
from .files import (
    ALWAYS,
    BinaryEF,
    KeyEF,
    KeyReferenceEF,
    KeyUsage,
    OpaqueEF,
    PinEF,
    after_verify,
)

SESSION_KEY = "session-key"
"""Image key name of the private half of EF 0006 (no EF of its own, no APDU reaches it)."""

ANY_CREDENTIAL = after_verify(EF_PIN, EF_CODE_A, EF_CODE_B)


class TextApplication(Application):
    NAME = "text"
    AID = AID
    FILES = {
        EF_MY_NUMBER: BinaryEF("個人番号", read=after_verify(EF_PIN, EF_CODE_A)),
        EF_ATTRIBUTES: BinaryEF("基本4情報", read=after_verify(EF_PIN, EF_CODE_B)),
        EF_INTEGRITY: BinaryEF("integrity record (digests + signature)", read=ANY_CREDENTIAL),
        EF_CERTIFICATE: BinaryEF("CV certificate of the signing key", read=ALWAYS),
        EF_AP_INFO: BinaryEF("AP basic info", read=ALWAYS),
        EF_SESSION_KEY: BinaryEF("session-key encryption public key", read=ANY_CREDENTIAL),
        EF_SIGNED_KEY: BinaryEF("signed AP public key", read=ANY_CREDENTIAL),
        0x0008: OpaqueEF("16 × FF; purpose unknown"),
        EF_PIN: PinEF(TEXT_PIN),
        EF_BLOCKED: PinEF(BLOCKED_AT_ISSUANCE, changeable=False),
        EF_AP_KEY: KeyEF("AP key (内部認証)", use=ALWAYS,
                         usage=frozenset({KeyUsage.DEFAULT_SIGNATURE})),
        EF_CODE_A: PinEF(CODE_A, changeable=False),
        EF_CODE_B: PinEF(CODE_B, changeable=False),
        # Exist on the real card (jsapdu lists them); purpose unknown, so unusable here.
        0x0010: KeyReferenceEF("key reference, purpose unknown"),
        0x001C: KeyReferenceEF("key reference, purpose unknown"),
        0x001E: KeyReferenceEF("key reference, purpose unknown"),
    }
    DEFAULT_KEY = EF_AP_KEY
    INSTRUCTIONS = {
        **Application.INSTRUCTIONS,
        (CLA_PROPRIETARY, INS_COMPUTE_DIGITAL_SIGNATURE): Application.compute_digital_signature,
    }


# -- record encoders (issuance) -------------------------------------------------------------

AP_IDENTIFICATION = bytes.fromhex("01030E01")
"""DF41 as seen on cards: spec version, extended Lc/Le support, vendor ID, vendor byte."""
AP_INFO_KEY_ID = KeyId("9000034")
"""DF42: a key ID whose purpose is unknown (``…34`` on real cards); simulator-prefixed."""


def integrity_ef(my_number_file: bytes, basic_four: BasicFour, signer: CVCAuthority) -> bytes:
    """EF 0003 (336 bytes): SHA-256 of all of EF 0001, of DF22..DF25, and a signature."""
    digests = (card_record_encode(TAG_MY_NUMBER_DIGEST, hashlib.sha256(my_number_file).digest())
               + card_record_encode(TAG_ATTRIBUTES_DIGEST,
                                    hashlib.sha256(basic_four.fields()).digest()))
    signature = card_record_encode(TAG_INTEGRITY_SIGNATURE, signer.sign(digests))
    return card_record_encode(TAG_INTEGRITY, digests + signature)


def ap_info_ef(trailer: bytes) -> bytes:
    """EF 0005 (256 bytes): ``FF 40 82 00 9F`` {DF41 identification, DF42 key ID, DF43 32
    opaque bytes + 96 × FF}, then FF filler to the EF size clients insist on."""
    if len(trailer) != 32:
        raise ValueError("the DF43 trailer is 32 bytes")
    record = card_record_encode(TAG_AP_INFO, card_record_encode(0xDF41, AP_IDENTIFICATION)
                                + card_record_encode(0xDF42, AP_INFO_KEY_ID.encode())
                                + card_record_encode(0xDF43, trailer + b"\xff" * 96))
    return record + bytes((FILLER,)) * (AP_INFO_EF_SIZE - len(record))


def session_key_ef(key: rsa.RSAPublicKey) -> bytes:
    return card_record_encode(0xA1, encode_public_key(key))


def signed_key_ef(key: rsa.RSAPublicKey, signer: CVCAuthority) -> bytes:
    """EF 0007: the AP key's public half (DF51) and the issuer's signature over that TLV."""
    public = card_record_encode(TAG_SIGNED_KEY_PUBLIC, encode_public_key(key))
    signature = card_record_encode(TAG_SIGNED_KEY_SIGNATURE, signer.sign(public))
    return card_record_encode(TAG_SIGNED_KEY, public + signature)
