"""GlobalPlatform Issuer Security Domain, AID A0 00 00 01 51 00 00: the power-on (MF) state.

It holds no EFs; selecting it returns the card to its MF-equivalent state (facts §2).
GET DATA answers the MF-level objects below (facts §7); anything else is ``6A88``.
"""

from __future__ import annotations

from asn1crypto.core import ObjectIdentifier

from cardsim.application import Application
from iso7816.tlv import ber_encode

AID = bytes.fromhex("A0000001510000")

TAG_ISSUER_ID = 0x0042
TAG_CARD_ID = 0x0045
TAG_CARD_RECOGNITION = 0x0066
TAG_MUNICIPALITY = 0x00F0
TAG_EXPIRY = 0x00F2
TAG_INTERMEDIATE_KEY_ID = 0x00F7
TAG_CHAIN_UPPER = 0x00F8
TAG_CHAIN_LOWER = 0x7F21


class IssuerSecurityDomain(Application):
    NAME = "isd"
    AID = AID
    FILES = {}
    DATA_OBJECTS = {
        TAG_ISSUER_ID: "issuer identification (16-byte key reference)",
        TAG_CARD_ID: "card identification number (ASCII)",
        TAG_CARD_RECOGNITION: "GlobalPlatform card recognition data",
        TAG_MUNICIPALITY: "全国地方公共団体コード of the issuer (5 ASCII digits)",
        TAG_EXPIRY: "card expiry (YYYYMMDD)",
        TAG_INTERMEDIATE_KEY_ID: "key ID of the intermediate that signs 7F21",
        TAG_CHAIN_UPPER: "CV certificate: root → intermediate (template contents)",
        TAG_CHAIN_LOWER: "CV certificate: intermediate → card key (template contents)",
    }


GP_ARC = "1.2.840.114283"


def _oid(dotted: str) -> bytes:
    return ObjectIdentifier(dotted).dump()


def card_recognition_data() -> bytes:
    """GP Card Spec v2.3 H.2: recognition data OID, GP 2.3.1, card ID scheme, SCP03 i=70."""
    return ber_encode(0x66, ber_encode(0x73, b"".join((
        _oid(f"{GP_ARC}.1"),
        ber_encode(0x60, _oid(f"{GP_ARC}.2.2.3.1")),
        ber_encode(0x63, _oid(f"{GP_ARC}.3")),
        ber_encode(0x64, _oid(f"{GP_ARC}.4.3.112")),
    ))))
