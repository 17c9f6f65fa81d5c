"""The in-taxi terminal (tablet) of マイタク: offline rides against the cards, a local queue.

A ride, with no network:

1. The deny list must be younger than ``max_deny_age`` (default 7 days), else nothing runs.
2. Every tapped card is read and checked before any is debited: the city's signature over
   the eligibility record, this city, not on the deny list, not tapped twice in this ride,
   valid today, and the card's own counters (daily and yearly caps, clock) so a refusal is
   named before money moves. The accepted cards are the ride's registered riders.
3. Each accepted card is debited with the party size; the card computes its subsidy and
   answers a receipt, queued in the local store with the ride. The terminal's sequence is
   stored before each DEBIT, so it never repeats.
4. A card pulled out during its DEBIT may have committed: the terminal keeps it pending, and
   at the card's next tap finds the receipt in the card's ride log (by terminal id and
   sequence) and queues it, so no debit stays without its receipt.

The store is SQLite (or any ``apps.common.db`` URL): the terminal's settings, the deny list,
the queued rides (``synced`` once the ledger has them) and the pending debits.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)

from ...clock import Clock, system_clock
from ...errors import MynacardError
from ...facts import taxi
from ...readers.base import CardConnection
from ..common.db import Database, naive_utc, utc
from .card import UNREADABLE_ERRORS, Reason, Refusal, TaxiCard
from .keys import load_public_key, record_signed_by

JST = ZoneInfo("Asia/Tokyo")
DEFAULT_MAX_DENY_AGE = dt.timedelta(days=7)

metadata = MetaData()
setting_table = Table("taxi_terminal_setting", metadata,
                      Column("name", String(40), primary_key=True),
                      Column("value", String(2000), nullable=False))
deny_table = Table("taxi_terminal_deny", metadata,
                   Column("rider_id", String(16), primary_key=True))
ride_table = Table("taxi_terminal_ride", metadata,
                   Column("rider_id", String(16), primary_key=True),
                   Column("sequence", Integer, primary_key=True),
                   Column("receipt", String(200), nullable=False),
                   Column("queued_at", DateTime, nullable=False),
                   Column("synced", Boolean, nullable=False, default=False))
pending_table = Table("taxi_terminal_pending", metadata,
                      Column("rider_id", String(16), primary_key=True),
                      Column("terminal_sequence", Integer, nullable=False))


class TerminalError(MynacardError):
    """The terminal is not provisioned or its store is unusable."""


@dataclass(frozen=True)
class TerminalConfig:
    """What the city provisions into a tablet (``mynacard app taxi provision``)."""

    terminal_id: bytes
    company: str
    municipality: str
    terminal_key: bytes
    city_public_pem: bytes

    def to_json(self) -> str:
        return json.dumps({"terminal_id": self.terminal_id.decode(), "company": self.company,
                           "municipality": self.municipality,
                           "terminal_key": self.terminal_key.hex(),
                           "city_public_key": self.city_public_pem.decode()})

    @classmethod
    def from_json(cls, text: str) -> TerminalConfig:
        try:
            raw = json.loads(text)
            config = cls(raw["terminal_id"].encode(), raw["company"], raw["municipality"],
                         bytes.fromhex(raw["terminal_key"]), raw["city_public_key"].encode())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TerminalError(f"terminal configuration is malformed: {exc!r}") from None
        if len(config.terminal_id) != taxi.TERMINAL_ID_LENGTH:
            raise TerminalError("terminal id must be 8 ASCII characters")
        return config


@dataclass(frozen=True)
class CardOutcome:
    rider_id: str | None
    receipt: taxi.Receipt | None = None
    refusal: Refusal | None = None


@dataclass
class RideResult:
    fare: int
    outcomes: list[CardOutcome] = field(default_factory=list)

    @property
    def subsidy(self) -> int:
        return sum(o.receipt.subsidy for o in self.outcomes if o.receipt is not None)

    @property
    def to_pay(self) -> int:
        return self.fare - self.subsidy


def ride_time(now: dt.datetime) -> bytes:
    return now.astimezone(JST).strftime("%Y%m%d%H%M").encode()


class Terminal:
    def __init__(self, db_spec: str | Path, config: TerminalConfig, *,
                 clock: Clock = system_clock,
                 max_deny_age: dt.timedelta = DEFAULT_MAX_DENY_AGE) -> None:
        self.db = Database(db_spec)
        self.db.transact(lambda c: metadata.create_all(c))
        self.config = config
        self.city_key: ec.EllipticCurvePublicKey = load_public_key(config.city_public_pem)
        self.clock = clock
        self.max_deny_age = max_deny_age

    def close(self) -> None:
        self.db.dispose()

    # -- deny list ---------------------------------------------------------------------------

    def install_deny_list(self, rider_ids: Sequence[str], issued_at: dt.datetime) -> None:
        def work(db: Connection) -> None:
            db.execute(delete(deny_table))
            if rider_ids:
                db.execute(insert(deny_table), [{"rider_id": r} for r in set(rider_ids)])
            _set(db, "deny_issued_at", naive_utc(issued_at).isoformat())
        self.db.transact(work)

    def deny_list_issued_at(self) -> dt.datetime | None:
        value = self.db.transact(lambda db: _get(db, "deny_issued_at"))
        return utc(dt.datetime.fromisoformat(value)) if value else None

    def _denied(self) -> set[str]:
        return set(self.db.transact(lambda db: db.scalars(select(deny_table.c.rider_id)).all()))

    # -- a ride ------------------------------------------------------------------------------

    def ride(self, cards: Sequence[CardConnection], fare: int) -> RideResult:
        if fare <= 0:
            raise TerminalError("the fare must be a positive number of yen")
        now = self.clock()
        issued = self.deny_list_issued_at()
        if issued is None or now - issued > self.max_deny_age:
            raise Refusal(Reason.STALE_DENY_LIST,
                          f"list of {issued:%Y-%m-%d}" if issued else "no list installed")
        time = ride_time(now)
        denied = self._denied()
        result, accepted = RideResult(fare), []
        seen: set[bytes] = set()
        for connection in cards:
            try:
                taxi_card, record = self._check(connection, time, denied, seen)
            except Refusal as refusal:
                result.outcomes.append(CardOutcome(None, refusal=refusal))
                continue
            accepted.append((taxi_card, record))
        for taxi_card, record in accepted:
            result.outcomes.append(self._debit(taxi_card, record, time, fare, len(accepted)))
        return result

    def _check(self, connection: CardConnection, time: bytes, denied: set[str],
               seen: set[bytes]) -> tuple[TaxiCard, taxi.Eligibility]:
        taxi_card = TaxiCard(connection)
        try:
            taxi_card.select()
            signed = taxi_card.record()
            counters = taxi_card.counters()
            self._recover_pending(taxi_card, signed)
        except UNREADABLE_ERRORS as exc:
            raise Refusal(Reason.UNREADABLE, str(exc)) from None
        if not record_signed_by(self.city_key, signed):
            raise Refusal(Reason.FORGED)
        try:
            record = taxi.Eligibility.decode(signed[:taxi.Eligibility.LENGTH])
        except taxi.LayoutError as exc:
            raise Refusal(Reason.FORGED, str(exc)) from None
        rider = record.rider_id.hex()
        if record.municipality != self.config.municipality:
            raise Refusal(Reason.NOT_REGISTERED, f"registered in {record.municipality}")
        if rider in denied:
            raise Refusal(Reason.STOPPED, f"rider {rider}")
        if record.rider_id in seen:
            raise Refusal(Reason.DOUBLE_TAP, f"rider {rider}")
        seen.add(record.rider_id)
        if not record.valid_from <= time[:8].decode() <= record.valid_to:
            raise Refusal(Reason.NOT_VALID, f"{record.valid_from}–{record.valid_to}")
        if time < counters.last_time:
            raise Refusal(Reason.CLOCK, f"last ride {counters.last_time.decode()}")
        day_rides, year_rides = counters.rides_on(time)
        if year_rides >= record.yearly_quota:
            raise Refusal(Reason.YEARLY_CAP, f"{year_rides} of {record.yearly_quota} used")
        if day_rides >= record.daily_quota:
            raise Refusal(Reason.DAILY_CAP)
        return taxi_card, record

    def _debit(self, taxi_card: TaxiCard, record: taxi.Eligibility, time: bytes, fare: int,
               riders: int) -> CardOutcome:
        rider = record.rider_id.hex()
        sequence = self.db.transact(lambda db: _next_sequence(db, rider))
        request = taxi.RideRequest(self.config.terminal_id, sequence, time, fare, riders)
        try:
            receipt = taxi_card.debit(request, self.config.terminal_key)
        except Refusal as refusal:
            self.db.transact(lambda db: db.execute(
                delete(pending_table).where(pending_table.c.rider_id == rider)))
            return CardOutcome(rider, refusal=refusal)
        except UNREADABLE_ERRORS as exc:
            # The card may have committed: the pending row finds the receipt at its next tap.
            return CardOutcome(rider, refusal=Refusal(Reason.UNREADABLE, str(exc)))
        self._queue(rider, receipt)
        return CardOutcome(rider, receipt=receipt)

    def _queue(self, rider: str, receipt: taxi.Receipt) -> None:
        now = naive_utc(self.clock())

        def work(db: Connection) -> None:
            db.execute(delete(pending_table).where(pending_table.c.rider_id == rider))
            exists = db.scalar(select(ride_table.c.sequence).where(
                ride_table.c.rider_id == rider, ride_table.c.sequence == receipt.sequence))
            if exists is None:
                db.execute(insert(ride_table).values(
                    rider_id=rider, sequence=receipt.sequence, receipt=receipt.encode().hex(),
                    queued_at=now, synced=False))
        self.db.transact(work)

    def _recover_pending(self, taxi_card: TaxiCard, signed: bytes) -> None:
        rider = signed[6:14].hex()
        pending = self.db.transact(lambda db: db.scalar(select(
            pending_table.c.terminal_sequence).where(pending_table.c.rider_id == rider)))
        if pending is None:
            return
        for receipt in taxi_card.log():
            if receipt.ride.terminal_id == self.config.terminal_id \
                    and receipt.ride.terminal_sequence == pending:
                self._queue(rider, receipt)
                return
        self.db.transact(lambda db: db.execute(
            delete(pending_table).where(pending_table.c.rider_id == rider)))

    # -- the queue ---------------------------------------------------------------------------

    def queued(self, *, unsynced_only: bool = False) -> list[tuple[str, taxi.Receipt]]:
        def work(db: Connection) -> list[tuple[str, taxi.Receipt]]:
            query = select(ride_table.c.rider_id, ride_table.c.receipt).order_by(
                ride_table.c.queued_at, ride_table.c.rider_id, ride_table.c.sequence)
            if unsynced_only:
                query = query.where(ride_table.c.synced.is_(False))
            return [(r, taxi.Receipt.decode(bytes.fromhex(h))) for r, h in db.execute(query)]
        return self.db.transact(work)

    def mark_synced(self, keys: Sequence[tuple[str, int]]) -> None:
        def work(db: Connection) -> None:
            for rider, sequence in keys:
                db.execute(update(ride_table).where(
                    ride_table.c.rider_id == rider, ride_table.c.sequence == sequence
                ).values(synced=True))
        self.db.transact(work)


def _get(db: Connection, name: str) -> str | None:
    return db.scalar(select(setting_table.c.value).where(setting_table.c.name == name))


def _set(db: Connection, name: str, value: str) -> None:
    if _get(db, name) is None:
        db.execute(insert(setting_table).values(name=name, value=value))
    else:
        db.execute(update(setting_table).where(setting_table.c.name == name)
                   .values(value=value))


def _next_sequence(db: Connection, rider: str) -> int:
    """The next terminal sequence, recorded with the rider as pending before the DEBIT."""
    sequence = int(_get(db, "terminal_sequence") or 0) + 1
    _set(db, "terminal_sequence", str(sequence))
    db.execute(delete(pending_table).where(pending_table.c.rider_id == rider))
    db.execute(insert(pending_table).values(rider_id=rider, terminal_sequence=sequence))
    return sequence
