"""In-process back end: the virtual card as if it sat in a reader on this machine."""

from __future__ import annotations

from pathlib import Path

from ..cardsim.card import VirtualCard
from ..cardsim.storage import CardImageError
from .base import CardConnection, CardRemovedError, NoCardError, Reader, ReaderError


class SimulatorReader(Reader):
    """A slot holding a ``VirtualCard``: either given (``insert``) or opened from an image
    directory on each ``connect`` and closed (state saved, lock released) on disconnect."""

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
        return self._live().transmit(command)

    def reset(self) -> bytes:
        self._atr = self._live().reset()
        return self._atr

    def disconnect(self) -> None:
        card, self._card = self._card, None
        if card is None or self.removed:
            return
        if self._owns_card:
            card.close()
        else:
            card.power_off()
