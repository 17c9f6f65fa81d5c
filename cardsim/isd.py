"""GlobalPlatform Issuer Security Domain, AID A0 00 00 01 51 00 00: the power-on state.

It holds no EFs; selecting it returns the card to its MF-equivalent state (facts §2).
"""

from __future__ import annotations

from cardsim.application import Application

AID = bytes.fromhex("A000000151 0000".replace(" ", ""))


class IssuerSecurityDomain(Application):
    NAME = "isd"
    AID = AID
    FILES = {}
