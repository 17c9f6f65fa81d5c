"""Host-side client of the 券面事項確認AP: the card face, the age record, the number image.

照合番号A opens the face and the 個人番号 image, 照合番号B the face only, the 生年月日 key
(birth YYMMDD in era years) only the age record. Every record read is checked against the
municipality key certified in EF 0004, and that certificate against a trust anchor; the
face record's signature covers SHA-256(DF22‖DF23‖DF24) ‖ SHA-256(DF25‖DF26) ‖
SHA-256(DF27) in one DigestInfo, so the expiry (DF29) and security-code image (DF2A) are
reported as not covered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..facts import cvc
from ..facts.visual import (
    AID,
    EF_AGE,
    EF_BIRTH_KEY,
    EF_CERTIFICATE,
    EF_CODE_A,
    EF_CODE_B,
    EF_FACE,
    EF_NUMBER_IMAGE,
    JP2_MAGIC,
    PNG_MAGIC,
    SIGNED_GROUPS,
    TAG_FACE_SIGNATURE,
    CardFace,
    face_digest_info,
)
from ..readers.base import CardConnection
from .commands import select_df
from .records import (
    CardDataError,
    Record,
    TamperedError,
    challenge_default_key,
    check_offsets,
    date_field,
    parse_record,
    present,
    public_key,
    read_object,
    require_signature,
    text_field,
    verified_certificate,
)


@dataclass(frozen=True, slots=True)
class VerifiedFace:
    """The card face as read and verified, with what else the credential opened."""

    face: CardFace
    my_number_png: bytes | None
    """The 個人番号 image (照合番号A only)."""
    issuer: str
    """The CV certificate chain that vouched for the data."""


def _image(record: Record, tag: int, magic: bytes, kind: str, what: str) -> bytes:
    value = record.get(tag, what).value
    if not value.startswith(magic):
        raise CardDataError(f"{what}: field {tag:04X} is not a {kind} image")
    return value


def _check_face_signature(record: Record, key: rsa.RSAPublicKey, what: str) -> None:
    tlvs = {tag: record.get(tag, what).tlv for group in SIGNED_GROUPS for tag in group}
    try:
        payload = key.recover_data_from_signature(record.get(TAG_FACE_SIGNATURE, what).value,
                                                  padding.PKCS1v15(), None)
    except InvalidSignature:
        payload = None
    if payload != face_digest_info(tlvs):
        raise TamperedError(f"{what}: signature does not cover these name/address/photo/"
                            "birth/sex/key fields")


class VisualClient:
    def __init__(self, connection: CardConnection,
                 anchors: dict[cvc.KeyId, rsa.RSAPublicKey]) -> None:
        self.connection = connection
        self.anchors = anchors

    def _certificate(self) -> cvc.CVCertificate:
        return verified_certificate(read_object(self.connection, EF_CERTIFICATE), self.anchors,
                                    "EF 0004 (CV certificate)")

    def read_face(self, *, code_a: str | None = None, code_b: str | None = None,
                  authenticate_chip: bool = True) -> VerifiedFace:
        if code_a is None and code_b is None:
            raise ValueError("give 照合番号A or 照合番号B")
        conn = self.connection
        select_df(conn, AID)
        if code_a is not None:
            present(conn, EF_CODE_A, code_a, "照合番号A")
        if code_b is not None:
            present(conn, EF_CODE_B, code_b, "照合番号B")
        certificate = self._certificate()
        what = "EF 0002 (card face)"
        face = parse_record(read_object(conn, EF_FACE), 0xFF20, what)
        check_offsets(face, 0xDF21, what)
        _check_face_signature(face, certificate.public_key, what)
        number_png = None
        if code_a is not None:
            number_what = "EF 0005 (個人番号 image)"
            image = parse_record(read_object(conn, EF_NUMBER_IMAGE), 0xFF40, number_what)
            require_signature(certificate.public_key, image.get(0xDF43, number_what).value,
                              image.before(0xDF43, number_what), number_what)
            number_png = _image(image, 0xDF41, PNG_MAGIC, "PNG", number_what)
        if authenticate_chip:
            challenge_default_key(conn, public_key(face, 0xDF24, what), "券面事項確認AP key")
        card_face = CardFace(
            birth_date=date_field(face, 0xDF22, what),
            sex=text_field(face, 0xDF23, what, "ascii"), expiry=date_field(face, 0xDF29, what),
            name_png=_image(face, 0xDF25, PNG_MAGIC, "PNG", what),
            address_png=_image(face, 0xDF26, PNG_MAGIC, "PNG", what),
            photo_jp2=_image(face, 0xDF27, JP2_MAGIC, "JPEG 2000", what),
            security_code_png=_image(face, 0xDF2A, PNG_MAGIC, "PNG", what))
        return VerifiedFace(card_face, number_png, f"{certificate.issuer} → {certificate.subject}")

    def read_birth_date(self, birth_key: str) -> dt.date:
        """The age record (生年月日 key only): the verified birth date."""
        conn = self.connection
        select_df(conn, AID)
        present(conn, EF_BIRTH_KEY, birth_key, "生年月日 key")
        certificate = self._certificate()
        what = "EF 0001 (age record)"
        record = parse_record(read_object(conn, EF_AGE), 0xFF10, what)
        require_signature(certificate.public_key, record.get(0xDF13, what).value,
                          record.before(0xDF13, what), what)
        return date_field(record, 0xDF11, what)
