"""Host-side client of the 券面事項入力補助AP: the 個人番号 and the 基本4情報, verified.

Credentials: the 4-digit PIN opens both records; 照合番号A (the 個人番号 itself) only the
number, 照合番号B (birth YYMMDD in era years ‖ expiry year ‖ security code) only the four
facts. ``read`` presents what it is given, reads what that opens and checks the chain

    EF 0001 / 0002 → digests in EF 0003 → its signature → EF 0004 CV certificate → root

raising ``TamperedError`` at the first link that does not hold, then proves the chip
holds the AP key whose public half EF 0007 carries (challenge–response, ``80 2A 00 00``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from ..facts import cvc
from ..facts.text import (
    AID,
    EF_ATTRIBUTES,
    EF_CERTIFICATE,
    EF_CODE_A,
    EF_CODE_B,
    EF_INTEGRITY,
    EF_MY_NUMBER,
    EF_PIN,
    EF_SIGNED_KEY,
    BasicFour,
)
from ..iso7816.tlv import TLVError, ber_read_header
from ..readers.base import CardConnection
from .commands import select_df
from .records import (
    CardDataError,
    TamperedError,
    challenge_default_key,
    check_offsets,
    date_field,
    parse_record,
    present,
    public_key,
    read_ef,
    read_object,
    require_signature,
    text_field,
    verified_certificate,
)


@dataclass(frozen=True, slots=True)
class TextData:
    my_number: str | None
    basic_four: BasicFour | None
    issuer: str
    """The CV certificate chain that vouched for the data, e.g. ``9000033/001 → 9132213/001``."""


def parse_my_number(raw: bytes) -> str:
    """``FF 10 0C`` + 12 ASCII digits (the value is the digits, not nested TLVs)."""
    try:
        header = ber_read_header(raw)
    except TLVError as exc:
        raise CardDataError(f"EF 0001 (個人番号): {exc}") from None
    number = raw[header.header_length:header.total_length].decode("ascii", "replace")
    if header.tag != 0xFF10 or len(number) != 12 or not number.isdigit():
        raise CardDataError("EF 0001 (個人番号): not FF 10 0C + 12 digits")
    return number


def parse_basic_four(raw: bytes) -> tuple[BasicFour, bytes]:
    """The four facts and the bytes DF32 hashes (DF22..DF25, the offset table skipped)."""
    what = "EF 0002 (基本4情報)"
    record = parse_record(raw, 0xFF20, what)
    check_offsets(record, 0xDF21, what)
    four = BasicFour(text_field(record, 0xDF22, what), text_field(record, 0xDF23, what),
                     date_field(record, 0xDF24, what), text_field(record, 0xDF25, what, "ascii"))
    return four, b"".join(f.tlv for f in record.fields if f.tag != 0xDF21)


class TextClient:
    def __init__(self, connection: CardConnection,
                 anchors: dict[cvc.KeyId, rsa.RSAPublicKey]) -> None:
        self.connection = connection
        self.anchors = anchors

    def read(self, *, pin: str | None = None, code_a: str | None = None,
             code_b: str | None = None, authenticate_chip: bool = True,
             read_my_number: bool = True) -> TextData:
        """Present the given credentials, read what they open, verify it all end to end.

        ``read_my_number=False`` leaves EF 0001 unselected even when the PIN would open it:
        a relying party without a 番号法 purpose (a shelter, municipal-apps §4.5) must not
        touch the number at all."""
        if pin is None and code_a is None and code_b is None:
            raise ValueError("give the PIN, 照合番号A or 照合番号B")
        conn = self.connection
        select_df(conn, AID)
        if pin is not None:
            present(conn, EF_PIN, pin, "券面事項入力補助用暗証番号")
        if code_a is not None:
            present(conn, EF_CODE_A, code_a, "照合番号A")
        if code_b is not None:
            present(conn, EF_CODE_B, code_b, "照合番号B")
        certificate = verified_certificate(read_object(conn, EF_CERTIFICATE), self.anchors,
                                           "EF 0004 (CV certificate)")
        integrity = parse_record(read_object(conn, EF_INTEGRITY), 0xFF30,
                                 "EF 0003 (integrity record)")
        signature = integrity.get(0xDF33, "EF 0003").value
        require_signature(certificate.public_key, signature, integrity.before(0xDF33, "EF 0003"),
                          "EF 0003 (integrity record)")
        number = four = None
        if code_a is not None or (pin is not None and read_my_number):
            physical = read_ef(conn, EF_MY_NUMBER)
            if hashlib.sha256(physical).digest() != integrity.get(0xDF31, "EF 0003").value:
                raise TamperedError("EF 0001 (個人番号) does not match DF31 of the integrity "
                                    "record")
            number = parse_my_number(physical)
        if pin is not None or code_b is not None:
            four, covered = parse_basic_four(read_object(conn, EF_ATTRIBUTES))
            if hashlib.sha256(covered).digest() != integrity.get(0xDF32, "EF 0003").value:
                raise TamperedError("EF 0002 (基本4情報) does not match DF32 of the integrity "
                                    "record")
        if authenticate_chip:
            self._authenticate_chip(certificate)
        return TextData(number, four, f"{certificate.issuer} → {certificate.subject}")

    def _authenticate_chip(self, certificate: cvc.CVCertificate) -> None:
        what = "EF 0007 (signed AP key)"
        signed = parse_record(read_object(self.connection, EF_SIGNED_KEY), 0xFF50, what)
        require_signature(certificate.public_key, signed.get(0xDF52, what).value,
                          signed.before(0xDF52, what), what)
        challenge_default_key(self.connection, public_key(signed, 0xDF51, what),
                              "券面事項入力補助AP key")
