"""共通カードAP (common card application): identifiers (facts §6)."""

from __future__ import annotations

AID = bytes.fromhex("D3921000310001010100")
LABEL = "共通AP"

EF_CARD_INFO = 0x0001
"""Record 1: ``01 1C`` + card serial (15) ‖ municipality code (5) ‖ expiry ``YYYYMMDD``."""
EF_AUTH_KEY = 0x0019
"""INTERNAL AUTHENTICATE key (card authentication), no credential needed."""
EF_PIN = 0x001C
CARD_INFO_TAG = 0x01
