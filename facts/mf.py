"""The power-on state: the GlobalPlatform Issuer Security Domain (MF) and its data objects
(facts §7), and every application the card carries, in the order a partial DF name
selects them."""

from __future__ import annotations

from . import common, jpki, juki, text, visual

ISD_AID = bytes.fromhex("A0000001510000")

TAG_ISSUER_ID = 0x0042
TAG_CARD_ID = 0x0045
TAG_CARD_RECOGNITION = 0x0066
TAG_MUNICIPALITY = 0x00F0
TAG_EXPIRY = 0x00F2
TAG_INTERMEDIATE_KEY_ID = 0x00F7
TAG_CHAIN_UPPER = 0x00F8
TAG_CHAIN_LOWER = 0x7F21

APPLICATIONS: dict[str, bytes] = {
    "isd": ISD_AID,
    "jpki": jpki.AID,
    "common": common.AID,
    "juki": juki.AID,
    "visual": visual.AID,
    "text": text.AID,
}
"""Name → AID of the built-in applications, in on-card order."""

LABELLED_APPLICATIONS: tuple[tuple[str, bytes], ...] = (
    (jpki.LABEL, jpki.AID), (text.LABEL, text.AID), (visual.LABEL, visual.AID),
    (common.LABEL, common.AID), (juki.LABEL, juki.AID),
)
"""The applications a holder's software talks to, with their human names."""
