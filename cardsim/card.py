"""The virtual My Number card: power states, class-byte checks, application selection, dispatch.

``VirtualCard.transmit`` takes command APDU bytes and returns response bytes. Whatever
the bytes, it answers with a status word; it never raises for bad input.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from ..facts.atr import ATRS
from ..iso7816.apdu import APDUFormatError, CommandAPDU
from ..iso7816.sw import SW
from .applets import LOAD_FILES
from .application import (
    CLA_ISO,
    INS_READ_BINARY,
    INS_VERIFY,
    RESELECT_KEEPS_VERIFICATION,
    Application,
)
from .common_ap import CommonApplication
from .freespace import DEFAULT_CAPACITY, AppletStore, FreeSpace
from .isd import IssuerSecurityDomain
from .jpki_ap import JPKIApplication
from .juki_ap import JukiApplication
from .status import StatusError
from .storage import CardImageError, CardStore
from .text_ap import TextApplication
from .visual_ap import VisualApplication

log = logging.getLogger(__name__)

APPLICATIONS: tuple[type[Application], ...] = (
    IssuerSecurityDomain, JPKIApplication, CommonApplication, JukiApplication,
    VisualApplication, TextApplication,
)
"""In on-card order, which decides what a partial DF name selects first."""

INS_SELECT = 0xA4
INS_GET_CHALLENGE = 0x84

P1_SELECT_MF = 0x00
P1_SELECT_EF = 0x02
P1_SELECT_DF_NAME = 0x04
SM_CLASSES = frozenset({0x08, 0x0C})
"""ISO secure messaging without (08) and with (0C) header authentication."""
SM_SESSION_INSTRUCTIONS = frozenset({INS_READ_BINARY, INS_VERIFY})
"""What the card would run under SM in a session (the text AP's): without one, ``69FC``."""

P2_NO_FCI = 0x0C
P2_FCI = 0x00


class CardNotPoweredError(RuntimeError):
    """An APDU was sent to a card that is not powered (a host-side programming error)."""


OK = SW.OK.to_bytes(2, "big")


class VirtualCard:
    def __init__(self, store: CardStore) -> None:
        if store.content.atr not in ATRS:
            raise CardImageError(f"unknown ATR variant {store.content.atr!r} "
                                 f"(known: {', '.join(ATRS)})")
        self.store = store
        self.applications = [cls(store) for cls in APPLICATIONS]
        self.freespace = FreeSpace(store.path / "freespace",
                                   store.content.options.get("freespace_capacity",
                                                             DEFAULT_CAPACITY), store.sync)
        self._isd = self.applications[0]
        assert isinstance(self._isd, IssuerSecurityDomain)
        self._isd.freespace = self.freespace
        self._isd.reserved_aids = tuple(cls.AID for cls in APPLICATIONS)
        self.current: Application = self._isd
        self._application_selected = False
        self.powered = False

    @classmethod
    def open(cls, path: Path | str, *, sync: bool | None = None) -> VirtualCard:
        store = CardStore.open(Path(path), sync=sync)
        try:
            return cls(store)
        except BaseException:
            store.close()
            raise

    @property
    def atr(self) -> bytes:
        return ATRS[self.store.content.atr]

    # -- electrical interface ------------------------------------------------------------

    def power_on(self) -> bytes:
        self._cold_state()
        self.powered = True
        return self.atr

    def reset(self) -> bytes:
        return self.power_on()

    def power_off(self) -> None:
        self._cold_state()
        self.powered = False

    def close(self) -> None:
        self.power_off()
        self.store.close()

    def _cold_state(self) -> None:
        for application in self.applications:
            application.enter()
        self.current = self._isd
        self._application_selected = False

    # -- APDU handling -------------------------------------------------------------------

    def transmit(self, command: bytes) -> bytes:
        if not self.powered:
            raise CardNotPoweredError("power the card on before sending APDUs")
        try:
            apdu = CommandAPDU.parse(command)
            return self._dispatch(apdu) + OK
        except StatusError as status:
            return status.sw.to_bytes(2, "big")
        except APDUFormatError as bad:
            return bad.sw.to_bytes(2, "big")
        except Exception:
            # A defect in the simulator: answer like a card whose self-test failed.
            log.exception("internal error handling APDU %s", bytes(command).hex())
            return SW.SELF_DIAGNOSIS_FAILURE.to_bytes(2, "big")

    def _dispatch(self, apdu: CommandAPDU) -> bytes:
        cla = apdu.cla
        if cla == 0xFF or cla & 0xE0 not in (0x00, 0x80):
            if 0x40 <= cla <= 0x7F:
                raise StatusError(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
            raise StatusError(SW.CLA_NOT_SUPPORTED)
        if cla & 0x03:
            raise StatusError(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
        if cla & 0x0C and not (self.current.SECURE_MESSAGING and cla & 0x0C == 0x04):
            # The card with no SM session open (soltia48/myna-card, physical cards): READ
            # BINARY and VERIFY under CLA 08/0C answer 69FC, everything else (SELECT) 6882.
            if cla in SM_CLASSES and apdu.ins in SM_SESSION_INSTRUCTIONS:
                raise StatusError(SW.SM_SESSION_BROKEN)
            raise StatusError(SW.SECURE_MESSAGING_NOT_SUPPORTED)
        if cla & 0x10:
            raise StatusError(SW.COMMAND_CHAINING_NOT_SUPPORTED)
        key = (cla, apdu.ins)
        card_handler = CARD_INSTRUCTIONS.get(key)
        if card_handler is not None:
            return card_handler(self, apdu)
        handler = self.current.INSTRUCTIONS.get(key)
        if handler is not None:
            return handler(self.current, apdu)
        if any(ins == apdu.ins for _, ins in (*CARD_INSTRUCTIONS, *self.current.INSTRUCTIONS)):
            raise StatusError(SW.CLA_NOT_SUPPORTED)
        raise StatusError(SW.INS_NOT_SUPPORTED)

    def select(self, apdu: CommandAPDU) -> bytes:
        if apdu.p2 not in (P2_NO_FCI, P2_FCI):
            raise StatusError(SW.INCORRECT_P1P2)
        if apdu.p1 == P1_SELECT_DF_NAME:
            return self._select_df_name(apdu.data)
        if apdu.p1 == P1_SELECT_EF:
            if len(apdu.data) != 2:
                raise StatusError(SW.WRONG_LENGTH)
            self.current.select_ef(int.from_bytes(apdu.data, "big"))
            return b""
        if apdu.p1 == P1_SELECT_MF and not apdu.data:
            # Observed: refused right after reset, accepted (with no effect) inside an AP.
            if not self._application_selected:
                raise StatusError(SW.INCORRECT_P1P2)
            return b""
        raise StatusError(SW.INCORRECT_P1P2)

    def _select_df_name(self, name: bytes) -> bytes:
        if not 1 <= len(name) <= 16:
            raise StatusError(SW.WRONG_LENGTH)
        for application in self.applications:
            # JICSAP 4.2(1): a right-truncated DF name selects the first DF it prefixes.
            if application.AID.startswith(name):
                # Whether re-selecting the current application keeps its verified PINs is
                # a per-card option: a real card's behaviour is not known (application.py).
                same = self._application_selected and application is self.current
                application.enter(keep_verified=same and self.store.content.options.get(
                    RESELECT_KEEPS_VERIFICATION) is True)
                self.current = application
                self._application_selected = application is not self._isd
                return b""
        for instance in self.freespace.instances.values():
            if instance.aid.startswith(name):
                applet = LOAD_FILES[instance.load_file](AppletStore(self.freespace, instance))
                applet.enter()
                self.current = applet
                self._application_selected = True
                return b""
        raise StatusError(SW.FILE_NOT_FOUND)

    def get_challenge(self, apdu: CommandAPDU) -> bytes:
        if apdu.p1 or apdu.p2:
            raise StatusError(SW.INCORRECT_P1P2)
        if apdu.data or apdu.le is None:
            raise StatusError(SW.WRONG_LENGTH)
        if apdu.extended:
            raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
        return secrets.token_bytes(apdu.le)


CARD_INSTRUCTIONS = {
    (CLA_ISO, INS_SELECT): VirtualCard.select,
    (CLA_ISO, INS_GET_CHALLENGE): VirtualCard.get_challenge,
}
