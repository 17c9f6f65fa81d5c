"""PC/SC back end over pyscard: real readers, and the simulator served through pcscd + vpcd.

pyscard is imported lazily so the rest of mynacard installs and runs without
libpcsclite; asking for a PC/SC reader without it raises ``PcscUnavailableError``.

PC/SC return codes become the reader layer's own exceptions, each naming the
reader and what went wrong. ``61xx`` / ``6Cxx`` handling is inherited from
``CardConnection.transmit`` (pyscard's low-level API does neither).
"""

from __future__ import annotations

import time
from types import ModuleType

from .base import (
    CardConnection,
    CardRemovedError,
    NoCardError,
    NoReaderError,
    Reader,
    ReaderError,
    TransmitError,
)

INSTALL_HINT = (
    "install mynacard[pcsc] (pip install 'mynacard[pcsc]'; building pyscard needs gcc and "
    "libpcsclite-dev) and run pcscd"
)

# SCARD_W_UNPOWERED_CARD right after a card swap clears once pcscd's next presence
# poll (every 400 ms) has seen the swap.
_UNPOWERED_RETRY_SECONDS = 1.2


class PcscUnavailableError(ReaderError):
    """pyscard (and so PC/SC) is not available in this Python environment."""


def _scard() -> ModuleType:
    try:
        from smartcard import scard
    except ImportError as exc:
        raise PcscUnavailableError(f"PC/SC support is not installed: {INSTALL_HINT}") from exc
    return scard


def _u32(code: int) -> int:
    # pyscard hands PC/SC codes back as signed or unsigned longs depending on the platform.
    return code & 0xFFFFFFFF


def _error(scard: ModuleType, hresult: int, action: str, reader: str | None) -> ReaderError:
    """The reader-layer exception for a failed PC/SC call."""
    code = _u32(hresult)
    where = f" on reader {reader!r}" if reader else ""
    detail = f"{scard.SCardGetErrorMessage(hresult)} (0x{code:08X})"
    s = scard
    if code in (_u32(s.SCARD_E_NO_SERVICE), _u32(s.SCARD_E_SERVICE_STOPPED)):
        return NoReaderError(f"cannot {action}: the PC/SC service pcscd is not running ({detail})")
    if code in (
        _u32(s.SCARD_E_NO_READERS_AVAILABLE),
        _u32(s.SCARD_E_UNKNOWN_READER),
        _u32(s.SCARD_E_READER_UNAVAILABLE),
    ):
        return NoReaderError(f"cannot {action}{where}: no such reader ({detail})")
    if code in (
        _u32(s.SCARD_E_NO_SMARTCARD),
        _u32(s.SCARD_W_UNPOWERED_CARD),
        _u32(s.SCARD_W_UNRESPONSIVE_CARD),
    ):
        return NoCardError(f"cannot {action}{where}: no working card in the reader ({detail})")
    if code in (_u32(s.SCARD_W_REMOVED_CARD), _u32(s.SCARD_W_RESET_CARD)):
        return CardRemovedError(
            f"cannot {action}{where}: the card was removed or reset since it was connected "
            f"({detail}); connect again"
        )
    if code == _u32(s.SCARD_E_NOT_TRANSACTED):
        return TransmitError(
            f"cannot {action}{where}: the APDU was not transacted, the card stopped answering "
            f"({detail})"
        )
    return TransmitError(f"cannot {action}{where}: {detail}")


class _Context:
    """A PC/SC resource-manager context, released on exit."""

    def __init__(self) -> None:
        self.scard = _scard()
        hresult, self.handle = self.scard.SCardEstablishContext(self.scard.SCARD_SCOPE_USER)
        if hresult != self.scard.SCARD_S_SUCCESS:
            raise _error(self.scard, hresult, "reach the PC/SC service", None)

    def release(self) -> None:
        self.scard.SCardReleaseContext(self.handle)

    def __enter__(self) -> _Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def readers(self) -> list[str]:
        hresult, names = self.scard.SCardListReaders(self.handle, [])
        if _u32(hresult) == _u32(self.scard.SCARD_E_NO_READERS_AVAILABLE):
            return []
        if hresult != self.scard.SCARD_S_SUCCESS:
            raise _error(self.scard, hresult, "list readers", None)
        return list(names)

    def state(self, reader: str, known: int, timeout_ms: int) -> tuple[int, bytes]:
        """Wait up to ``timeout_ms`` for ``reader`` to leave state ``known``; (state, ATR)."""
        s = self.scard
        hresult, states = s.SCardGetStatusChange(self.handle, timeout_ms, [(reader, known)])
        if _u32(hresult) == _u32(s.SCARD_E_TIMEOUT):
            return known, b""
        if hresult != s.SCARD_S_SUCCESS:
            raise _error(s, hresult, "read the reader state", reader)
        _, event_state, atr = states[0]
        if event_state & s.SCARD_STATE_UNKNOWN:
            raise NoReaderError(f"no reader named {reader!r}")
        return event_state, bytes(atr)


def list_pcsc_readers() -> list[str]:
    """Names of the PC/SC readers pcscd knows, with or without a card."""
    with _Context() as context:
        return context.readers()


class PcscConnection(CardConnection):
    """A shared-mode connection to the card in one PC/SC reader."""

    def __init__(self, reader: str, context: _Context, handle: int, protocol: int) -> None:
        self.reader = reader
        self._context = context
        self._scard = context.scard
        self._handle: int | None = handle
        self._protocol = protocol
        self._pci = self._pci_for(protocol)
        self._atr = self._read_atr()

    def _pci_for(self, protocol: int) -> object:
        s = self._scard
        return s.SCARD_PCI_T1 if protocol == s.SCARD_PROTOCOL_T1 else s.SCARD_PCI_T0

    def _live_handle(self, action: str) -> int:
        if self._handle is None:
            raise TransmitError(f"cannot {action}: the connection to {self.reader!r} is closed")
        return self._handle

    def _read_atr(self) -> bytes:
        hresult, _name, _state, _protocol, atr = self._scard.SCardStatus(
            self._live_handle("read the ATR")
        )
        if hresult != self._scard.SCARD_S_SUCCESS:
            raise _error(self._scard, hresult, "read the ATR", self.reader)
        return bytes(atr)

    @property
    def atr(self) -> bytes:
        return self._atr

    def transmit_raw(self, command: bytes) -> bytes:
        handle = self._live_handle("transmit")
        hresult, response = self._scard.SCardTransmit(handle, self._pci, list(command))
        if hresult != self._scard.SCARD_S_SUCCESS:
            raise _error(self._scard, hresult, f"transmit APDU {command[:4].hex()}…", self.reader)
        if len(response) < 2:
            raise TransmitError(
                f"the card in {self.reader!r} answered {bytes(response).hex() or 'nothing'}, "
                "which has no status word"
            )
        return bytes(response)

    def reset(self) -> bytes:
        s = self._scard
        hresult, protocol = s.SCardReconnect(
            self._live_handle("reset the card"),
            s.SCARD_SHARE_SHARED,
            s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1,
            s.SCARD_RESET_CARD,
        )
        if hresult != s.SCARD_S_SUCCESS:
            raise _error(s, hresult, "reset the card", self.reader)
        self._protocol = protocol
        self._pci = self._pci_for(protocol)
        self._atr = self._read_atr()
        return self._atr

    def disconnect(self) -> None:
        """Close the connection and power the card down, which clears its PIN state."""
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        try:
            # The card may already be gone; the handle is released either way.
            self._scard.SCardDisconnect(handle, self._scard.SCARD_UNPOWER_CARD)
        finally:
            self._context.release()


class PcscReader(Reader):
    """One named PC/SC reader."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"PcscReader({self.name!r})"

    def card_present(self) -> bool:
        with _Context() as context:
            state, _atr = context.state(self.name, context.scard.SCARD_STATE_UNAWARE, 0)
            return bool(state & context.scard.SCARD_STATE_PRESENT)

    def wait_for_card(self, present: bool = True, timeout: float = 5.0) -> bool:
        """Block until a card is (or is no longer) in the reader; False on timeout."""
        deadline = time.monotonic() + timeout
        with _Context() as context:
            s = context.scard
            state, _atr = context.state(self.name, s.SCARD_STATE_UNAWARE, 0)
            while bool(state & s.SCARD_STATE_PRESENT) != present:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                known = state & ~s.SCARD_STATE_CHANGED
                state, _atr = context.state(self.name, known, int(remaining * 1000) + 1)
            return True

    def connect(self) -> PcscConnection:
        context = _Context()
        s = context.scard
        deadline = time.monotonic() + _UNPOWERED_RETRY_SECONDS
        try:
            while True:
                hresult, handle, protocol = s.SCardConnect(
                    context.handle,
                    self.name,
                    s.SCARD_SHARE_SHARED,
                    s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1,
                )
                if hresult == s.SCARD_S_SUCCESS:
                    return PcscConnection(self.name, context, handle, protocol)
                if _u32(hresult) != _u32(s.SCARD_W_UNPOWERED_CARD) or time.monotonic() > deadline:
                    raise _error(s, hresult, "connect to the card", self.name)
                time.sleep(0.05)
        except BaseException:
            context.release()
            raise


def pcsc_reader(name: str | None = None) -> PcscReader:
    """The reader called ``name``, or (``name`` None) the first reader holding a card."""
    readers = list_pcsc_readers()
    if not readers:
        raise NoReaderError("no PC/SC reader found (is pcscd running with a reader attached?)")
    if name is not None:
        if name in readers:
            return PcscReader(name)
        raise NoReaderError(
            f"no PC/SC reader named {name!r}; readers: {', '.join(map(repr, readers))}"
        )
    for candidate in readers:
        reader = PcscReader(candidate)
        if reader.card_present():
            return reader
    raise NoCardError(f"no card in any PC/SC reader ({', '.join(map(repr, readers))})")
