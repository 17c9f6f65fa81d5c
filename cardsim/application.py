"""What every card application shares: EF selection and the ISO commands driven by its file table.

An application subclass declares ``NAME`` (its namespace in the card image), ``AID``,
``FILES`` (file id → ``cardsim.files`` entry) and ``INSTRUCTIONS`` ((CLA, INS) → handler).
Handlers take the parsed APDU and return the response data (status ``9000``) or raise
``StatusError``.

Commands every application answers the same way live here: READ BINARY, READ RECORD,
VERIFY, CHANGE REFERENCE DATA, COMPUTE DIGITAL SIGNATURE (``80 2A``), INTERNAL
AUTHENTICATE (``00 88``) and the refusal of SET SESSION KEY (``80 AE``) by applications
without secure messaging. CHANGE KEY (``80 32``) is offered for the applications whose
PINs change that way (共通AP, 住基AP).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

from ..facts.pins import pin_matches
from ..iso7816.apdu import SHORT_LE_MAX, CommandAPDU
from ..iso7816.sw import SW, wrong_le_sw
from ..iso7816.tlv import TLVError, simple_iter
from .files import EF, BinaryEF, KeyEF, KeyReferenceEF, KeyUsage, PinEF, RecordEF
from .signing import SIGNATURE_SCHEMES
from .status import StatusError
from .storage import CardStore, image_key

CLA_ISO = 0x00
CLA_PROPRIETARY = 0x80

INS_VERIFY = 0x20
INS_CHANGE_REFERENCE_DATA = 0x24
INS_COMPUTE_DIGITAL_SIGNATURE = 0x2A
INS_CHANGE_KEY = 0x32
INS_INTERNAL_AUTHENTICATE = 0x88
INS_SET_SESSION_KEY = 0xAE
INS_READ_BINARY = 0xB0
INS_READ_RECORD = 0xB2
INS_GET_DATA = 0xCA

TAG_CONTACT_ATR = 0x5F51
"""GET DATA object every application answers (facts §7): the contact ATR without TS."""
CARD_DATA = "isd"
"""Image namespace of the card-wide data objects (the MF/ISD's)."""

P2_DEFAULT_KEY = 0x00
"""``80 2A`` P2 ``00``: the application's own key, no EF named (券面 APs)."""
INTERNAL_AUTH_CHALLENGE_MAX = 255

RESELECT_KEEPS_VERIFICATION = "reselect_keeps_verification"
"""Card-image option (``options`` in ``card.json``): whether SELECT of the application that
is already current keeps what was verified in it.

Unsettled by any source (facts, issue 9 item 6). ``false`` (the default): any selection
clears the security state — OpenSC's JPKI logout is a re-select of the JPKI AID and
soltia48/myna-card says selection clears it like its SM session. ``true``: re-selecting
the *same* application keeps it (the current EF is still forgotten), which is what
meowkawaiijp/pyjpki needs (SELECT AP, VERIFY, SELECT the same AP, then read or sign).
Selecting another application, or a reset, clears it either way."""

P2_CURRENT_EF = 0x80
"""P2 ``80``: the command acts on the current EF; ``80 | SFI`` names the EF by short id."""

Handler = Callable[["Application", CommandAPDU], bytes]


class Application:
    NAME: ClassVar[str]
    AID: ClassVar[bytes]
    FILES: ClassVar[Mapping[int, EF]] = {}
    INSTRUCTIONS: ClassVar[Mapping[tuple[int, int], Handler]]
    DEFAULT_KEY: ClassVar[int | None] = None
    """The key ``80 2A`` with P2 ``00`` signs with; None answers ``6A86`` as the JPKI-AP does."""
    SESSION_KEY_REFUSAL: ClassVar[int] = SW.SECURITY_STATUS_NOT_SATISFIED
    """What SET SESSION KEY answers on an application without secure messaging (facts §4)."""
    SECURE_MESSAGING: ClassVar[bool] = False
    """Whether CLA bytes with the SM bits reach this application (the ISD's SCP channel)."""
    DATA_OBJECTS: ClassVar[Mapping[int, str]] = {}
    """GET DATA tag → meaning; values live in the image as ``"<NAME>/<tag hex>"``."""

    def __init__(self, store: CardStore) -> None:
        self.store = store
        self.current_ef: int | None = None
        self.verified: set[int] = set()

    def enter(self, *, keep_verified: bool = False) -> None:
        """Selection (or re-selection) of the application: no current EF and, unless
        ``keep_verified`` (see ``RESELECT_KEEPS_VERIFICATION``), a fresh security state."""
        self.current_ef = None
        if not keep_verified:
            self.verified.clear()

    def key_name(self, fid: int) -> str:
        return image_key(self.NAME, fid)

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

    def referenced_key(self, p2: int, usage: KeyUsage = KeyUsage.COMPUTE_SIGNATURE,
                       ) -> tuple[int, KeyEF]:
        fid, ef = self.referenced_ef(p2)
        if not isinstance(ef, KeyEF):
            raise StatusError(SW.INCOMPATIBLE_FILE_STRUCTURE)
        if usage not in ef.usage:
            # Observed for INTERNAL AUTHENTICATE: a PIN-guarded key refuses on access
            # grounds first, an unguarded key of another purpose on conditions of use.
            if not ef.use.allows(self.verified):
                raise StatusError(SW.SECURITY_STATUS_NOT_SATISFIED)
            raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
        if not ef.use.allows(self.verified):
            raise StatusError(SW.SECURITY_STATUS_NOT_SATISFIED)
        return fid, ef

    def default_key(self) -> tuple[int, KeyEF]:
        if self.DEFAULT_KEY is None:
            raise StatusError(SW.INCORRECT_P1P2)
        ef = self.FILES[self.DEFAULT_KEY]
        assert isinstance(ef, KeyEF)
        if not ef.use.allows(self.verified):
            raise StatusError(SW.SECURITY_STATUS_NOT_SATISFIED)
        return self.DEFAULT_KEY, ef

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
            if isinstance(ef, KeyEF | PinEF | RecordEF | KeyReferenceEF):
                raise StatusError(SW.INCOMPATIBLE_FILE_STRUCTURE)
            raise StatusError(SW.SECURITY_STATUS_NOT_SATISFIED)
        if not ef.read.allows(self.verified):
            raise StatusError(SW.SECURITY_STATUS_NOT_SATISFIED)
        content = self.store.file(self.key_name(fid)) or b""
        if offset >= len(content):
            raise StatusError(SW.OFFSET_OUTSIDE_EF)
        return content[offset:offset + apdu.le]

    def read_record(self, apdu: CommandAPDU) -> bytes:
        """READ RECORD, one record by absolute number (P2 low bits ``100``), facts §9."""
        if apdu.data or apdu.le is None:
            raise StatusError(SW.WRONG_LENGTH)
        sfi, mode = apdu.p2 >> 3, apdu.p2 & 0x07
        if mode == 0b101:
            # "Records P1 to last" is optional in JICSAP 6.4.4 and absent on the card.
            raise StatusError(SW.FUNCTION_NOT_SUPPORTED)
        if mode != 0b100 or sfi == 0x1F:
            raise StatusError(SW.INCORRECT_P1P2)
        if sfi:
            fid, ef = sfi, self.select_ef(sfi)
        else:
            if self.current_ef is None:
                raise StatusError(SW.NO_CURRENT_EF)
            fid, ef = self.current_ef, self.FILES[self.current_ef]
        if not isinstance(ef, RecordEF):
            raise StatusError(SW.INCOMPATIBLE_FILE_STRUCTURE)
        if not ef.read.allows(self.verified):
            raise StatusError(SW.SECURITY_STATUS_NOT_SATISFIED)
        if apdu.p1 == 0:
            raise StatusError(SW.RECORD_NOT_FOUND)
        record = self._record(fid, apdu.p1)
        if len(record) > apdu.le:
            raise StatusError(wrong_le_sw(len(record)) if len(record) <= SHORT_LE_MAX
                              else SW.WRONG_LENGTH)
        return record

    def _record(self, fid: int, number: int) -> bytes:
        content = self.store.file(self.key_name(fid)) or b""
        pos = 0
        try:
            for n, (_, value) in enumerate(simple_iter(content), start=1):
                size = 2 + len(value) if len(value) < 0xFF else 4 + len(value)
                if n == number:
                    return content[pos:pos + size]
                pos += size
        except TLVError:
            # A card image whose record file does not parse is corrupt: a self-test failure.
            raise StatusError(SW.SELF_DIAGNOSIS_FAILURE) from None
        raise StatusError(SW.RECORD_NOT_FOUND)

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
        """ISO CHANGE REFERENCE DATA ``00 24 01 80``: JPKI-AP and 券面事項入力補助AP."""
        return self._replace_pin(apdu, p1=0x01)

    def change_key(self, apdu: CommandAPDU) -> bytes:
        """JICSAP CHANGE KEY ``80 32 00 80``: 共通AP and 住基AP change their PIN this way."""
        return self._replace_pin(apdu, p1=0x00)

    def _replace_pin(self, apdu: CommandAPDU, p1: int) -> bytes:
        if apdu.p1 != p1:
            raise StatusError(SW.INCORRECT_P1P2)
        fid, ef = self.referenced_pin(apdu.p2)
        if not apdu.data:
            raise StatusError(SW.WRONG_LENGTH)
        if not ef.changeable:
            raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
        if fid not in self.verified:
            raise StatusError(SW.SECURITY_STATUS_NOT_SATISFIED)
        if not ef.policy.accepts(apdu.data):
            raise StatusError(SW.WRONG_DATA)
        self.store.update_content(pins={self.key_name(fid): bytes(apdu.data)})
        return b""

    def compute_digital_signature(self, apdu: CommandAPDU) -> bytes:
        """``80 2A P1 P2``: P2 ``80``/``80|SFI`` names a key; ``00`` the application's own."""
        if apdu.p2 == P2_DEFAULT_KEY:
            fid, ef = self.default_key()
        else:
            fid, ef = self.referenced_key(apdu.p2)
        if not apdu.data or apdu.le is None:
            raise StatusError(SW.WRONG_LENGTH)
        scheme = SIGNATURE_SCHEMES.get(apdu.p1)
        if scheme is None:
            raise StatusError(SW.INCORRECT_P1P2)
        signature = scheme(self.store.key(self.key_name(fid)), apdu.data)
        if self.store.content.options.get("verify_per_signature"):
            self.verified -= ef.use.pins
        return signature

    def internal_authenticate(self, apdu: CommandAPDU) -> bytes:
        """``00 88 00 80|SFI``: sha256WithRSA over the challenge (facts §6, §9)."""
        if apdu.p1 != 0x00:
            raise StatusError(SW.INCORRECT_P1P2)
        fid, _ = self.referenced_key(apdu.p2, KeyUsage.INTERNAL_AUTHENTICATE)
        if not 1 <= len(apdu.data) <= INTERNAL_AUTH_CHALLENGE_MAX or apdu.le is None:
            raise StatusError(SW.WRONG_LENGTH)
        return SIGNATURE_SCHEMES[0x03](self.store.key(self.key_name(fid)), apdu.data)

    def get_data(self, apdu: CommandAPDU) -> bytes:
        """GET DATA ``00 CA tag Le``; objects over 256 bytes need an extended Le (facts §7)."""
        if apdu.data or apdu.le is None:
            raise StatusError(SW.WRONG_LENGTH)
        tag = apdu.p1p2
        if tag == TAG_CONTACT_ATR:
            value = self.store.file(image_key(CARD_DATA, tag))
        elif tag in self.DATA_OBJECTS:
            value = self.store.file(self.key_name(tag))
        else:
            value = None
        if value is None:
            raise StatusError(SW.REFERENCED_DATA_NOT_FOUND)
        if len(value) > apdu.le:
            if len(value) > SHORT_LE_MAX or apdu.extended:
                raise StatusError(SW.WRONG_LENGTH)
            raise StatusError(wrong_le_sw(len(value)))
        return value

    def set_session_key(self, apdu: CommandAPDU) -> bytes:
        """SET SESSION KEY on an application without secure messaging: a fixed refusal."""
        raise StatusError(self.SESSION_KEY_REFUSAL)

    INSTRUCTIONS = {
        (CLA_ISO, INS_READ_BINARY): read_binary,
        (CLA_ISO, INS_READ_RECORD): read_record,
        (CLA_ISO, INS_VERIFY): verify,
        (CLA_ISO, INS_CHANGE_REFERENCE_DATA): change_reference_data,
        (CLA_ISO, INS_INTERNAL_AUTHENTICATE): internal_authenticate,
        (CLA_ISO, INS_GET_DATA): get_data,
        (CLA_PROPRIETARY, INS_SET_SESSION_KEY): set_session_key,
    }
