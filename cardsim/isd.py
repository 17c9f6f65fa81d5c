"""GlobalPlatform Issuer Security Domain, AID A0 00 00 01 51 00 00: the power-on (MF) state.

It holds no EFs; selecting it returns the card to its MF-equivalent state (facts §2).
GET DATA answers the MF-level objects below (facts §7) and ``FF21`` (free-space
resources: ``81`` instances, ``82`` free bytes, ``83`` capacity); anything else is ``6A88``.

Card management (our protocol, see ``cardsim.freespace``): INITIALIZE UPDATE ``80 50``
and EXTERNAL AUTHENTICATE ``84 82 01 00`` open an SCP03-style channel (``gp.scp03``,
security level C-MAC); then, each with a valid C-MAC (CLA ``84``), INSTALL ``84 E6 0C 00``
(load file AID, module AID, instance AID, privileges, ``C9`` applet parameters with
``EF { C8 02 quota }``), DELETE ``84 E4 00 00 4F <AID>`` and GET STATUS ``84 F2 40 02``.
Without an open channel they answer ``6982``; a bad MAC ``6982`` and a field too long to
carry a C-MAC (more than 255 bytes, an extended APDU) ``6700``, both closing the channel, as
does any unforeseen failure of a secured command; a bad host cryptogram ``6300``. A command
whose MAC verified and that is then refused on its merits (``6A80``, ``6A84`` …) leaves the
channel open, as GlobalPlatform does.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable

from asn1crypto.core import ObjectIdentifier

from ..facts.mf import (
    ISD_AID as AID,
)
from ..facts.mf import (
    TAG_CARD_ID,
    TAG_CARD_RECOGNITION,
    TAG_CHAIN_LOWER,
    TAG_CHAIN_UPPER,
    TAG_EXPIRY,
    TAG_INTERMEDIATE_KEY_ID,
    TAG_ISSUER_ID,
    TAG_MUNICIPALITY,
)
from ..gp import scp03
from ..iso7816.apdu import CommandAPDU
from ..iso7816.sw import SW
from ..iso7816.tlv import TLVError, ber_encode, ber_iter
from .application import CLA_PROPRIETARY, Application
from .freespace import AID_MAX_LENGTH, AID_MIN_LENGTH, FreeSpace, Instance
from .status import StatusError
from .storage import image_key

CLA_SECURED = 0x84
INS_INITIALIZE_UPDATE, INS_EXTERNAL_AUTHENTICATE = 0x50, 0x82
INS_INSTALL, INS_DELETE, INS_GET_STATUS = 0xE6, 0xE4, 0xF2


def _channel_closes_on_fault(handler: Callable[[IssuerSecurityDomain, CommandAPDU], bytes]
                             ) -> Callable[[IssuerSecurityDomain, CommandAPDU], bytes]:
    """A secured command that fails unforeseeably (the card answers ``6F00``) closes the
    channel: after an internal error the card cannot vouch for the session's state. A refusal
    on the command's merits (a ``StatusError``) keeps it open."""

    @functools.wraps(handler)
    def run(self: IssuerSecurityDomain, apdu: CommandAPDU) -> bytes:
        try:
            return handler(self, apdu)
        except StatusError:
            raise
        except Exception:
            self._close_channel()
            raise

    return run


class IssuerSecurityDomain(Application):
    NAME = "isd"
    AID = AID
    FILES = {}
    DATA_OBJECTS = {
        TAG_ISSUER_ID: "issuer identification (16-byte key reference)",
        TAG_CARD_ID: "card identification number (ASCII)",
        TAG_CARD_RECOGNITION: "GlobalPlatform card recognition data",
        TAG_MUNICIPALITY: "全国地方公共団体コード of the issuer (5 ASCII digits)",
        TAG_EXPIRY: "card expiry (YYYYMMDD)",
        TAG_INTERMEDIATE_KEY_ID: "key ID of the intermediate that signs 7F21",
        TAG_CHAIN_UPPER: "CV certificate: root → intermediate (template contents)",
        TAG_CHAIN_LOWER: "CV certificate: intermediate → card key (template contents)",
    }
    SECURE_MESSAGING = True
    session: scp03.Session | None = None
    authenticated = False
    freespace: FreeSpace
    reserved_aids: tuple[bytes, ...] = ()
    """Set by the card: the built-in AIDs no instance may shadow."""

    def enter(self, *, keep_verified: bool = False) -> None:
        # A GP secure channel always ends with selection, whatever the card option says.
        super().enter(keep_verified=keep_verified)
        self.session = None
        self.authenticated = False

    def initialize_update(self, apdu: CommandAPDU) -> bytes:
        if apdu.p2 != 0x00:
            raise StatusError(SW.INCORRECT_P1P2)
        if len(apdu.data) != scp03.CHALLENGE_LENGTH or apdu.le is None:
            raise StatusError(SW.WRONG_LENGTH)
        raw_keys = self.store.file(self.key_name_of(SCP_KEYS))
        if raw_keys is None:
            raise StatusError(SW.REFERENCED_DATA_NOT_FOUND)
        keys = scp03.StaticKeys.decode(raw_keys)
        if apdu.p1 not in (0x00, keys.version):
            raise StatusError(SW.REFERENCED_DATA_NOT_FOUND)
        card_challenge = secrets.token_bytes(scp03.CHALLENGE_LENGTH)
        self.session = scp03.Session.derive(keys, apdu.data, card_challenge)
        self.authenticated = False
        return ((self.store.file(self.key_name_of(SCP_DIVERSIFICATION)) or bytes(10))
                + bytes((keys.version, scp03.SCP_ID, scp03.SCP_I)) + card_challenge
                + self.session.card_cryptogram())

    def external_authenticate(self, apdu: CommandAPDU) -> bytes:
        session, self.authenticated = self.session, False
        if session is None:
            raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
        if apdu.p1 != scp03.SECURITY_LEVEL_CMAC or apdu.p2 != 0x00:
            raise StatusError(SW.INCORRECT_P1P2)
        cryptogram = self._unwrap(session, apdu)
        if not secrets.compare_digest(cryptogram, session.host_cryptogram()):
            self.session = None
            raise StatusError(SW.VERIFY_FAILED_UNLIMITED)
        self.authenticated = True
        return b""

    def _close_channel(self) -> None:
        self.session = None
        self.authenticated = False

    def _unwrap(self, session: scp03.Session, apdu: CommandAPDU) -> bytes:
        """The command data after its C-MAC checks; any failure closes the channel, so a
        host can never go on in a session whose MAC chain the card did not follow."""
        try:
            return session.unwrap(bytes((apdu.cla, apdu.ins, apdu.p1, apdu.p2)), apdu.data)
        except scp03.SCPLengthError:
            self._close_channel()
            raise StatusError(SW.WRONG_LENGTH) from None
        except scp03.SCPError:
            self._close_channel()
            raise StatusError(SW.SECURITY_STATUS_NOT_SATISFIED) from None
        except BaseException:
            self._close_channel()
            raise

    def _secured(self, apdu: CommandAPDU) -> bytes:
        """The data of a card-management command, which needs the open channel."""
        if not self.authenticated or self.session is None:
            raise StatusError(SW.SECURITY_STATUS_NOT_SATISFIED)
        return self._unwrap(self.session, apdu)

    @_channel_closes_on_fault
    def install(self, apdu: CommandAPDU) -> bytes:
        from .applets import LOAD_FILES

        data = self._secured(apdu)
        if apdu.p1 != P1_INSTALL_AND_SELECTABLE or apdu.p2 != 0x00:
            raise StatusError(SW.INCORRECT_P1P2)
        load_file, _module, aid, _privileges, params, _token = _lv_fields(data, 6)
        applet = LOAD_FILES.get(load_file)
        if applet is None:
            raise StatusError(SW.REFERENCED_DATA_NOT_FOUND)
        if not AID_MIN_LENGTH <= len(aid) <= AID_MAX_LENGTH \
                or any(b.startswith(aid) or aid.startswith(b) for b in self.reserved_aids):
            raise StatusError(SW.WRONG_DATA)
        quota, applet_params = _install_parameters(params)
        try:
            initial = applet.initial_data(applet_params)
        except ValueError:
            raise StatusError(SW.WRONG_DATA) from None
        self.freespace.install(Instance(aid, load_file, quota), initial)
        return b""

    @_channel_closes_on_fault
    def delete(self, apdu: CommandAPDU) -> bytes:
        data = self._secured(apdu)
        if apdu.p1 != 0x00 or apdu.p2 != 0x00:
            raise StatusError(SW.INCORRECT_P1P2)
        fields = _tlvs(data)
        if list(fields) != [0x4F]:
            raise StatusError(SW.WRONG_DATA)
        self.freespace.delete(fields[0x4F])
        return b""

    @_channel_closes_on_fault
    def get_status(self, apdu: CommandAPDU) -> bytes:
        data = self._secured(apdu)
        if apdu.p1 != 0x40 or apdu.p2 != 0x02:
            raise StatusError(SW.INCORRECT_P1P2)
        if _tlvs(data) != {0x4F: b""} or apdu.le is None:
            raise StatusError(SW.WRONG_DATA)
        out = b"".join(ber_encode(0xE3, ber_encode(0x4F, i.aid)
                                  + ber_encode(0x9F70, bytes((LIFE_CYCLE_SELECTABLE,)))
                                  + ber_encode(0xC5, PRIVILEGES_NONE)
                                  + ber_encode(0xC4, i.load_file)
                                  + ber_encode(TAG_NV_QUOTA, i.quota.to_bytes(2, "big"))
                                  + ber_encode(TAG_USED, self.freespace.data(i).size()
                                               .to_bytes(2, "big")))
                       for i in self.freespace.instances.values())
        if not out:
            raise StatusError(SW.REFERENCED_DATA_NOT_FOUND)
        if len(out) > apdu.le:
            raise StatusError(SW.WRONG_LENGTH)
        return out

    def get_data(self, apdu: CommandAPDU) -> bytes:
        if apdu.p1p2 != TAG_RESOURCES:
            return super().get_data(apdu)
        area = self.freespace
        return ber_encode(TAG_RESOURCES, ber_encode(0x81, bytes((len(area.instances),)))
                          + ber_encode(0x82, area.free().to_bytes(4, "big"))
                          + ber_encode(0x83, area.capacity.to_bytes(4, "big")))

    def key_name_of(self, item: str) -> str:
        return image_key(self.NAME, item)

    INSTRUCTIONS = {
        **Application.INSTRUCTIONS,
        (0x00, 0xCA): get_data,
        (CLA_PROPRIETARY, INS_INITIALIZE_UPDATE): initialize_update,
        (CLA_SECURED, INS_EXTERNAL_AUTHENTICATE): external_authenticate,
        (CLA_SECURED, INS_INSTALL): install,
        (CLA_SECURED, INS_DELETE): delete,
        (CLA_SECURED, INS_GET_STATUS): get_status,
    }


def _lv_fields(data: bytes, count: int) -> list[bytes]:
    fields, pos = [], 0
    for _ in range(count):
        if pos >= len(data) or pos + 1 + data[pos] > len(data):
            raise StatusError(SW.WRONG_DATA)
        fields.append(data[pos + 1:pos + 1 + data[pos]])
        pos += 1 + data[pos]
    if pos != len(data):
        raise StatusError(SW.WRONG_DATA)
    return fields


def _tlvs(data: bytes) -> dict[int, bytes]:
    try:
        return dict(ber_iter(data)) if data else {}
    except TLVError:
        raise StatusError(SW.WRONG_DATA) from None


def _install_parameters(params: bytes) -> tuple[int, bytes]:
    """(quota, applet parameters) from ``C9 LL <applet> [EF LL {C8 02 quota}]``."""
    fields = _tlvs(params)
    system = _tlvs(fields.get(TAG_SYSTEM_PARAMETERS, b""))
    quota = system.get(TAG_NV_QUOTA)
    if TAG_APPLET_PARAMETERS not in fields or quota is None or len(quota) != 2:
        raise StatusError(SW.WRONG_DATA)
    return int.from_bytes(quota, "big"), fields[TAG_APPLET_PARAMETERS]


GP_ARC = "1.2.840.114283"


def _oid(dotted: str) -> bytes:
    return ObjectIdentifier(dotted).dump()


def card_recognition_data() -> bytes:
    """GP Card Spec v2.3 H.2: recognition data OID, GP 2.3.1, card ID scheme, SCP03 i=70."""
    return ber_encode(0x66, ber_encode(0x73, b"".join((
        _oid(f"{GP_ARC}.1"),
        ber_encode(0x60, _oid(f"{GP_ARC}.2.2.3.1")),
        ber_encode(0x63, _oid(f"{GP_ARC}.3")),
        ber_encode(0x64, _oid(f"{GP_ARC}.4.3.112")),
    ))))


# -- card management: SCP03-style channel, INSTALL / DELETE / GET STATUS (cardsim.freespace) --

SCP_KEYS = "scp03-keys"
SCP_DIVERSIFICATION = "scp03-div"
TAG_RESOURCES = 0xFF21
P1_INSTALL_AND_SELECTABLE = 0x0C
PRIVILEGES_NONE = b"\x00"
LIFE_CYCLE_SELECTABLE = 0x07
TAG_SYSTEM_PARAMETERS, TAG_NV_QUOTA, TAG_APPLET_PARAMETERS = 0xEF, 0xC8, 0xC9
TAG_USED = 0xD7
"""GET STATUS: bytes the instance uses of its quota (our addition to the E3 template)."""
