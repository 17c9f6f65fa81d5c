"""共通カードAP (common card application), AID D3921000310001010100.

Selectable; its files and commands are not built yet (no file → ``6A82``).
"""

from __future__ import annotations

from cardsim.application import Application

AID = bytes.fromhex("D3921000310001010100")


class CommonApplication(Application):
    NAME = "common"
    AID = AID
    FILES = {}
