"""Card info: the 共通AP card record, the MF data objects and the MF CV certificate chain.

The chain (GET DATA ``00F8`` root → intermediate, ``7F21`` intermediate → card key) is
checked against the trust anchors, then the 共通AP answers INTERNAL AUTHENTICATE over a
fresh challenge and the answer must verify under the certified card key — proof that the
chip, not a copy of its data, is present.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from ..facts import common, cvc
from ..facts.mf import ISD_AID
from ..iso7816.apdu import CommandAPDU
from ..iso7816.sw import SW
from ..iso7816.tlv import TLVError, simple_iter
from ..readers.base import CardConnection
from .commands import CardCommandError, call, select_df
from .records import CardDataError, TamperedError, require_signature, verified_certificate


@dataclass(frozen=True, slots=True)
class CardInfo:
    card_serial: str
    municipality_code: str
    expiry: str
    """``YYYY-MM-DD``."""
    card_id: str | None
    contact_atr: str | None
    chain: tuple[str, ...]
    """Key IDs from the trust anchor down to the card key, when verified."""
    chip_authenticated: bool


def get_data(connection: CardConnection, tag: int) -> bytes | None:
    """GET DATA, retrying with an extended Le for objects over 256 bytes; None if absent."""
    response = connection.transmit(CommandAPDU(0x00, 0xCA, tag >> 8, tag & 0xFF, le=256))
    if response.sw == SW.WRONG_LENGTH:
        response = connection.transmit(CommandAPDU(0x00, 0xCA, tag >> 8, tag & 0xFF,
                                                   le=65536, extended=True))
    if response.sw in (SW.REFERENCED_DATA_NOT_FOUND, SW.FILE_NOT_FOUND):
        return None
    if not response.ok:
        raise CardCommandError(f"GET DATA {tag:04X}", response.sw)
    return response.data


def parse_card_info(record: bytes) -> tuple[str, str, str]:
    try:
        fields = list(simple_iter(record))
    except TLVError as exc:
        raise CardDataError(f"共通AP card record: {exc}") from None
    digits = fields[0][1].decode("ascii", "replace") if len(fields) == 1 else ""
    if len(fields) != 1 or fields[0][0] != 0x01 or len(digits) != 28 or not digits.isdigit():
        raise CardDataError("共通AP card record is not 01 1C + 28 digits")
    expiry = digits[20:]
    return digits[:15], digits[15:20], f"{expiry[:4]}-{expiry[4:6]}-{expiry[6:]}"


class CardInfoClient:
    def __init__(self, connection: CardConnection,
                 anchors: dict[cvc.KeyId, rsa.RSAPublicKey] | None = None) -> None:
        self.connection = connection
        self.anchors = anchors

    def read(self) -> CardInfo:
        conn = self.connection
        select_df(conn, common.AID)
        record = call(conn, CommandAPDU(0x00, 0xB2, 0x01, common.EF_CARD_INFO << 3 | 0x04, le=256),
                      "READ RECORD 1 of 共通AP EF 0001").data
        serial, code, expiry = parse_card_info(record)
        select_df(conn, ISD_AID)
        card_id = get_data(conn, 0x0045)
        atr = get_data(conn, 0x5F51)
        chain: tuple[str, ...] = ()
        authenticated = False
        if self.anchors is not None:
            chain, card_key = self._verify_chain()
            select_df(conn, common.AID)
            challenge = secrets.token_bytes(32)
            answer = call(conn, CommandAPDU(0x00, 0x88, 0x00, 0x80 | common.EF_AUTH_KEY, challenge,
                                            le=256), "INTERNAL AUTHENTICATE").data
            require_signature(card_key, answer, challenge, "共通AP INTERNAL AUTHENTICATE")
            authenticated = True
        return CardInfo(serial, code, expiry,
                        card_id.decode("ascii", "replace") if card_id is not None else None,
                        ("3B" + atr.hex().upper()) if atr is not None else None,
                        chain, authenticated)

    def _verify_chain(self) -> tuple[tuple[str, ...], rsa.RSAPublicKey]:
        assert self.anchors is not None
        upper_raw, lower_raw = get_data(self.connection, 0x00F8), get_data(self.connection,
                                                                          0x7F21)
        if upper_raw is None or lower_raw is None:
            raise CardDataError("the MF holds no CV certificate chain (GET DATA 00F8/7F21)")
        upper = verified_certificate(upper_raw, self.anchors, "MF CV certificate 00F8")
        lower = verified_certificate(lower_raw, {upper.subject: upper.public_key},
                                     "MF CV certificate 7F21")
        intermediate = get_data(self.connection, 0x00F7)
        if intermediate is not None and intermediate != upper.subject.encode():
            raise TamperedError("GET DATA 00F7 names another intermediate than 00F8 certifies")
        return (str(upper.issuer), str(upper.subject), str(lower.subject)), lower.public_key
