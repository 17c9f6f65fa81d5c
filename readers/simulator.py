"""In-process back end: the virtual card as if it sat in a reader on this machine."""

from __future__ import annotations

from pathlib import Path

from ..cardsim.card import VirtualCard
from ..cardsim.storage import CardImageError, PowerLoss
from .base import CardConnection, CardRemovedError, NoCardError, Reader, ReaderError


class SimulatorReader(Reader):
    """A slot holding a ``VirtualCard``: either given (``insert``) or opened from an image
    directory on each ``connect`` and closed (state saved, lock released) on disconnect."""

    cuts_power_mid_write = True

    def __init__(self, name: str = "mynacard simulator 00", *,
                 card: VirtualCard | None = None, image: Path | None = None,
                 sync: bool | None = None) -> None:
        self.name = name
        self._card = card
        self._image = Path(image) if image is not None else None
        self._sync = sync
        self._connection: SimulatorConnection | None = None

    @classmethod
    def for_image(cls, path: Path | str, *, sync: bool | None = None) -> SimulatorReader:
        return cls(f"mynacard simulator ({path})", image=Path(path), sync=sync)

    def card_present(self) -> bool:
        return self._card is not None or (self._image is not None
                                          and (self._image / "card.json").is_file())

    def insert(self, card: VirtualCard) -> None:
        self._card = card

    def remove(self) -> VirtualCard | None:
        """Pull the card out; an open connection fails from now on with CardRemovedError."""
        card, self._card = self._card, None
        if self._connection is not None:
            self._connection.removed = True
        if card is not None:
            card.power_off()
        return card

    def connect(self) -> SimulatorConnection:
        if self._card is not None:
            self._connection = SimulatorConnection(self._card, owns_card=False)
            return self._connection
        if self._image is None:
            raise NoCardError(f"no card in {self.name}")
        if not (self._image / "card.json").is_file():
            raise NoCardError(f"{self._image} is not a card image (no card.json)")
        try:
            card = VirtualCard.open(self._image, sync=self._sync)
        except CardImageError as exc:
            raise ReaderError(str(exc)) from exc
        self._connection = SimulatorConnection(card, owns_card=True)
        return self._connection


class SimulatorConnection(CardConnection):
    def __init__(self, card: VirtualCard, *, owns_card: bool) -> None:
        self._card: VirtualCard | None = card
        self._owns_card = owns_card
        self.removed = False
        self._power_cut_armed = False
        """Whether a cut armed here turns the card's ``PowerLoss`` into a removal (a cut
        armed on the card itself, by a card test, reaches that test untouched)."""
        self._atr = card.power_on()

    def _live(self) -> VirtualCard:
        if self.removed:
            raise CardRemovedError("the card was removed from the reader")
        if self._card is None:
            raise ReaderError("connection is closed")
        return self._card

    @property
    def atr(self) -> bytes:
        return self._atr

    def transmit_raw(self, command: bytes) -> bytes:
        card = self._live()
        try:
            return card.transmit(command)
        except PowerLoss as loss:
            if not self._power_cut_armed:
                raise
            # The card went dead mid-command: what reached its memory stays, nothing else does.
            self._power_cut_armed = False
            self.removed = True
            self._card = None
            if self._owns_card:
                card.close()
            else:
                card.power_off()
            raise CardRemovedError(f"the card lost power in the middle of a write ({loss}); "
                                   "it never answered APDU "
                                   f"{command[:4].hex().upper()}") from None

    def cut_power_at_write(self, at_write: int, *, lands: bool) -> None:
        """Cut the card's power at its ``at_write``-th write of non-volatile memory from now
        (PIN retry counters, PIN changes); ``lands`` says whether that write completes first.
        Only an in-process card can be torn like this: the fault wrappers rely on it."""
        self._live().store.inject_power_loss(at_write, lands=lands)
        self._power_cut_armed = True

    def reset(self) -> bytes:
        self._atr = self._live().reset()
        return self._atr

    def disconnect(self) -> None:
        card, self._card = self._card, None
        if card is None or self.removed:
            return
        if self._power_cut_armed:
            card.store.inject_power_loss(None)
        if self._owns_card:
            card.close()
        else:
            card.power_off()
