"""Published answers-to-reset of My Number cards (facts §10.1), by name.

The contact ATR ``jpki`` is the one OpenSC's jpki driver matches directly; with any
other the driver still finds the card through its SELECT probe. ``jpki-06`` … ``-09``
are contactless ATRs as a PC/SC reader synthesises them.
"""

from __future__ import annotations

ATRS: dict[str, bytes] = {
    "jpki": bytes.fromhex("3BE000FF8131FE4514"),
    "jpki-02": bytes.fromhex("3BDA13FF8131FB468012392F31C173C601C03B"),
    "jpki-03": bytes.fromhex("3BC5FF8131FB458073C6010000"),
    "jpki-04": bytes.fromhex("3BF59100FF918171FE400042000100D1D6"),
    "jpki-05": bytes.fromhex("3BF59100FF918171FE4000420001B3A115"),
    "jpki-06": bytes.fromhex("3B888001000005E0B381A1007F"),
    "jpki-07": bytes.fromhex("3B888001000041E0B381A1003B"),
    "jpki-08": bytes.fromhex("3B888001004B51FF0081D100BC"),
    "jpki-09": bytes.fromhex("3B888001004B51FFB381D1000F"),
}
DEFAULT_ATR = "jpki"
