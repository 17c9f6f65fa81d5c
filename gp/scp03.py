"""SCP03-style secure channel primitives (GP Card Spec v2.3 Amendment D), card and host alike.

* Key derivation: NIST SP 800-108 counter-mode KDF with AES-CMAC (``cryptography``'s
  KBKDFCMAC); derivation data = 11 zero bytes ‖ constant ‖ ``00`` ‖ L (2 bytes) ‖
  counter (1 byte) ‖ context, the context being host challenge ‖ card challenge.
* Session keys S-ENC (constant 04) and S-MAC (06); card cryptogram (00) and host
  cryptogram (01) are 64-bit KDF outputs under S-MAC.
* C-MAC: AES-CMAC under S-MAC over the 16-byte MAC chaining value ‖ header (CLA with the
  SM bit ``04``) ‖ Lc (counting the MAC) ‖ data; the first 8 bytes travel, all 16 chain.

Only security level ``01`` (C-MAC) is offered: nothing the installer sends is secret.
Static keys are diversified per card from an issuer master key with the card's key
diversification data (constants ``10``/``11``/``12``: our choice, the real card's issuer
key scheme is not public).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFCMAC, CounterLocation, Mode

from ..errors import MynacardError

CARD_CRYPTOGRAM, HOST_CRYPTOGRAM, S_ENC, S_MAC = 0x00, 0x01, 0x04, 0x06
STATIC_ENC, STATIC_MAC, STATIC_DEK = 0x10, 0x11, 0x12
KEY_VERSION = 0x30
SCP_ID, SCP_I = 0x03, 0x70
SECURITY_LEVEL_CMAC = 0x01
CHALLENGE_LENGTH = 8
DIVERSIFICATION_LENGTH = 10
MASTER_KEY_FILE = "isd-master.key"


MAX_MACED_FIELD = 255
"""Lc counts the MAC and is one byte in the C-MAC input (Amendment D §6.2.4): a longer field
(an extended APDU) cannot carry a C-MAC at all."""


class SCPError(MynacardError, ValueError):
    """A cryptogram or MAC does not verify, or a message is malformed."""


class SCPLengthError(SCPError):
    """The command data is too long to carry a C-MAC (the card answers ``6700``)."""


def kdf(key: bytes, constant: int, bits: int, context: bytes) -> bytes:
    prefix = bytes(11) + bytes((constant, 0x00)) + bits.to_bytes(2, "big")
    return KBKDFCMAC(algorithms.AES, Mode.CounterMode, bits // 8, rlen=1, llen=None,
                     location=CounterLocation.MiddleFixed, label=None, context=None,
                     fixed=prefix + context, break_location=len(prefix)).derive(key)


def aes_cmac(key: bytes, data: bytes) -> bytes:
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


@dataclass(frozen=True, slots=True)
class StaticKeys:
    enc: bytes
    mac: bytes
    dek: bytes
    version: int = KEY_VERSION

    @classmethod
    def diversified(cls, master: bytes, diversification: bytes) -> StaticKeys:
        return cls(*(kdf(master, c, 128, diversification)
                     for c in (STATIC_ENC, STATIC_MAC, STATIC_DEK)))

    def encode(self) -> bytes:
        return bytes((self.version,)) + self.enc + self.mac + self.dek

    @classmethod
    def decode(cls, raw: bytes) -> StaticKeys:
        if len(raw) != 49:
            raise SCPError("static key set must be 49 bytes")
        return cls(raw[1:17], raw[17:33], raw[33:49], raw[0])


@dataclass(slots=True)
class Session:
    """Session state one side keeps: keys, then the MAC chaining value."""

    s_enc: bytes
    s_mac: bytes
    context: bytes
    chaining: bytes = bytes(16)

    @classmethod
    def derive(cls, keys: StaticKeys, host_challenge: bytes, card_challenge: bytes) -> Session:
        context = host_challenge + card_challenge
        return cls(kdf(keys.enc, S_ENC, 128, context), kdf(keys.mac, S_MAC, 128, context),
                   context)

    def card_cryptogram(self) -> bytes:
        return kdf(self.s_mac, CARD_CRYPTOGRAM, 64, self.context)

    def host_cryptogram(self) -> bytes:
        return kdf(self.s_mac, HOST_CRYPTOGRAM, 64, self.context)

    def _mac(self, header: bytes, data: bytes) -> bytes:
        if len(data) + 8 > MAX_MACED_FIELD:
            raise SCPLengthError(f"{len(data)} data bytes and the C-MAC exceed "
                                 f"{MAX_MACED_FIELD} bytes")
        cla = header[0] | 0x04
        full = aes_cmac(self.s_mac, self.chaining + bytes((cla,)) + header[1:4]
                        + bytes((len(data) + 8,)) + data)
        return full

    def wrap(self, header: bytes, data: bytes) -> bytes:
        """Host side: the data field with its C-MAC appended; advances the chain."""
        full = self._mac(header, data)
        self.chaining = full
        return data + full[:8]

    def unwrap(self, header: bytes, field: bytes) -> bytes:
        """Card side: check and strip the C-MAC; advances the chain only when it verifies."""
        if len(field) > MAX_MACED_FIELD:
            raise SCPLengthError(f"a {len(field)}-byte field cannot carry a C-MAC")
        if len(field) < 8:
            raise SCPError("no C-MAC")
        data, mac = field[:-8], field[-8:]
        full = self._mac(header, data)
        if not hmac.compare_digest(full[:8], mac):
            raise SCPError("C-MAC does not verify")
        self.chaining = full
        return data
