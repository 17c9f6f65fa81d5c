"""公的個人認証AP (JPKI-AP), AID D3 92 F0 00 26 01 00 00 00 01 (facts §3).

Every file the application holds, with its access rule, is in ``FILES`` below:

====  ============================================  ==================================
EF    content                                       access
====  ============================================  ==================================
0001  署名用電子証明書 (DER + FF filler)              READ after VERIFY of 001B
0002  署名用CA証明書                                 free
0005  unknown                                       selectable, never readable (6982)
0006  token info (CK_TOKEN_INFO, 160 bytes)          free
0008  certificate availability (3 bytes)             free
0009  unknown, protected                            selectable, never readable (6982)
000A  利用者証明用電子証明書                          free
000B  利用者証明用CA証明書                           free
0010  key reference, purpose unknown                selectable; READ/VERIFY 6981
0016  terminal CA key reference (``80 A2``)          selectable, never readable (6982)
0017  利用者証明用秘密鍵                              ``80 2A`` after VERIFY of 0018
0018  利用者証明用暗証番号 (4 digits, 3 tries)
0019  key reference, purpose unknown                selectable; READ/VERIFY 6981
001A  署名用秘密鍵                                   ``80 2A`` after VERIFY of 001B
001B  署名用パスワード (6-16, 5 tries)
001C  key reference, purpose unknown                selectable; READ/VERIFY 6981
001E  key reference, purpose unknown                selectable; READ/VERIFY 6981
====  ============================================  ==================================

0010, 0019, 001C and 001E exist on the real card (AokiApp/jsapdu lists them as
``UNKNOWN_*``; soltia48/myna-card's read-only probe selects 0010 as a key reference and
aborts unless SELECT answers 9000). Their ids sit among the card's key and PIN references
and no client reads them, so they are modelled as key references nobody can use: READ
BINARY answers 6981 like every internal EF; an empty VERIFY answers 6981 too, since the
tries the card would report are not published and the simulator does not make them up.

Proprietary commands besides ``80 2A``: ``80 A2`` (SET PUBLIC IC KEY, a terminal CV
certificate checked against EF 0016) and ``80 FC`` (the iOS token's last-command
indicator), answered as the physical card answers them — see ``set_public_ic_key``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..facts.jpki import (
    AID,
    CERT_AVAILABLE,
    CERTIFICATE_EF_SIZE,
    EF_AUTH_CA_CERT,
    EF_AUTH_CERT,
    EF_AUTH_KEY,
    EF_AUTH_PIN,
    EF_CERT_AVAILABILITY,
    EF_SIGN_CA_CERT,
    EF_SIGN_CERT,
    EF_SIGN_KEY,
    EF_SIGN_PIN,
    EF_TOKEN_INFO,
    FILLER,
)
from ..facts.pins import AUTH_PIN, SIGN_PASSWORD
from ..iso7816.apdu import CommandAPDU
from ..iso7816.sw import SW
from ..iso7816.tlv import TLVError, ber_read_header
from .application import CLA_PROPRIETARY, INS_COMPUTE_DIGITAL_SIGNATURE, Application
from .files import ALWAYS, BinaryEF, KeyEF, KeyReferenceEF, OpaqueEF, PinEF, after_verify
from .status import StatusError
from .storage import image_key

INS_SET_PUBLIC_IC_KEY = 0xA2
INS_LAST_COMMAND_INDICATOR = 0xFC
SET_PUBLIC_IC_KEY_P1P2 = frozenset({0x00C1})
"""The P1-P2 a physical card was seen to take past the parameter check (jsapdu, ``6700``)."""


class JPKIApplication(Application):
    NAME = "jpki"
    AID = AID
    FILES = {
        EF_SIGN_CERT: BinaryEF("署名用電子証明書", read=after_verify(EF_SIGN_PIN)),
        EF_SIGN_CA_CERT: BinaryEF("署名用CA証明書", read=ALWAYS),
        0x0005: OpaqueEF("exists on the real card; purpose unknown"),
        EF_TOKEN_INFO: BinaryEF("token info (PKCS#11 CK_TOKEN_INFO, 160 bytes)", read=ALWAYS),
        EF_CERT_AVAILABILITY: BinaryEF("certificate availability", read=ALWAYS),
        0x0009: OpaqueEF("protected; purpose unknown"),
        EF_AUTH_CERT: BinaryEF("利用者証明用電子証明書", read=ALWAYS),
        EF_AUTH_CA_CERT: BinaryEF("利用者証明用CA証明書", read=ALWAYS),
        # Listed by client code as existing; no client reads them (see the module docstring).
        0x0010: KeyReferenceEF("key reference, purpose unknown (probed by myna-card)"),
        0x0016: OpaqueEF("terminal CA key reference (SET PUBLIC IC KEY)"),
        EF_AUTH_KEY: KeyEF("利用者証明用秘密鍵", use=after_verify(EF_AUTH_PIN)),
        EF_AUTH_PIN: PinEF(AUTH_PIN),
        EF_SIGN_KEY: KeyEF("署名用秘密鍵", use=after_verify(EF_SIGN_PIN)),
        EF_SIGN_PIN: PinEF(SIGN_PASSWORD),
        0x0019: KeyReferenceEF("key reference, purpose unknown"),
        0x001C: KeyReferenceEF("key reference, purpose unknown"),
        0x001E: KeyReferenceEF("key reference, purpose unknown"),
    }

    def set_public_ic_key(self, apdu: CommandAPDU) -> bytes:
        """``80 A2``: the terminal hands over a CV certificate to check against EF 0016.

        Observed on physical cards: P1-P2 ``00 00``, ``00 AE``, ``80 00``, ``00 B6`` answer
        ``6A86`` (soltia48/myna-card); ``80 A2 00 C1`` with 256 bytes that are no TLV object
        answers ``6700`` (AokiApp/jsapdu's real-card test). So ``00 C1`` is the one P1-P2
        taken; data that is not exactly one BER-TLV object is a wrong length. A well-formed
        certificate cannot verify — no terminal CA key is published, EF 0016 holds none
        here — and answers ``6A80`` (our choice: what the card says then is not published).
        """
        if apdu.p1p2 not in SET_PUBLIC_IC_KEY_P1P2:
            raise StatusError(SW.INCORRECT_P1P2)
        try:
            whole = bool(apdu.data) and ber_read_header(apdu.data).total_length == len(apdu.data)
        except TLVError:
            whole = False
        if not whole:
            raise StatusError(SW.WRONG_LENGTH)
        raise StatusError(SW.WRONG_DATA)

    def last_command_indicator(self, apdu: CommandAPDU) -> bytes:
        """``80 FC 00 00``: the iPhone JPKI token's last-command indicator; physical cards
        answer the exact four-byte command ``6700`` (soltia48/myna-card), which is how a
        host tells them apart. Other P1-P2 are our ``6A86``."""
        if apdu.p1p2:
            raise StatusError(SW.INCORRECT_P1P2)
        raise StatusError(SW.WRONG_LENGTH)

    INSTRUCTIONS = {
        **Application.INSTRUCTIONS,
        (CLA_PROPRIETARY, INS_COMPUTE_DIGITAL_SIGNATURE): Application.compute_digital_signature,
        (CLA_PROPRIETARY, INS_SET_PUBLIC_IC_KEY): set_public_ic_key,
        (CLA_PROPRIETARY, INS_LAST_COMMAND_INDICATOR): last_command_indicator,
    }


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """EF 0006: PKCS#11 CK_TOKEN_INFO with 4-byte big-endian CK_ULONGs (160 bytes).

    Defaults are the values observed on a physical card (facts §3.1), which are illustrative.
    """

    label: str = "JPKIAPICCTOKEN2"
    manufacturer_id: str = "0" * 31 + "1"
    model: str = "E16R01NJ"
    serial_number: str = "0000000020500003"
    flags: int = 0x0000040D
    max_session_count: int = 1
    session_count: int = 0
    max_rw_session_count: int = 1
    rw_session_count: int = 0
    max_pin_len: int = 16
    min_pin_len: int = 6
    memory: int = 0xFFFFFFFF
    hardware_version: bytes = b"03"
    firmware_version: bytes = b"01"
    utc_time: bytes = b" " * 16

    LAYOUT = struct.Struct(">32s32s16s16s11L2s2s16s")

    def encode(self) -> bytes:
        def text(value: str, width: int) -> bytes:
            raw = value.encode("ascii")
            if len(raw) > width:
                raise ValueError(f"{value!r} is longer than {width} bytes")
            return raw.ljust(width, b" ")

        return self.LAYOUT.pack(
            text(self.label, 32), text(self.manufacturer_id, 32), text(self.model, 16),
            text(self.serial_number, 16), self.flags, self.max_session_count,
            self.session_count, self.max_rw_session_count, self.rw_session_count,
            self.max_pin_len, self.min_pin_len, self.memory, self.memory, self.memory,
            self.memory, self.hardware_version, self.firmware_version, self.utc_time)


def certificate_ef(der: bytes, size: int = CERTIFICATE_EF_SIZE) -> bytes:
    """A certificate EF's physical content: the DER, then filler to the EF size."""
    if der[:2] != b"\x30\x82":
        raise ValueError("certificate EFs must start 30 82 LL LL (OpenSC reads the length there)")
    if len(der) > size:
        raise ValueError(f"certificate of {len(der)} bytes does not fit a {size}-byte EF")
    return der + bytes((FILLER,)) * (size - len(der))


def certificate_availability(has_sign: bool, has_auth: bool = True) -> bytes:
    return bytes((CERT_AVAILABLE if has_sign else 0x00, CERT_AVAILABLE if has_auth else 0x00,
                  0x00))


def certificate_files(*, auth: bytes, auth_ca: bytes, sign_ca: bytes,
                      sign: bytes | None) -> dict[str, bytes]:
    """The certificate EFs and EF 0008 of a card image, from DER certificates (``sign`` None
    for a card without a signing certificate): the one place that lays them out."""
    def key(fid: int) -> str:
        return image_key(JPKIApplication.NAME, fid)

    return {
        key(EF_AUTH_CERT): certificate_ef(auth),
        key(EF_AUTH_CA_CERT): certificate_ef(auth_ca),
        key(EF_SIGN_CA_CERT): certificate_ef(sign_ca),
        key(EF_CERT_AVAILABILITY): certificate_availability(sign is not None),
        key(EF_SIGN_CERT): certificate_ef(sign) if sign is not None else b"",
    }
