"""券面事項確認AP (card-face confirmation), AID D3 92 10 00 31 00 01 01 04 02 (facts §5).

Files and access at a glance (``FILES`` below is the authority):

====  ====================================================  ===========================
EF    content                                               read after VERIFY of
====  ====================================================  ===========================
0001  age record ``FF 10`` {DF11 birth, DF12 key, DF13 sig}   生年月日 key 0011
0002  card face ``FF 20`` {DF21 offsets, DF22..DF2A}          照合番号A 0013 or B 0012
0003  AP basic info ``FF 30`` {DF31..DF35}                    free
0004  CV certificate ``7F 21``                                free
0005  個人番号 image ``FF 40`` {DF41 PNG, DF42 key, DF43 sig}  照合番号A 0013
0006  unknown (16 × FF)                                       照合番号A or B
0011  生年月日 key: birth YYMMDD in era years
0012  照合番号B, 0013 照合番号A
001A  the AP's own key: ``80 2A 00 00`` signs with it, no credential needed
====  ====================================================  ===========================

Signatures (RSASSA-PKCS1-v1_5, by the municipality key certified in EF 0004): ``0001`` and
``0005`` over every TLV before the signature; ``0002`` over a SHA-256 DigestInfo whose
"digest" is the 96-byte concatenation SHA-256(DF22‖DF23‖DF24) ‖ SHA-256(DF25‖DF26) ‖
SHA-256(DF27) — DF29 (expiry) and DF2A (security-code image) are not covered.

Choices where the facts are silent: the retry limits of the three keys (``cardsim.pin``);
the binary fields of ``0002`` use long-form lengths, the short text fields short form;
DF35 carries a simulator key ID and 256 random bytes (its meaning is unknown).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from ..iso7816.sw import SW
from ..iso7816.tlv import ber_encode
from ..jpki.cvc import LONG_FORM, CVCAuthority, KeyId, concatenated_digest_info, encode_public_key
from .application import CLA_PROPRIETARY, INS_COMPUTE_DIGITAL_SIGNATURE, Application
from .files import ALWAYS, BinaryEF, KeyEF, KeyUsage, PinEF, after_verify
from .pin import BIRTH_KEY, CODE_A, CODE_B
from .signing import raw_pkcs1_v15_sign

AID = bytes.fromhex("D3921000310001010402")

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
FACE_TAGS = tuple(range(0xDF22, 0xDF2B))
SIGNED_GROUPS = ((0xDF22, 0xDF23, 0xDF24), (0xDF25, 0xDF26), (0xDF27,))


def age_ef(birth_date: str, card_key: rsa.RSAPublicKey, signer: CVCAuthority) -> bytes:
    signed = (ber_encode(0xDF11, birth_date.encode("ascii"))
              + ber_encode(0xDF12, encode_public_key(card_key), LONG_FORM))
    return ber_encode(0xFF10, signed + ber_encode(0xDF13, signer.sign(signed), LONG_FORM),
                      LONG_FORM)


def face_digest_info(tlvs: dict[int, bytes]) -> bytes:
    """The signed payload of EF 0002: a SHA-256 DigestInfo holding three digests (96 bytes)."""
    digest = b"".join(hashlib.sha256(b"".join(tlvs[t] for t in group)).digest()
                      for group in SIGNED_GROUPS)
    return concatenated_digest_info(digest)


@dataclass(frozen=True, slots=True)
class CardFace:
    birth_date: str
    sex: str
    expiry: str
    name_png: bytes
    address_png: bytes
    photo_jp2: bytes
    security_code_png: bytes

    def encode(self, card_key: rsa.RSAPublicKey, signer: CVCAuthority) -> bytes:
        tlvs = {
            0xDF22: ber_encode(0xDF22, self.birth_date.encode("ascii")),
            0xDF23: ber_encode(0xDF23, self.sex.encode("ascii")),
            0xDF24: ber_encode(0xDF24, encode_public_key(card_key), LONG_FORM),
            0xDF25: ber_encode(0xDF25, self.name_png, LONG_FORM),
            0xDF26: ber_encode(0xDF26, self.address_png, LONG_FORM),
            0xDF27: ber_encode(0xDF27, self.photo_jp2, LONG_FORM),
            0xDF29: ber_encode(0xDF29, self.expiry.encode("ascii")),
            0xDF2A: ber_encode(0xDF2A, self.security_code_png, LONG_FORM),
        }
        tlvs[0xDF28] = ber_encode(0xDF28, raw_pkcs1_v15_sign(signer.key, face_digest_info(tlvs)),
                                  LONG_FORM)
        table_length = 3 + 2 * len(FACE_TAGS)
        body_length = table_length + sum(len(v) for v in tlvs.values())
        pos = 2 + 3 + table_length  # FF 20 82 LL LL, then the table
        offsets = b""
        for tag in FACE_TAGS:
            offsets += pos.to_bytes(2, "big")
            pos += len(tlvs[tag])
        if pos > 0xFFFF:
            raise ValueError(f"card face record of {pos} bytes exceeds the 16-bit offset table")
        body = ber_encode(0xDF21, offsets) + b"".join(tlvs[t] for t in FACE_TAGS)
        assert len(body) == body_length
        return ber_encode(0xFF20, body, LONG_FORM)


def ap_info_ef(municipality_code: str, reference: bytes) -> bytes:
    if len(reference) != 256:
        raise ValueError("the DF35 block is 256 bytes after its key ID")
    return ber_encode(0xFF30, ber_encode(0xDF31, AP_IDENTIFICATION)
                      + ber_encode(0xDF32, AP_INFO_KEY_ID.encode())
                      + ber_encode(0xDF33, bytes((AP_VERSION,)))
                      + ber_encode(0xDF34, municipality_code.encode("ascii"))
                      + ber_encode(0xDF35, REFERENCE_KEY_ID.encode() + reference, LONG_FORM),
                      LONG_FORM)


def number_image_ef(png: bytes, card_key: rsa.RSAPublicKey, signer: CVCAuthority) -> bytes:
    signed = (ber_encode(0xDF41, png, LONG_FORM)
              + ber_encode(0xDF42, encode_public_key(card_key), LONG_FORM))
    return ber_encode(0xFF40, signed + ber_encode(0xDF43, signer.sign(signed), LONG_FORM),
                      LONG_FORM)
