"""券面事項入力補助AP (card-info input support), AID D3921000310001010408.

Selectable; its files and commands are not built yet (no file → ``6A82``).
"""

from __future__ import annotations

from cardsim.application import Application

AID = bytes.fromhex("D3921000310001010408")


class TextApplication(Application):
    NAME = "text"
    AID = AID
    FILES = {}
