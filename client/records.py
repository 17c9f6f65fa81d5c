"""What the 券面 clients share: parsing the private-tag records and checking their signatures.

Every check that fails raises ``TamperedError`` naming the record, the field and what
disagrees; a record that does not even parse raises ``CardDataError``. Nothing here
trusts a key that came off the card unless a certificate chain to a trust anchor vouches
for it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import MynacardError
from ..facts import cvc
from ..facts.cvc import ROOTS, CVCError, KeyId
from ..facts.digest_info import encode_digest_info
from ..iso7816.apdu import CommandAPDU
from ..iso7816.sw import SW
from ..iso7816.tlv import TLVError, ber_read_header
from ..readers.base import CardConnection
from .commands import (  # noqa: F401 - CardDataError is part of this module's API
    CardCommandError,
    CardDataError,
    call,
    read_binary,
    read_tlv_object,
    select_ef,
    verify,
)


class TamperedError(MynacardError):
    """A digest, signature or certificate on the card does not verify."""

    headline = "VERIFICATION FAILED"


class UntrustedError(TamperedError):
    """A certificate names an issuer key that is not among the trust anchors."""


@dataclass(frozen=True, slots=True)
class Field:
    tag: int
    value: bytes
    tlv: bytes
    """The field's own bytes, header included (what signatures and digests cover)."""
    offset: int
    """Where the field starts, counted from the start of the file."""


@dataclass(frozen=True, slots=True)
class Record:
    tag: int
    fields: tuple[Field, ...]

    def get(self, tag: int, what: str) -> Field:
        for field in self.fields:
            if field.tag == tag:
                return field
        raise CardDataError(f"{what}: no field {tag:04X}")

    def before(self, tag: int, what: str) -> bytes:
        """Every field before ``tag``, as written: what the 券面 record signatures cover."""
        self.get(tag, what)
        out = b""
        for field in self.fields:
            if field.tag == tag:
                return out
            out += field.tlv
        raise AssertionError("unreachable: the field was found above")


def parse_record(raw: bytes, tag: int, what: str) -> Record:
    """Parse a ``FFxx``-style record: outer TLV, then fields until the end or filler."""
    try:
        outer = ber_read_header(raw)
        if outer.tag != tag:
            raise CardDataError(f"{what}: expected tag {tag:04X}, found {outer.tag:04X}")
        if outer.total_length > len(raw):
            raise CardDataError(f"{what}: record is truncated")
        fields, pos, end = [], outer.header_length, outer.total_length
        while pos < end:
            if raw[pos] in (0x00, 0xFF) and all(b == raw[pos] for b in raw[pos:end]):
                break
            header = ber_read_header(raw, pos)
            stop = pos + header.total_length
            if stop > end:
                raise CardDataError(f"{what}: field {header.tag:04X} runs past the record")
            fields.append(Field(header.tag, bytes(raw[pos + header.header_length:stop]),
                                bytes(raw[pos:stop]), pos))
            pos = stop
    except TLVError as exc:
        raise CardDataError(f"{what}: {exc}") from None
    return Record(tag, tuple(fields))


def check_offsets(record: Record, table_tag: int, what: str) -> None:
    """The DF21-style offset table must point at the fields that follow it."""
    table = record.get(table_tag, what).value
    targets = [f for f in record.fields if f.tag != table_tag]
    if len(table) != 2 * len(targets):
        raise CardDataError(f"{what}: offset table has {len(table) // 2} entries for "
                            f"{len(targets)} fields")
    for i, field in enumerate(targets):
        declared = int.from_bytes(table[2 * i:2 * i + 2], "big")
        if declared != field.offset:
            raise CardDataError(f"{what}: offset table entry {i} says {declared:#06x}, "
                                f"field {field.tag:04X} starts at {field.offset:#06x}")


def text_field(record: Record, tag: int, what: str, encoding: str = "utf-8") -> str:
    try:
        return record.get(tag, what).value.decode(encoding)
    except UnicodeDecodeError:
        raise CardDataError(f"{what}: field {tag:04X} is not {encoding} text") from None


def date_field(record: Record, tag: int, what: str) -> dt.date:
    """A ``YYYYMMDD`` field (Gregorian)."""
    text = text_field(record, tag, what, "ascii")
    try:
        if len(text) != 8 or not text.isdigit():
            raise ValueError
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise CardDataError(f"{what}: field {tag:04X} {text!r} is not a date YYYYMMDD") from None


def public_key(record: Record, tag: int, what: str) -> rsa.RSAPublicKey:
    try:
        return cvc.decode_public_key(record.get(tag, what).value)
    except cvc.CVCError as exc:
        raise CardDataError(f"{what}: {exc}") from None


def read_ef(connection: CardConnection, fid: int) -> bytes:
    """The whole physical content of the current DF's EF ``fid`` (filler included)."""
    select_ef(connection, fid)
    out = b""
    while True:
        response = connection.transmit(CommandAPDU(0x00, 0xB0, len(out) >> 8, len(out) & 0xFF,
                                                   le=256))
        if response.sw == SW.OFFSET_OUTSIDE_EF:
            return out
        if not response.ok:
            raise CardCommandError(f"READ BINARY of EF {fid:04X} at {len(out)}", response.sw)
        out += response.data
        if len(response.data) < 256 or len(out) > 0x7FFF:
            return out


def read_object(connection: CardConnection, fid: int) -> bytes:
    """The BER-TLV object at the start of EF ``fid``, read by its header (as clients do)."""
    select_ef(connection, fid)
    return read_tlv_object(connection, f"EF {fid:04X}")


def present(connection: CardConnection, fid: int, value: str, what: str) -> None:
    select_ef(connection, fid)
    verify(connection, value.encode("ascii"), f"VERIFY {what}")


def verified_certificate(raw: bytes, anchors: dict[cvc.KeyId, rsa.RSAPublicKey],
                         what: str) -> cvc.CVCertificate:
    """Parse a CV certificate and check it under the trust anchor its issuer ID names."""
    try:
        certificate = cvc.CVCertificate.parse(raw)
    except cvc.CVCError as exc:
        raise CardDataError(f"{what}: {exc}") from None
    anchor = anchors.get(certificate.issuer)
    if anchor is None:
        origin = cvc.RESERVED_PREFIXES.get(certificate.issuer.number[0],
                                           "not a known simulator root")
        raise UntrustedError(f"{what}: issuer key {certificate.issuer} is not a trust anchor "
                             f"({origin})")
    if not certificate.verified_by(anchor):
        raise TamperedError(f"{what}: signature by {certificate.issuer} does not verify")
    return certificate


def require_signature(key: rsa.RSAPublicKey, signature: bytes, data: bytes, what: str) -> None:
    if not cvc.verify(key, signature, data):
        raise TamperedError(f"{what}: signature does not verify under the certified key")


def challenge_default_key(connection: CardConnection, key: rsa.RSAPublicKey, what: str) -> None:
    """Prove the chip holds the AP key: ``80 2A 00 00`` over a fresh challenge's DigestInfo."""
    challenge = secrets.token_bytes(32)
    signature = call(connection, CommandAPDU(0x80, 0x2A, 0x00, 0x00,
                                             encode_digest_info(
                                                 "sha256", hashlib.sha256(challenge).digest()),
                                             le=256),
                     f"{what}: COMPUTE DIGITAL SIGNATURE").data
    require_signature(key, signature, challenge, f"{what}: challenge response")


def load_trust_anchors(path: Path) -> dict[KeyId, rsa.RSAPublicKey]:
    """Root public keys (``<number>-<group>.pub.pem``) from a directory: the verifier's side."""
    anchors: dict[KeyId, rsa.RSAPublicKey] = {}
    for root in ROOTS:
        pem = Path(path) / f"{root.number}-{root.group}.pub.pem"
        try:
            key = serialization.load_pem_public_key(pem.read_bytes())
        except OSError:
            continue
        except ValueError as exc:
            raise CVCError(f"{pem} is not a PEM public key: {exc}") from None
        if isinstance(key, rsa.RSAPublicKey):
            anchors[root] = key
    return anchors
