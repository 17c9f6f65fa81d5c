"""マイタク: the taxi-fare subsidy card application in the free space (空き領域版).

The real layout is not public; this is our design (``docs/taxi.md``), with the layouts in
``facts.taxi``. The city installs an instance over its issuer channel (SCP03 INSTALL, load
file ``F0 "mynataxi"``, instance ``F0 "mynataxi" 01``); INSTALL's parameters carry the
instance's three keys, so they only ever travel under the issuer's C-MAC.

====  ==================================================================  ============
EF    content                                                             read
====  ==================================================================  ============
0001  eligibility record (``facts.taxi.Eligibility``) ‖ city ECDSA P-256  free
      signature r‖s: written by PERSONALISE; tablets verify the signature
0002  counters (``facts.taxi.Counters``): receipt sequence, fiscal year,  free
      rides that year, last ride time, rides that day
0003  ride log: the last 8 receipts (``facts.taxi.Receipt``), newest      free
      first; a terminal that lost the DEBIT answer recovers it here
0011  admin key (per card, from the city's admin master and rider id)     never
0012  terminal master key (the card derives each terminal's key from it)  never
0013  receipt key (per card, from the city's receipt master and rider id) never
====  ==================================================================  ============

Commands (besides SELECT and READ BINARY):

* GET CHALLENGE ``80 84 00 00 08``: 8 fresh random bytes, good for one PERSONALISE or
  DEBIT in this selection (used or not, the next command forgets it: no replay).
* PERSONALISE ``80 24 00 00``: record ‖ signature ‖ MAC (16) with MAC =
  ``personalise_mac(admin key, challenge, record ‖ signature)``. Writes EF 0001; a card
  already holding another rider's record refuses (``6985``). Re-personalising the same
  rider (a renewal: new validity or quota) keeps the counters and the log.
* DEBIT ``80 20 00 00``: terminal id (8) ‖ terminal sequence (4) ‖ time (12 ASCII) ‖ fare
  (4) ‖ registered riders in the car (1) ‖ MAC (16) with MAC =
  ``debit_mac(terminal_key(terminal master, terminal id), challenge, request)``. The card
  computes the subsidy itself (``facts.taxi.subsidy`` with the record's caps), so a
  tablet cannot inflate it; it starts a new day or fiscal year from zero, then writes the
  counters and the log in one free-space transaction (a power loss leaves the old state or
  the new, and the new state always holds its receipt) and answers the receipt
  (``Receipt``: sequence ‖ request ‖ subsidy ‖ MAC under the receipt key). The tablet has
  no receipt key, so it cannot forge or alter a receipt; the city rederives the key.

Status words: ``6700`` wrong length, ``6A80`` malformed field, ``6982`` bad MAC or no
challenge, ``6985`` not personalised or another rider's card, and the DEBIT refusals of
``facts.taxi``: ``9F01`` daily cap, ``9F02`` yearly cap, ``9F03`` time before the last
ride, ``9F04`` ride date outside the record's validity. ISO 7816-4 leaves ``9XXX`` to the
application; distinct words let the terminal name the refusal.
"""

from __future__ import annotations

import secrets

from ...facts import taxi
from ...iso7816.apdu import CommandAPDU
from ...iso7816.sw import SW
from ..application import CLA_PROPRIETARY, Application
from ..files import ALWAYS, NEVER, BinaryEF
from ..freespace import AppletData
from ..status import StatusError
from ..storage import image_key
from . import Applet

RECORD_LENGTH = taxi.Eligibility.LENGTH + taxi.SIGNATURE_LENGTH
EMPTY_COUNTERS = taxi.Counters(0, 0, 0, taxi.NO_TIME, 0)
KEY_FILES = (taxi.EF_ADMIN_KEY, taxi.EF_TERMINAL_MASTER, taxi.EF_RECEIPT_KEY)


class TaxiApplet(Applet):
    NAME = "taxi"
    LOAD_FILE = taxi.LOAD_FILE
    TITLE = "マイタク taxi-fare subsidy"
    FILES = {
        taxi.EF_ELIGIBILITY: BinaryEF("eligibility record, city-signed", read=ALWAYS),
        taxi.EF_COUNTERS: BinaryEF("ride counters", read=ALWAYS),
        taxi.EF_RIDE_LOG: BinaryEF("ride log (last receipts)", read=ALWAYS),
        taxi.EF_ADMIN_KEY: BinaryEF("admin key", read=NEVER),
        taxi.EF_TERMINAL_MASTER: BinaryEF("terminal master key", read=NEVER),
        taxi.EF_RECEIPT_KEY: BinaryEF("receipt key", read=NEVER),
    }
    challenge: bytes | None = None

    @classmethod
    def initial_data(cls, params: bytes) -> AppletData:
        if len(params) != taxi.KEY_LENGTH * len(KEY_FILES):
            raise ValueError("the install parameters are the admin, terminal-master and "
                             "receipt keys, 16 bytes each")
        keys = {image_key(cls.NAME, fid): params[i * taxi.KEY_LENGTH:(i + 1) * taxi.KEY_LENGTH]
                for i, fid in enumerate(KEY_FILES)}
        files = {**keys,
                 image_key(cls.NAME, taxi.EF_COUNTERS): EMPTY_COUNTERS.encode(),
                 image_key(cls.NAME, taxi.EF_RIDE_LOG): bytes(taxi.Receipt.LENGTH
                                                               * taxi.LOG_ENTRIES)}
        return AppletData(files={k: v.hex() for k, v in files.items()})

    def enter(self, *, keep_verified: bool = False) -> None:
        super().enter(keep_verified=keep_verified)
        self.challenge = None

    def _file(self, fid: int) -> bytes:
        value = self.store.file(self.key_name(fid))
        if value is None:
            raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
        return value

    def _take_challenge(self) -> bytes:
        """The pending challenge, forgotten now whatever the command's outcome."""
        challenge, self.challenge = self.challenge, None
        if challenge is None:
            raise StatusError(SW.SECURITY_STATUS_NOT_SATISFIED)
        return challenge

    def get_challenge(self, apdu: CommandAPDU) -> bytes:
        if apdu.p1p2:
            raise StatusError(SW.INCORRECT_P1P2)
        if apdu.data or apdu.le != taxi.CHALLENGE_LENGTH:
            raise StatusError(SW.WRONG_LENGTH)
        self.challenge = secrets.token_bytes(taxi.CHALLENGE_LENGTH)
        return self.challenge

    def personalise(self, apdu: CommandAPDU) -> bytes:
        if apdu.p1p2:
            raise StatusError(SW.INCORRECT_P1P2)
        challenge = self._take_challenge()
        if len(apdu.data) != RECORD_LENGTH + taxi.MAC_LENGTH:
            raise StatusError(SW.WRONG_LENGTH)
        record, mac = apdu.data[:RECORD_LENGTH], apdu.data[RECORD_LENGTH:]
        expected = taxi.personalise_mac(self._file(taxi.EF_ADMIN_KEY), challenge, record)
        if not taxi.macs_equal(mac, expected):
            raise StatusError(SW.SECURITY_STATUS_NOT_SATISFIED)
        try:
            new = taxi.Eligibility.decode(record[:taxi.Eligibility.LENGTH])
        except taxi.LayoutError:
            raise StatusError(SW.WRONG_DATA) from None
        current = self.store.file(self.key_name(taxi.EF_ELIGIBILITY))
        if current is not None and current[6:14] != new.rider_id:
            raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
        self.store.update_content(files={self.key_name(taxi.EF_ELIGIBILITY): record})
        return b""

    def debit(self, apdu: CommandAPDU) -> bytes:
        if apdu.p1p2:
            raise StatusError(SW.INCORRECT_P1P2)
        challenge = self._take_challenge()
        if len(apdu.data) != taxi.RideRequest.LENGTH + taxi.MAC_LENGTH:
            raise StatusError(SW.WRONG_LENGTH)
        raw, mac = apdu.data[:taxi.RideRequest.LENGTH], apdu.data[taxi.RideRequest.LENGTH:]
        request = taxi.RideRequest.decode(raw)
        key = taxi.terminal_key(self._file(taxi.EF_TERMINAL_MASTER), request.terminal_id)
        if not taxi.macs_equal(mac, taxi.debit_mac(key, challenge, raw)):
            raise StatusError(SW.SECURITY_STATUS_NOT_SATISFIED)
        if not taxi.valid_time(request.time) or request.fare == 0 or request.riders == 0:
            raise StatusError(SW.WRONG_DATA)
        record = taxi.Eligibility.decode(self._file(taxi.EF_ELIGIBILITY)
                                         [:taxi.Eligibility.LENGTH])
        day = request.time[:8].decode()
        if not record.valid_from <= day <= record.valid_to:
            raise StatusError(taxi.SW_NOT_VALID_ON_DATE)
        counters = taxi.Counters.decode(self._file(taxi.EF_COUNTERS))
        if request.time < counters.last_time:
            raise StatusError(taxi.SW_CLOCK_BACKWARDS)
        day_rides, year_rides = counters.rides_on(request.time)
        if year_rides >= record.yearly_quota:
            raise StatusError(taxi.SW_YEARLY_CAP)
        if day_rides >= record.daily_quota:
            raise StatusError(taxi.SW_DAILY_CAP)
        sequence = counters.sequence + 1
        unsigned = taxi.Receipt(sequence, request, taxi.subsidy(
            request.fare, request.riders, record.solo_cap, record.shared_cap), b"")
        receipt = taxi.Receipt(sequence, request, unsigned.subsidy, taxi.receipt_mac(
            self._file(taxi.EF_RECEIPT_KEY), record.rider_id, unsigned.body())).encode()
        after = taxi.Counters(sequence, taxi.fiscal_year(request.time), year_rides + 1,
                              request.time, day_rides + 1)
        log = receipt + self._file(taxi.EF_RIDE_LOG)[:-taxi.Receipt.LENGTH]
        # One transaction: counters and the receipt in the log reach the card together.
        self.store.update_content(files={self.key_name(taxi.EF_COUNTERS): after.encode(),
                                         self.key_name(taxi.EF_RIDE_LOG): log})
        return receipt

    INSTRUCTIONS = {
        **Application.INSTRUCTIONS,
        (CLA_PROPRIETARY, taxi.INS_GET_CHALLENGE): get_challenge,
        (CLA_PROPRIETARY, taxi.INS_PERSONALISE): personalise,
        (CLA_PROPRIETARY, taxi.INS_DEBIT): debit,
    }
