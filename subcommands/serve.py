"""``mynacard serve``: put card images into pcscd's vpcd readers until stopped.

While serving, SIGUSR1 takes the card out of slot 0 (or puts it back), SIGUSR2
does the same for slot 1; SIGINT / SIGTERM save the card state and exit.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass
from pathlib import Path

import click

from ..cardsim.card import VirtualCard
from ..cardsim.storage import CardImageError
from ..cardsim.vpcd import VPCD_PORT, VpcdBridge

log = logging.getLogger("mynacard.serve")


@dataclass
class _ServedSlot:
    """A slot's bridge and the card that belongs in it (also while it is taken out)."""

    number: int
    image: Path
    card: VirtualCard
    bridge: VpcdBridge

    def toggle(self) -> None:
        if self.bridge.card is None:
            self.bridge.insert(self.card)
            log.info("slot %d: card %s inserted", self.number, self.image)
        else:
            self.bridge.remove()
            log.info("slot %d: card %s removed", self.number, self.image)


def _open_cards(images: list[Path]) -> list[VirtualCard]:
    cards: list[VirtualCard] = []
    try:
        for image in images:
            try:
                cards.append(VirtualCard.open(image))
            except CardImageError as exc:
                raise click.ClickException(f"cannot serve {image}: {exc}") from None
    except BaseException:
        for card in cards:
            card.close()
        raise
    return cards


@click.command("serve")
@click.argument("card_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--second-card", "second_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Card image to serve in the second vpcd slot (PORT + 1).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Where pcscd's vpcd driver listens.")
@click.option("--port", default=VPCD_PORT, show_default=True, type=click.IntRange(1, 65534),
              help="vpcd's port for slot 0 (slot 1 is PORT + 1).")
@click.option("--trace", is_flag=True, help="Log every APDU and its response.")
def serve(card_dir: Path, second_dir: Path | None, host: str, port: int, trace: bool) -> None:
    """Serve the card image CARD_DIR through pcscd's vpcd reader until stopped.

    Needs pcscd with vsmartcard-vpcd (reader "Virtual PCD 00 00"); the card is then
    seen by every PC/SC application: OpenSC, pyscard, --reader pcsc. Ctrl-C or SIGTERM
    save the card and stop; SIGUSR1 / SIGUSR2 remove or re-insert the card in slot 0 / 1.
    """
    logging.basicConfig(level=logging.INFO, format="mynacard serve: %(message)s")
    images = [card_dir] + ([second_dir] if second_dir is not None else [])
    cards = _open_cards(images)

    def log_apdu(command: bytes, response: bytes) -> None:
        log.info("> %s\n< %s", command.hex(" ").upper(), response.hex(" ").upper())

    slots = [
        _ServedSlot(n, image, card,
                    VpcdBridge(card, host, port + n, trace=log_apdu if trace else None))
        for n, (image, card) in enumerate(zip(images, cards, strict=True))
    ]
    # The signals are taken synchronously with sigwait() in this thread, blocked everywhere
    # else (the bridge threads inherit the mask): no handler runs inside a lock we hold.
    signals = {signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2}
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        for slot in slots:
            slot.bridge.start()
            log.info("slot %d: serving %s on vpcd %s:%d (PC/SC reader 'Virtual PCD 00 %02d')",
                     slot.number, slot.image, host, port + slot.number, slot.number)
        received = signal.sigtimedwait(signals, 2.0)
        for slot in slots:
            if received is None and not slot.bridge.connected:
                log.info("slot %d: waiting for vpcd at %s:%d (is pcscd running with "
                         "vsmartcard-vpcd?)", slot.number, host, port + slot.number)
        signum = received.si_signo if received is not None else signal.sigwait(signals)
        while signum in (signal.SIGUSR1, signal.SIGUSR2):
            number = 0 if signum == signal.SIGUSR1 else 1
            if number < len(slots):
                slots[number].toggle()
            signum = signal.sigwait(signals)
        log.info("%s: stopping", signal.Signals(signum).name)
    finally:
        try:
            for slot in slots:
                slot.bridge.stop()
        finally:
            for slot in slots:
                slot.card.close()
            log.info("card state saved")
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
