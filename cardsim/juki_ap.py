"""住基AP (basic resident registry), AID D3921000310001010401.

Selectable; its files and commands are not built yet (no file → ``6A82``).
"""

from __future__ import annotations

from cardsim.application import Application

AID = bytes.fromhex("D3921000310001010401")


class JukiApplication(Application):
    NAME = "juki"
    AID = AID
    FILES = {}
