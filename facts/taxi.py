"""マイタク (taxi-fare subsidy) card application: the wire and storage layouts both sides share.

The real card-AP layout is not public (J-LIS releases it under NDA); this design is ours and
is documented in ``docs/taxi.md`` and ``cardsim/applets/taxi.py``. Everything here is pure
data plus the MAC and subsidy arithmetic: the card (``cardsim.applets.taxi``), the terminal
and the city ledger (``apps.taxi``) all compute them from this one definition.

Times are the terminal's local (JST) wall clock as 12 ASCII digits ``YYYYMMDDhhmm``: the
card compares them as strings (monotonic), takes the day from the first 8 and the fiscal
year (April to March) from the first 6.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

LOAD_FILE = bytes.fromhex("F06D796E6174617869")  # F0 "mynataxi"
INSTANCE_AID = LOAD_FILE + b"\x01"
QUOTA = 1024
"""Bytes the city reserves for one instance (keys, record, counters, an 8-ride log)."""

EF_ELIGIBILITY, EF_COUNTERS, EF_RIDE_LOG = 0x0001, 0x0002, 0x0003
EF_ADMIN_KEY, EF_TERMINAL_MASTER, EF_RECEIPT_KEY = 0x0011, 0x0012, 0x0013

INS_DEBIT = 0x20
INS_PERSONALISE = 0x24
INS_GET_CHALLENGE = 0x84
CHALLENGE_LENGTH = 8
MAC_LENGTH = 16
KEY_LENGTH = 16
LOG_ENTRIES = 8

SW_DAILY_CAP = 0x9F01
"""DEBIT refused: the daily ride cap is reached (proprietary, ISO 7816-4 '9XXX')."""
SW_YEARLY_CAP = 0x9F02
"""DEBIT refused: no rides left in this fiscal year."""
SW_CLOCK_BACKWARDS = 0x9F03
"""DEBIT refused: the ride time is earlier than the card's last ride."""
SW_NOT_VALID_ON_DATE = 0x9F04
"""DEBIT refused: the ride date is outside the eligibility record's validity."""

TERMINAL_ID_LENGTH = 8
RIDER_ID_LENGTH = 8
TIME_LENGTH = 12
NO_TIME = b"0" * TIME_LENGTH
_TIME = re.compile(rb"(\d{4})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])([01]\d|2[0-3])([0-5]\d)")
_DATE = re.compile(rb"\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")


class LayoutError(ValueError):
    """Bytes that do not follow the layout (a card or terminal answering nonsense)."""


def valid_time(value: bytes) -> bool:
    return _TIME.fullmatch(value) is not None


def fiscal_year(time: bytes) -> int:
    """The fiscal year (starting in April) of a ``YYYYMM…`` time."""
    year, month = int(time[:4]), int(time[4:6])
    return year if month >= 4 else year - 1


def subsidy(fare: int, riders: int, solo_cap: int, shared_cap: int) -> int:
    """One card's subsidy: alone, half the fare up to ``solo_cap``; with ``riders`` ≥ 2
    registered riders, ``shared_cap`` each but never more than an equal share of the fare
    (whole yen, rounded down: the ride's total never exceeds the fare)."""
    if fare <= 0 or riders <= 0:
        raise ValueError("fare and riders must be positive")
    if riders == 1:
        return min(fare // 2, solo_cap)
    return min(shared_cap, fare // riders)


# -- EF 0001: the city-signed eligibility record -------------------------------------------

ELIGIBILITY_VERSION = 1
SIGNATURE_LENGTH = 64
"""ECDSA P-256 signature as r ‖ s, 32 bytes each."""


@dataclass(frozen=True, slots=True)
class Eligibility:
    municipality: str
    """全国地方公共団体コード, 5 digits (without the check digit)."""
    rider_id: bytes
    """Opaque, 8 bytes, assigned by the city; never the My Number."""
    category: int
    """1: 75+; 2: 65+ without a licence; 3: disability/care/pregnancy (code only); 4: licence
    returned."""
    valid_from: str
    valid_to: str
    """YYYYMMDD, inclusive."""
    yearly_quota: int
    daily_quota: int
    solo_cap: int
    shared_cap: int

    LENGTH = 1 + 5 + RIDER_ID_LENGTH + 1 + 8 + 8 + 2 + 1 + 2 + 2

    def encode(self) -> bytes:
        return b"".join((bytes((ELIGIBILITY_VERSION,)), self.municipality.encode(),
                         self.rider_id, bytes((self.category,)), self.valid_from.encode(),
                         self.valid_to.encode(), self.yearly_quota.to_bytes(2, "big"),
                         bytes((self.daily_quota,)), self.solo_cap.to_bytes(2, "big"),
                         self.shared_cap.to_bytes(2, "big")))

    @classmethod
    def decode(cls, body: bytes) -> Eligibility:
        if len(body) != cls.LENGTH or body[0] != ELIGIBILITY_VERSION:
            raise LayoutError("eligibility record: wrong length or version")
        municipality, valid_from, valid_to = body[1:6], body[15:23], body[23:31]
        if not municipality.isdigit() or not _DATE.fullmatch(valid_from) \
                or not _DATE.fullmatch(valid_to) or not 1 <= body[14] <= 4:
            raise LayoutError("eligibility record: bad municipality, category or dates")
        return cls(municipality.decode(), body[6:14], body[14], valid_from.decode(),
                   valid_to.decode(), int.from_bytes(body[31:33], "big"), body[33],
                   int.from_bytes(body[34:36], "big"), int.from_bytes(body[36:38], "big"))


# -- EF 0002: counters ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counters:
    sequence: int
    """Debits ever made by this card; the receipt number (never reset)."""
    fiscal_year: int
    year_rides: int
    """Rides in ``fiscal_year``."""
    last_time: bytes
    """Time of the last ride, ``NO_TIME`` before the first."""
    day_rides: int
    """Rides on the day of ``last_time``."""

    LENGTH = 4 + 2 + 2 + TIME_LENGTH + 1

    def encode(self) -> bytes:
        return (self.sequence.to_bytes(4, "big") + self.fiscal_year.to_bytes(2, "big")
                + self.year_rides.to_bytes(2, "big") + self.last_time
                + bytes((self.day_rides,)))

    @classmethod
    def decode(cls, raw: bytes) -> Counters:
        if len(raw) != cls.LENGTH:
            raise LayoutError("counters: wrong length")
        return cls(int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:6], "big"),
                   int.from_bytes(raw[6:8], "big"), raw[8:20], raw[20])

    def rides_on(self, time: bytes) -> tuple[int, int]:
        """(rides that day, rides that fiscal year) as the card counts them for a ride at
        ``time``: a new day or fiscal year starts from zero."""
        day = self.day_rides if time[:8] == self.last_time[:8] else 0
        year = self.year_rides if fiscal_year(time) == self.fiscal_year else 0
        return day, year


# -- DEBIT request and the receipt (one ride-log entry) ------------------------------------


@dataclass(frozen=True, slots=True)
class RideRequest:
    terminal_id: bytes
    terminal_sequence: int
    time: bytes
    fare: int
    riders: int

    LENGTH = TERMINAL_ID_LENGTH + 4 + TIME_LENGTH + 4 + 1

    def encode(self) -> bytes:
        return (self.terminal_id + self.terminal_sequence.to_bytes(4, "big") + self.time
                + self.fare.to_bytes(4, "big") + bytes((self.riders,)))

    @classmethod
    def decode(cls, raw: bytes) -> RideRequest:
        if len(raw) != cls.LENGTH:
            raise LayoutError("ride request: wrong length")
        return cls(raw[:8], int.from_bytes(raw[8:12], "big"), raw[12:24],
                   int.from_bytes(raw[24:28], "big"), raw[28])


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the card logs and answers for a debit; ``mac`` under the card's receipt key."""

    sequence: int
    ride: RideRequest
    subsidy: int
    mac: bytes

    LENGTH = 4 + RideRequest.LENGTH + 4 + MAC_LENGTH

    def body(self) -> bytes:
        return (self.sequence.to_bytes(4, "big") + self.ride.encode()
                + self.subsidy.to_bytes(4, "big"))

    def encode(self) -> bytes:
        return self.body() + self.mac

    @classmethod
    def decode(cls, raw: bytes) -> Receipt:
        if len(raw) != cls.LENGTH:
            raise LayoutError("receipt: wrong length")
        end = 4 + RideRequest.LENGTH
        return cls(int.from_bytes(raw[:4], "big"), RideRequest.decode(raw[4:end]),
                   int.from_bytes(raw[end:end + 4], "big"), raw[end + 4:])


def decode_log(raw: bytes) -> list[Receipt]:
    """The ride log, newest first; unused slots (all zero) are left out."""
    if len(raw) % Receipt.LENGTH:
        raise LayoutError("ride log: not a whole number of entries")
    entries = (raw[i:i + Receipt.LENGTH] for i in range(0, len(raw), Receipt.LENGTH))
    return [Receipt.decode(e) for e in entries if any(e)]


# -- keys and MACs (HMAC-SHA-256, truncated to 16 bytes) -----------------------------------


def _mac(key: bytes, label: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, label + b"".join(parts), hashlib.sha256).digest()[:MAC_LENGTH]


def diversify(master: bytes, label: bytes, identity: bytes) -> bytes:
    """A key for one card or terminal from a city master key (the city can rederive it)."""
    return _mac(master, b"mynataxi-key-" + label, identity)


def terminal_key(terminal_master: bytes, terminal_id: bytes) -> bytes:
    return diversify(terminal_master, b"terminal", terminal_id)


def debit_mac(key: bytes, challenge: bytes, request: bytes) -> bytes:
    """The terminal's authorisation of one DEBIT: bound to the card's fresh challenge."""
    return _mac(key, b"mynataxi-debit", challenge, request)


def personalise_mac(key: bytes, challenge: bytes, record: bytes) -> bytes:
    return _mac(key, b"mynataxi-perso", challenge, record)


def receipt_mac(key: bytes, rider_id: bytes, body: bytes) -> bytes:
    return _mac(key, b"mynataxi-receipt", rider_id, body)


def macs_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
