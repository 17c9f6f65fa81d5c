"""Host-side reader layer: one interface, several back ends (in-process simulator, PC/SC)."""

from .base import (
    CardConnection,
    CardRemovedError,
    NoCardError,
    NoReaderError,
    Reader,
    ReaderError,
    TransmitError,
)
from .registry import open_reader

__all__ = [
    "CardConnection",
    "CardRemovedError",
    "NoCardError",
    "NoReaderError",
    "Reader",
    "ReaderError",
    "TransmitError",
    "open_reader",
]
