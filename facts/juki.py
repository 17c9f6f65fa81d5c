"""住基AP (resident registry application): identifiers (facts §6)."""

from __future__ import annotations

AID = bytes.fromhex("D3921000310001010401")
LABEL = "住基AP"

EF_PIN = 0x001C
