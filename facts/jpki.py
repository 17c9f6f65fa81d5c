"""公的個人認証AP (JPKI-AP): identifiers and file layout facts (facts §3).

The card side declares the access rules (``cardsim.jpki_ap``); the host side the
commands (``client.jpki``); both take the identifiers from here.
"""

from __future__ import annotations

AID = bytes.fromhex("D392F000260100000001")
LABEL = "JPKI-AP (公的個人認証AP)"

EF_SIGN_CERT = 0x0001
"""署名用電子証明書 (readable after the signing password)."""
EF_SIGN_CA_CERT = 0x0002
EF_TOKEN_INFO = 0x0006
"""PKCS#11 CK_TOKEN_INFO, 160 bytes."""
EF_CERT_AVAILABILITY = 0x0008
EF_AUTH_CERT = 0x000A
"""利用者証明用電子証明書 (free to read)."""
EF_AUTH_CA_CERT = 0x000B
EF_AUTH_KEY = 0x0017
EF_AUTH_PIN = 0x0018
EF_SIGN_KEY = 0x001A
EF_SIGN_PIN = 0x001B

CERTIFICATE_EF_SIZE = 2048
"""Certificate EFs are larger than the DER they hold; the rest is filler (facts §3.2)."""
FILLER = 0xFF
CERT_AVAILABLE = 0x8F
"""EF 0008 byte value on cards carrying the certificate (facts §3.1)."""
SIGNATURE_LENGTH = 256
"""RSA-2048: every signature the AP returns."""
