"""The simulated card behind a real PC/SC stack: a private pcscd with one vpcd slot.

Only one pcscd can run on a machine (its socket path is compiled in), so a test session starts
at most one, and says why it cannot when another is running or pcscd / vpcd / pyscard are not
installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..cardsim.card import VirtualCard
from ..cardsim.vpcd import VpcdBridge
from ..readers.pcscd import PCSCD, VPCD_DRIVER, ForeignPcscdError, Pcscd, free_port_pair

CARD_WAIT = 15.0
"""Bound on waiting for pcscd to notice an insertion or removal (it polls every 400 ms)."""


def pcsc_unavailable_reason() -> str | None:
    """Why the simulator cannot be served through pcscd here, or None when it can."""
    missing = []
    if not Path(PCSCD).exists():
        missing.append("pcscd (apt-get install pcscd)")
    if not Path(VPCD_DRIVER).exists():
        missing.append("the vpcd driver (apt-get install vsmartcard-vpcd)")
    if importlib.util.find_spec("smartcard") is None:
        missing.append("pyscard (pip install 'mynacard[pcsc]')")
    if missing:
        return f"--mynacard-reader=pcsc needs {', '.join(missing)}"
    return None


class PcscSlot:
    """pcscd running with vpcd slot 0 served by a bridge; ``insert`` a card image, ``remove``
    it. Raises ``ForeignPcscdError`` when a pcscd not started here is already running."""

    def __init__(self, workdir: Path) -> None:
        self.pcscd = Pcscd(workdir, free_port_pair())
        self.pcscd.start()
        self.reader_name = self.pcscd.reader_names[0]
        self.bridge = VpcdBridge(None, "127.0.0.1", self.pcscd.vpcd_port).start()

    def insert(self, card_dir: Path) -> VirtualCard:
        from ..readers.pcsc import PcscReader

        card = VirtualCard.open(card_dir)
        self.bridge.insert(card)
        if not PcscReader(self.reader_name).wait_for_card(present=True, timeout=CARD_WAIT):
            self.remove()
            raise TimeoutError(f"pcscd did not see the card within {CARD_WAIT:g} s")
        return card

    def remove(self) -> None:
        from ..readers.pcsc import PcscReader

        card = self.bridge.remove()
        if isinstance(card, VirtualCard):
            card.close()
        PcscReader(self.reader_name).wait_for_card(present=False, timeout=CARD_WAIT)

    def close(self) -> None:
        try:
            self.remove()
            self.bridge.stop()
        finally:
            self.pcscd.stop()


__all__ = ["ForeignPcscdError", "PcscSlot", "pcsc_unavailable_reason"]
