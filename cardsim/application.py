"""What every card application shares: EF selection and the ISO commands driven by its file table.

An application subclass declares ``NAME`` (its namespace in the card image), ``AID``,
``FILES`` (file id → ``cardsim.files`` entry) and ``INSTRUCTIONS`` ((CLA, INS) → handler).
Handlers take the parsed APDU and return the response data (status ``9000``) or raise
``StatusError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

from cardsim.errors import StatusError
from cardsim.files import EF, BinaryEF, KeyEF, PinEF
from cardsim.pin import pin_matches
from cardsim.storage import CardStore
from iso7816.apdu import CommandAPDU
from iso7816.sw import SW

CLA_ISO = 0x00
CLA_PROPRIETARY = 0x80

INS_VERIFY = 0x20
INS_CHANGE_REFERENCE_DATA = 0x24
INS_READ_BINARY = 0xB0

P2_CURRENT_EF = 0x80
"""P2 ``80``: the command acts on the current EF; ``80 | SFI`` names the EF by short id."""

Handler = Callable[["Application", CommandAPDU], bytes]


class Application:
    NAME: ClassVar[str]
    AID: ClassVar[bytes]
    FILES: ClassVar[Mapping[int, EF]] = {}
    INSTRUCTIONS: ClassVar[Mapping[tuple[int, int], Handler]]

    def __init__(self, store: CardStore) -> None:
        self.store = store
        self.current_ef: int | None = None
        self.verified: set[int] = set()

    def enter(self) -> None:
        """Selection (or re-selection) of the application: a fresh security state."""
        self.current_ef = None
        self.verified.clear()

    def key_name(self, fid: int) -> str:
        return f"{self.NAME}/{fid:04X}"

    # -- file resolution -----------------------------------------------------------------

    def select_ef(self, fid: int) -> EF:
        ef = self.FILES.get(fid)
        if ef is None:
            raise StatusError(SW.FILE_NOT_FOUND)
        self.current_ef = fid
        return ef

    def referenced_ef(self, p2: int) -> tuple[int, EF]:
        """The EF named by a P2 of ``80`` (current EF) or ``80 | SFI``."""
        if p2 == P2_CURRENT_EF:
            if self.current_ef is None:
                raise StatusError(SW.NO_CURRENT_EF)
            return self.current_ef, self.FILES[self.current_ef]
        if p2 & 0xE0 != 0x80:
            raise StatusError(SW.INCORRECT_P1P2)
        fid = p2 & 0x1F
        ef = self.FILES.get(fid)
        if ef is None:
            raise StatusError(SW.REFERENCED_DATA_NOT_FOUND)
        return fid, ef

    def referenced_pin(self, p2: int) -> tuple[int, PinEF]:
        fid, ef = self.referenced_ef(p2)
        if not isinstance(ef, PinEF):
            raise StatusError(SW.INCOMPATIBLE_FILE_STRUCTURE)
        return fid, ef

    def referenced_key(self, p2: int) -> tuple[int, KeyEF]:
        fid, ef = self.referenced_ef(p2)
        if not isinstance(ef, KeyEF):
            raise StatusError(SW.INCOMPATIBLE_FILE_STRUCTURE)
        if not ef.use.allows(self.verified):
            raise StatusError(SW.SECURITY_STATUS_NOT_SATISFIED)
        return fid, ef

    # -- ISO 7816-4 commands -------------------------------------------------------------

    def read_binary(self, apdu: CommandAPDU) -> bytes:
        if apdu.data or apdu.le is None:
            raise StatusError(SW.WRONG_LENGTH)
        if apdu.p1 & 0x80:
            if apdu.p1 & 0x60:
                raise StatusError(SW.INCORRECT_P1P2)
            fid, offset = apdu.p1 & 0x1F, apdu.p2
            ef = self.select_ef(fid)
        else:
            if self.current_ef is None:
                raise StatusError(SW.NO_CURRENT_EF)
            fid, offset = self.current_ef, apdu.p1p2
            ef = self.FILES[fid]
        if not isinstance(ef, BinaryEF):
            if isinstance(ef, KeyEF | PinEF):
                raise StatusError(SW.INCOMPATIBLE_FILE_STRUCTURE)
            raise StatusError(SW.SECURITY_STATUS_NOT_SATISFIED)
        if not ef.read.allows(self.verified):
            raise StatusError(SW.SECURITY_STATUS_NOT_SATISFIED)
        content = self.store.file(self.key_name(fid)) or b""
        if offset >= len(content):
            raise StatusError(SW.OFFSET_OUTSIDE_EF)
        return content[offset:offset + apdu.le]

    def verify(self, apdu: CommandAPDU) -> bytes:
        if apdu.p1 != 0x00:
            raise StatusError(SW.INCORRECT_P1P2)
        fid, _ = self.referenced_pin(apdu.p2)
        name = self.key_name(fid)
        tries = self.store.counter(name)
        if not apdu.data:
            if fid in self.verified and self.store.content.options.get(
                    "empty_verify_when_verified") == "9000":
                return b""
            raise StatusError(0x63C0 | tries)
        if tries == 0:
            raise StatusError(SW.AUTH_METHOD_BLOCKED)
        # Decrement first and make it durable: a card torn mid-comparison has spent the try.
        self.store.set_counter(name, tries - 1)
        if pin_matches(apdu.data, self.store.pin(name)):
            # Not waiting for the disk here is safe: a lost write can only cost a try.
            self.store.set_counter(name, self.store.counter_max(name), durable=False)
            self.verified.add(fid)
            return b""
        self.verified.discard(fid)
        raise StatusError(0x63C0 | (tries - 1))

    def change_reference_data(self, apdu: CommandAPDU) -> bytes:
        if apdu.p1 != 0x01:
            raise StatusError(SW.INCORRECT_P1P2)
        fid, ef = self.referenced_pin(apdu.p2)
        if not apdu.data:
            raise StatusError(SW.WRONG_LENGTH)
        if fid not in self.verified:
            raise StatusError(SW.SECURITY_STATUS_NOT_SATISFIED)
        if not ef.policy.accepts(apdu.data):
            raise StatusError(SW.WRONG_DATA)
        self.store.update_content(pins={self.key_name(fid): bytes(apdu.data)})
        return b""

    INSTRUCTIONS = {
        (CLA_ISO, INS_READ_BINARY): read_binary,
        (CLA_ISO, INS_VERIFY): verify,
        (CLA_ISO, INS_CHANGE_REFERENCE_DATA): change_reference_data,
    }
