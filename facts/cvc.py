"""Card-verifiable (CV) certificates of the 券面 APs and the MF: the format, and the key IDs
of the simulator's CV hierarchy (whose keys live in ``jpki.cvca``).

Wire format (facts §4, §7), lengths as the card writes them (``card_record_encode``:
``82 HH LL`` from 128 on, so every length here but the exponent's)::

    7F21 { 5F4E (297 bytes: 証明者鍵ID 16 ‖ 被証明者鍵ID 16 ‖ 90 03 e ‖ 91 82 01 00 n)
           5F37 (256-byte RSASSA-PKCS1-v1_5 / SHA-256 signature over the 5F4E value) }

A key ID is 16 bytes: 7 ASCII digits ‖ ``08 05`` ‖ 3 ASCII digits ‖ 4 padding bytes.
Production key IDs begin ``5`` and the J-LIS test hierarchy's ``6``; everything the
simulator signs uses IDs beginning ``9`` so it can never be mistaken for either.

The simulator hierarchy, generated on first use in ``<pki dir>/cvc/``:

* three roots (``9000020`` MF chain, ``9000023`` 券面事項確認AP, ``9000033`` 券面事項入力補助AP)
  whose public keys a verifier holds as trust anchors (``*.pub.pem``), and
* per-municipality keys certified by those roots (``9<code>0`` MF intermediate,
  ``9<code>2`` 確認AP, ``9<code>3`` 入力補助AP), which sign the card data: a record's
  signature checks under the key in the AP's EF ``0004``, that certificate under a root.

This module is shared by the card side (issuance) and the host side (verification).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from asn1crypto import core
from asn1crypto.algos import DigestInfo
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..errors import MynacardError
from ..iso7816.tlv import TLVError, ber_iter, ber_read_header, card_record_encode

TAG_CV_CERTIFICATE = 0x7F21
TAG_BODY = 0x5F4E
TAG_SIGNATURE = 0x5F37
TAG_EXPONENT = 0x90
TAG_MODULUS = 0x91
KEY_ID_LENGTH = 16
MODULUS_LENGTH = 256
BODY_LENGTH = 2 * KEY_ID_LENGTH + 9 + 256  # 90 03 e(3) = 5, 91 82 01 00 = 4 + 256
KEY_ID_MARKER = b"\x08\x05"

SIMULATOR_PREFIX = "9"
RESERVED_PREFIXES = {"5": "production (J-LIS)", "6": "J-LIS JPKI test hierarchy"}


class CVCError(MynacardError, ValueError):
    """Malformed CV certificate or key ID, or a signature that does not verify."""


@dataclass(frozen=True, slots=True, order=True)
class KeyId:
    """16-byte key identifier (証明者鍵ID / 被証明者鍵ID)."""

    number: str
    group: str = "001"
    padding: bytes = b"\x00\x00\x00\x00"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9]{7}", self.number):
            raise CVCError(f"key ID number must be 7 digits, got {self.number!r}")
        if not re.fullmatch(r"[0-9]{3}", self.group):
            raise CVCError(f"key ID group must be 3 digits, got {self.group!r}")
        if len(self.padding) != 4:
            raise CVCError("key ID padding must be 4 bytes")

    def encode(self) -> bytes:
        return self.number.encode() + KEY_ID_MARKER + self.group.encode() + self.padding

    @classmethod
    def parse(cls, raw: bytes) -> KeyId:
        if len(raw) != KEY_ID_LENGTH:
            raise CVCError(f"a key ID is {KEY_ID_LENGTH} bytes, got {len(raw)}")
        try:
            return cls(raw[:7].decode("ascii"), raw[9:12].decode("ascii"), bytes(raw[12:]))
        except UnicodeDecodeError:
            raise CVCError(f"key ID {raw.hex()} is not digits where it should be") from None

    @property
    def is_simulator(self) -> bool:
        return self.number.startswith(SIMULATOR_PREFIX)

    def __str__(self) -> str:
        return f"{self.number}/{self.group}"


def encode_public_key(key: rsa.RSAPublicKey) -> bytes:
    """``90 03 <e>`` ‖ ``91 82 01 00 <n>``: how the 券面 APs write an RSA-2048 public key."""
    numbers = key.public_numbers()
    if key.key_size != 8 * MODULUS_LENGTH or numbers.e != 65537:
        raise CVCError("the card holds RSA-2048 keys with e = 65537 only")
    return (card_record_encode(TAG_EXPONENT, numbers.e.to_bytes(3, "big"))
            + card_record_encode(TAG_MODULUS, numbers.n.to_bytes(MODULUS_LENGTH, "big")))


def decode_public_key(raw: bytes) -> rsa.RSAPublicKey:
    try:
        fields = dict(ber_iter(raw))
    except TLVError as exc:
        raise CVCError(f"public key: {exc}") from None
    if TAG_EXPONENT not in fields or TAG_MODULUS not in fields:
        raise CVCError("public key lacks its exponent (90) or modulus (91)")
    exponent, modulus = fields[TAG_EXPONENT], fields[TAG_MODULUS]
    if int.from_bytes(exponent, "big") != 65537 or len(modulus) != MODULUS_LENGTH \
            or modulus[0] < 0x80:
        raise CVCError("public key is not RSA-2048 with e = 65537")
    try:
        return rsa.RSAPublicNumbers(65537, int.from_bytes(modulus, "big")).public_key()
    except ValueError as exc:
        raise CVCError(f"public key is not a usable RSA key: {exc}") from None


def sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 with SHA-256, the signature of every 券面 record and CV certificate."""
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def verify(key: rsa.RSAPublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def concatenated_digest_info(digests: bytes) -> bytes:
    """A SHA-256 DigestInfo holding several digests at once — how the 券面事項確認AP card face
    is signed (facts §5). Not a standard DigestInfo, hence built here without length checks."""
    if not digests or len(digests) % 32:
        raise CVCError("expected a whole number of SHA-256 digests")
    return DigestInfo({"digest_algorithm": {"algorithm": "sha256", "parameters": core.Null()},
                       "digest": digests}).dump()


@dataclass(frozen=True, slots=True)
class CVCertificate:
    issuer: KeyId
    subject: KeyId
    public_key: rsa.RSAPublicKey
    signature: bytes

    @property
    def body(self) -> bytes:
        return self.issuer.encode() + self.subject.encode() + encode_public_key(self.public_key)

    def contents(self) -> bytes:
        """The template's value: what GET DATA at the MF returns."""
        return (card_record_encode(TAG_BODY, self.body)
                + card_record_encode(TAG_SIGNATURE, self.signature))

    def encode(self) -> bytes:
        """The whole ``7F21`` object: what EF ``0004`` holds."""
        return card_record_encode(TAG_CV_CERTIFICATE, self.contents())

    @classmethod
    def parse(cls, data: bytes) -> CVCertificate:
        """Parse a certificate with its ``7F21`` template (EF) or without it (GET DATA)."""
        try:
            if data[:2] == b"\x7f\x21":
                header = ber_read_header(data)
                contents = data[header.header_length:header.total_length]
                if len(contents) != header.value_length:
                    raise CVCError("CV certificate is truncated")
            else:
                contents = data
            fields = dict(ber_iter(contents))
        except TLVError as exc:
            raise CVCError(f"CV certificate: {exc}") from None
        body, signature = fields.get(TAG_BODY), fields.get(TAG_SIGNATURE)
        if body is None or signature is None:
            raise CVCError("CV certificate lacks its body (5F4E) or signature (5F37)")
        if len(body) != BODY_LENGTH:
            raise CVCError(f"CV certificate body is {len(body)} bytes, expected {BODY_LENGTH}")
        return cls(KeyId.parse(body[:16]), KeyId.parse(body[16:32]),
                   decode_public_key(body[32:]), signature)

    def verified_by(self, issuer_key: rsa.RSAPublicKey) -> bool:
        return verify(issuer_key, self.signature, self.body)


@dataclass(frozen=True, slots=True)
class CVCAuthority:
    key_id: KeyId
    key: rsa.RSAPrivateKey

    def certify(self, subject: KeyId, public_key: rsa.RSAPublicKey) -> CVCertificate:
        unsigned = CVCertificate(self.key_id, subject, public_key, b"")
        return CVCertificate(self.key_id, subject, public_key, sign(self.key, unsigned.body))

    def sign(self, data: bytes) -> bytes:
        return sign(self.key, data)


ROOT_MF = KeyId("9000020")
ROOT_VISUAL = KeyId("9000023")
ROOT_TEXT = KeyId("9000033")
ROOTS = (ROOT_MF, ROOT_VISUAL, ROOT_TEXT)
_SUBORDINATE_DIGIT = {ROOT_MF: "0", ROOT_VISUAL: "2", ROOT_TEXT: "3"}


def municipality_key_id(root: KeyId, municipality_code: str) -> KeyId:
    """The municipality's own key under ``root`` (the 被証明者鍵ID of its AP certificates)."""
    if not re.fullmatch(r"[0-9]{5}", municipality_code):
        raise CVCError(f"municipality code must be 5 digits, got {municipality_code!r}")
    return KeyId(f"{SIMULATOR_PREFIX}{municipality_code}{_SUBORDINATE_DIGIT[root]}")


