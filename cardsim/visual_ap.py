"""券面事項確認AP (card-face confirmation), AID D3921000310001010402.

Selectable; its files and commands are not built yet (no file → ``6A82``).
"""

from __future__ import annotations

from cardsim.application import Application

AID = bytes.fromhex("D3921000310001010402")


class VisualApplication(Application):
    NAME = "visual"
    AID = AID
    FILES = {}
