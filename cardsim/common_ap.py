"""共通カードAP (common card application), AID D3 92 10 00 31 00 01 01 01 00 (facts §6).

====  ===========================================================  ===================
EF    content                                                      access
====  ===========================================================  ===================
0001  card info, record 1: ``01 1C`` + card serial (15) ‖           READ RECORD, free
      municipality code (5) ‖ expiry ``YYYYMMDD``
0002  16-byte key reference, purpose unknown                       selectable only
0019  INTERNAL AUTHENTICATE key (``00 88 00 99``), no credential
001C  住民基本台帳用暗証番号 (4 digits, 3 tries), changed by CHANGE KEY ``80 32``
001E  key reference, purpose unknown                               selectable; READ
                                                                   BINARY/VERIFY 6981
====  ===========================================================  ===================

SET SESSION KEY answers ``66F1`` (no key delivery configured).

001E exists on the real card: soltia48/myna-card's read-only probe selects it as a key
reference (with 001C) and aborts unless SELECT answers 9000. What an empty VERIFY answers
there is not published, so it is an unusable key reference (``KeyReferenceEF``).
"""

from __future__ import annotations

from ..facts.common import AID, CARD_INFO_TAG, EF_AUTH_KEY, EF_CARD_INFO, EF_PIN
from ..facts.pins import RESIDENT_PIN
from ..iso7816.sw import SW
from ..iso7816.tlv import simple_encode
from .application import CLA_PROPRIETARY, INS_CHANGE_KEY, Application
from .files import ALWAYS, KeyEF, KeyReferenceEF, KeyUsage, OpaqueEF, PinEF, RecordEF


class CommonApplication(Application):
    NAME = "common"
    AID = AID
    FILES = {
        EF_CARD_INFO: RecordEF("card serial, municipality code, expiry", read=ALWAYS),
        0x0002: OpaqueEF("16-byte key reference; purpose unknown"),
        EF_AUTH_KEY: KeyEF("card authentication key", use=ALWAYS,
                           usage=frozenset({KeyUsage.INTERNAL_AUTHENTICATE})),
        EF_PIN: PinEF(RESIDENT_PIN),
        # Probed by myna-card as a key reference; purpose unknown, so unusable here.
        0x001E: KeyReferenceEF("key reference, purpose unknown (probed by myna-card)"),
    }
    SESSION_KEY_REFUSAL = SW.SECURITY_ENVIRONMENT_FAULT
    INSTRUCTIONS = {
        **Application.INSTRUCTIONS,
        (CLA_PROPRIETARY, INS_CHANGE_KEY): Application.change_key,
    }


def card_info_records(card_serial: str, municipality_code: str, expiry: str) -> bytes:
    """EF 0001's only record: SIMPLE-TLV ``01 1C`` + 28 ASCII digits."""
    digits = card_serial + municipality_code + expiry
    if len(card_serial) != 15 or len(municipality_code) != 5 or len(expiry) != 8 \
            or not digits.isascii() or not digits.isdigit():
        raise ValueError("card info is a 15-digit serial, 5-digit code and YYYYMMDD expiry")
    return simple_encode(CARD_INFO_TAG, digits.encode("ascii"))
