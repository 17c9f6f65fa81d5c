"""The マイタク city ledger: what the taxis' terminals upload, checked and counted once.

For each uploaded ride (rider id, card receipt) the ledger

* rederives the card's receipt key from the rider id (``CityKeys.receipt_key``) and verifies
  the receipt's MAC: a tablet cannot invent or alter a ride, it never holds that key;
* requires the receipt to name the uploading terminal (a terminal uploads its own rides);
* de-duplicates on (rider, card sequence): a retried or replayed upload counts once;
* refuses rides of an unknown rider and rides taken after the registration was stopped (a ride
  taken before the stop and synced later still counts: the card was valid then);
* flags, without refusing, the same card in two taxis within ``TWO_TAXIS_WINDOW`` and a ride
  dated after the upload (a tablet clock set ahead) — the city reviews flagged rides before
  paying, and the claim shows the flag.

Usage follows the fiscal year (April to March, JST) of the ledger's clock, so the yearly
reset needs no job: a new fiscal year counts from zero. The deny list is every stopped rider.
The store is ``apps.common.db`` (SQLite or PostgreSQL); every check that depends on other rows
runs inside the transaction that writes, so concurrent syncs neither lose nor double a ride.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    update,
)

from ...errors import MynacardError
from ...facts import taxi
from ..common.db import Database, naive_utc, utc
from .keys import CityKeys
from .terminal import JST, ride_time

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "taxi_alembic_version"
TWO_TAXIS_WINDOW = dt.timedelta(minutes=10)
"""Two taxis cannot carry one card within this time: such rides are flagged (a guess, §3.5)."""
CLOCK_SLACK = dt.timedelta(minutes=5)
ONLINE_DAILY, ONLINE_SOLO_CAP, ONLINE_SHARED_CAP = 2, 1000, 500
"""The online variant's rules, which the offline variant reads from the card's record."""
"""A ride dated later than its upload by more than this was taken on a clock set ahead."""
BATCH = 200
"""Rides written per transaction: short transactions keep concurrent syncs from colliding."""

metadata = MetaData()
rider_table = Table("taxi_rider", metadata,
                    Column("rider_id", String(16), primary_key=True),
                    Column("resident", String(32), nullable=False),
                    Column("category", Integer, nullable=False),
                    Column("yearly_quota", Integer, nullable=False),
                    Column("link_key", String(200)),
                    Column("enrolment", String(80)),
                    Column("registered_at", DateTime, nullable=False),
                    Column("stopped_at", DateTime),
                    Column("stop_reason", String(32)))
terminal_table = Table("taxi_terminal", metadata,
                       Column("terminal_id", String(8), primary_key=True),
                       Column("company", String(200), nullable=False),
                       Column("last_sync", DateTime, nullable=False))
ride_table = Table("taxi_ride", metadata,
                   Column("rider_id", String(16), primary_key=True),
                   Column("sequence", Integer, primary_key=True),
                   Column("terminal_id", String(8), nullable=False),
                   Column("terminal_sequence", Integer, nullable=False),
                   Column("ride_at", DateTime, nullable=False),
                   Column("fiscal_year", Integer, nullable=False),
                   Column("month", String(6), nullable=False),
                   Column("fare", Integer, nullable=False),
                   Column("riders", Integer, nullable=False),
                   Column("subsidy", Integer, nullable=False),
                   Column("receipt", String(200), nullable=False),
                   Column("received_at", DateTime, nullable=False),
                   Column("flag", String(64)))


class LedgerError(MynacardError):
    """A ledger request that cannot be carried out (unknown rider, bad input)."""


class StopReason(enum.Enum):
    MOVED_OUT = "moved-out"
    DIED = "died"
    CARD_LOST = "card-lost"
    CARD_REVOKED = "card-revoked"
    CARD_REPLACED = "card-replaced"


class Rejection(enum.Enum):
    MALFORMED = "malformed"
    BAD_MAC = "bad-mac"
    OTHER_TERMINAL = "other-terminal"
    UNKNOWN_RIDER = "unknown-rider"
    STOPPED = "stopped"
    CONFLICT = "conflict"
    """Another receipt with the same (rider, sequence) is already counted: not a genuine card."""


class Flag(enum.Enum):
    TWO_TAXIS = "two-taxis"
    CLOCK_AHEAD = "clock-ahead"


@dataclass
class SyncOutcome:
    accepted: list[tuple[str, int]] = field(default_factory=list)
    duplicates: list[tuple[str, int]] = field(default_factory=list)
    """Already counted (an earlier sync or a replay): the terminal may forget them."""
    rejected: list[tuple[str, int, Rejection]] = field(default_factory=list)
    flagged: list[tuple[str, int, Flag]] = field(default_factory=list)


class OnlineRefusal(enum.Enum):
    NOT_REGISTERED = "not-registered"
    DOUBLE_TAP = "double-tap"
    STOPPED = "stopped"
    YEARLY_CAP = "yearly-cap"
    DAILY_CAP = "daily-cap"


@dataclass(frozen=True)
class OnlineOutcome:
    """One tapped rider of an online ride: recorded (``sequence``, ``subsidy``) or refused."""

    link_key: str
    rider: str | None
    sequence: int | None = None
    subsidy: int = 0
    refusal: OnlineRefusal | None = None


@dataclass(frozen=True)
class Usage:
    rider_id: str
    fiscal_year: int
    rides: int
    yearly_quota: int
    stopped: StopReason | None
    enrolment: str | None = None
    """``pin`` (strict), ``staff: <document kind>`` (顔認証 card, flagged), None (API)."""

    @property
    def remaining(self) -> int:
        return max(0, self.yearly_quota - self.rides)


def ride_datetime(time: bytes) -> dt.datetime:
    """A card's ``YYYYMMDDhhmm`` (JST wall clock) as an aware UTC datetime."""
    return dt.datetime.strptime(time.decode(), "%Y%m%d%H%M").replace(tzinfo=JST) \
        .astimezone(dt.UTC)


def fiscal_year_of(now: dt.datetime) -> int:
    return taxi.fiscal_year(now.astimezone(JST).strftime("%Y%m").encode())


def _hex_rider(rider: str) -> bytes | None:
    try:
        raw = bytes.fromhex(rider)
    except ValueError:
        return None
    return raw if len(raw) == taxi.RIDER_ID_LENGTH and rider == raw.hex() else None


@dataclass(frozen=True)
class _Checked:
    rider: str
    receipt: taxi.Receipt
    ride_at: dt.datetime


class Ledger:
    """The city ledger at ``spec`` (a path, ``sqlite:///…`` or ``postgresql://…``), migrated
    when opened; ``keys`` are the city's (the receipt master rederives each card's key)."""

    def __init__(self, spec: str | Path, keys: CityKeys) -> None:
        self.db = Database(spec)
        self.keys = keys
        self.db.migrate(MIGRATIONS, VERSION_TABLE)

    def close(self) -> None:
        self.db.dispose()

    # -- registrations ----------------------------------------------------------------------

    def register(self, rider_id: bytes, resident: str, category: int, yearly_quota: int,
                 now: dt.datetime, *, link_key: str | None = None,
                 enrolment: str | None = None) -> None:
        """Record a personalised card. The resident's earlier cards are stopped as replaced:
        one resident rides on one card. ``enrolment`` says how the counter checked the
        holder (``pin``, or ``staff: <document>`` for the flagged staff path)."""
        rider = rider_id.hex()

        def work(db: Connection) -> None:
            if db.scalar(select(rider_table.c.rider_id)
                         .where(rider_table.c.rider_id == rider)) is not None:
                raise LedgerError(f"rider {rider} is already registered")
            db.execute(update(rider_table).where(
                rider_table.c.resident == resident, rider_table.c.stopped_at.is_(None)
            ).values(stopped_at=naive_utc(now), stop_reason=StopReason.CARD_REPLACED.value))
            db.execute(insert(rider_table).values(
                rider_id=rider, resident=resident, category=category,
                yearly_quota=yearly_quota, link_key=link_key, enrolment=enrolment,
                registered_at=naive_utc(now)))

        self.db.transact(work)

    def stop_rider(self, rider: str, reason: StopReason, at: dt.datetime) -> bool:
        """Stop one card's registration (lost or revoked card); False if already stopped."""
        def work(db: Connection) -> bool:
            found = db.execute(select(rider_table.c.stopped_at)
                               .where(rider_table.c.rider_id == rider)).first()
            if found is None:
                raise LedgerError(f"no registration for rider {rider}")
            if found.stopped_at is not None:
                return False
            db.execute(update(rider_table).where(rider_table.c.rider_id == rider)
                       .values(stopped_at=naive_utc(at), stop_reason=reason.value))
            return True

        return self.db.transact(work)

    def stop_resident(self, resident: str, reason: StopReason, at: dt.datetime) -> list[str]:
        """Stop every active card of a resident (moved out, died); the riders stopped."""
        def work(db: Connection) -> list[str]:
            riders = list(db.scalars(select(rider_table.c.rider_id).where(
                rider_table.c.resident == resident, rider_table.c.stopped_at.is_(None))))
            if riders:
                db.execute(update(rider_table).where(rider_table.c.rider_id.in_(riders))
                           .values(stopped_at=naive_utc(at), stop_reason=reason.value))
            return riders

        return self.db.transact(work)

    def riders_by_link(self) -> dict[str, str]:
        """Active riders enrolled with a JPKI link key: link key → rider."""
        def work(db: Connection) -> dict[str, str]:
            rows = db.execute(select(rider_table.c.link_key, rider_table.c.rider_id).where(
                rider_table.c.link_key.is_not(None), rider_table.c.stopped_at.is_(None)))
            return {row.link_key: row.rider_id for row in rows}

        return self.db.transact(work)

    def apply_resident_feed(self, text: str) -> list[tuple[str, list[str]]]:
        """Stop the cards of residents who moved out or died, from the resident-record feed:
        JSON ``[{"event": "move-out"|"death", "resident": "…", "at": ISO time}, …]``. A move
        revokes no certificate, so this feed is the only way the ledger learns of it.
        Answers (resident, riders stopped) per event."""
        events = {"move-out": StopReason.MOVED_OUT, "death": StopReason.DIED}
        try:
            entries = json.loads(text)
            parsed = [(events[e["event"]], str(e["resident"]),
                       dt.datetime.fromisoformat(e["at"])) for e in entries]
        except (ValueError, KeyError, TypeError) as exc:
            raise LedgerError(f"resident feed is malformed: {exc!r}") from None
        if any(at.tzinfo is None for _, _, at in parsed):
            raise LedgerError("resident feed times need a zone (e.g. +09:00)")
        return [(resident, self.stop_resident(resident, reason, at))
                for reason, resident, at in parsed]

    def apply_revocations(self, crl: x509.CertificateRevocationList, issuer: x509.Certificate
                          ) -> list[tuple[str, StopReason]]:
        """Stop the cards whose enrolment certificate (link key) the JPKI CRL revokes: a
        hold (``certificateHold``, a reported loss) stops the card as lost, a
        ``cessationOfOperation`` (death) as died, any other reason as revoked. The CRL must
        be signed by ``issuer`` (a CA the city trusts)."""
        if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):
            raise LedgerError("the CRL is not signed by the given CA")
        key_id = x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest.hex()
        reasons = {x509.ReasonFlags.certificate_hold: StopReason.CARD_LOST,
                   x509.ReasonFlags.cessation_of_operation: StopReason.DIED}
        stopped = []
        for link_key, rider in sorted(self.riders_by_link().items()):
            issuer_id, _, serial = link_key.partition(":")
            if issuer_id != key_id:
                continue
            entry = crl.get_revoked_certificate_by_serial_number(int(serial, 16))
            if entry is None:
                continue
            try:
                reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
            except x509.ExtensionNotFound:
                reason = x509.ReasonFlags.unspecified
            why = reasons.get(reason, StopReason.CARD_REVOKED)
            if self.stop_rider(rider, why, entry.revocation_date_utc):
                stopped.append((rider, why))
        return stopped

    def deny_list(self) -> list[str]:
        """Every stopped rider, for the terminals."""
        return self.db.transact(lambda db: sorted(db.scalars(
            select(rider_table.c.rider_id).where(rider_table.c.stopped_at.is_not(None)))))

    # -- sync -------------------------------------------------------------------------------

    def sync(self, terminal_id: bytes, company: str, rides: Iterable[tuple[str, bytes]],
             now: dt.datetime) -> SyncOutcome:
        """Count one terminal's uploaded rides (rider hex, receipt bytes)."""
        outcome, checked = SyncOutcome(), []
        for rider, raw in rides:
            ride = self._verify(terminal_id, rider, raw, outcome)
            if ride is not None:
                checked.append(ride)
        terminal = terminal_id.decode("ascii", "replace")
        self.db.transact(lambda db: _note_terminal(db, terminal, company, now))
        for start in range(0, len(checked), BATCH):
            batch = checked[start:start + BATCH]
            # A re-run transaction (PostgreSQL conflict) must not report twice: each attempt
            # fills a fresh outcome, the last one counts.
            part = self.db.transact(lambda db, batch=batch: self._record(db, batch, now))
            for name in ("accepted", "duplicates", "rejected", "flagged"):
                getattr(outcome, name).extend(getattr(part, name))
        return outcome

    def _verify(self, terminal_id: bytes, rider: str, raw: bytes,
                outcome: SyncOutcome) -> _Checked | None:
        rider_id = _hex_rider(rider)
        try:
            receipt = taxi.Receipt.decode(raw)
            ride_at = ride_datetime(receipt.ride.time)
        except (taxi.LayoutError, ValueError):
            outcome.rejected.append((rider, -1, Rejection.MALFORMED))
            return None
        if rider_id is None:
            outcome.rejected.append((rider, receipt.sequence, Rejection.MALFORMED))
            return None
        expected = taxi.receipt_mac(self.keys.receipt_key(rider_id), rider_id, receipt.body())
        if not taxi.macs_equal(expected, receipt.mac):
            outcome.rejected.append((rider, receipt.sequence, Rejection.BAD_MAC))
            return None
        if receipt.ride.terminal_id != terminal_id:
            outcome.rejected.append((rider, receipt.sequence, Rejection.OTHER_TERMINAL))
            return None
        return _Checked(rider, receipt, ride_at)

    def _record(self, db: Connection, batch: Sequence[_Checked], now: dt.datetime
                ) -> SyncOutcome:
        outcome = SyncOutcome()
        for ride in batch:
            key = (ride.rider, ride.receipt.sequence)
            stored = db.scalar(select(ride_table.c.receipt).where(
                ride_table.c.rider_id == ride.rider,
                ride_table.c.sequence == ride.receipt.sequence))
            if stored is not None:
                if stored == ride.receipt.encode().hex():
                    outcome.duplicates.append(key)
                else:
                    outcome.rejected.append((*key, Rejection.CONFLICT))
                continue
            registration = db.execute(select(rider_table.c.stopped_at).where(
                rider_table.c.rider_id == ride.rider)).first()
            if registration is None:
                outcome.rejected.append((*key, Rejection.UNKNOWN_RIDER))
                continue
            if registration.stopped_at is not None \
                    and ride.ride_at >= utc(registration.stopped_at):
                outcome.rejected.append((*key, Rejection.STOPPED))
                continue
            flag = self._flag(db, ride, now)
            jst = ride.receipt.ride.time.decode()
            db.execute(insert(ride_table).values(
                rider_id=ride.rider, sequence=ride.receipt.sequence,
                terminal_id=ride.receipt.ride.terminal_id.decode("ascii", "replace"),
                terminal_sequence=ride.receipt.ride.terminal_sequence,
                ride_at=naive_utc(ride.ride_at),
                fiscal_year=taxi.fiscal_year(ride.receipt.ride.time), month=jst[:6],
                fare=ride.receipt.ride.fare, riders=ride.receipt.ride.riders,
                subsidy=ride.receipt.subsidy, receipt=ride.receipt.encode().hex(),
                received_at=naive_utc(now), flag=flag.value if flag else None))
            outcome.accepted.append(key)
            if flag is not None:
                outcome.flagged.append((*key, flag))
        return outcome

    def _flag(self, db: Connection, ride: _Checked, now: dt.datetime) -> Flag | None:
        if ride.ride_at > now + CLOCK_SLACK:
            return Flag.CLOCK_AHEAD
        terminal = ride.receipt.ride.terminal_id.decode("ascii", "replace")
        near = (ride_table.c.rider_id == ride.rider,
                ride_table.c.terminal_id != terminal,
                ride_table.c.ride_at > naive_utc(ride.ride_at - TWO_TAXIS_WINDOW),
                ride_table.c.ride_at < naive_utc(ride.ride_at + TWO_TAXIS_WINDOW))
        others = list(db.scalars(select(ride_table.c.sequence).where(*near)))
        if not others:
            return None
        # Both rides are suspect: the earlier one may be the invented one.
        db.execute(update(ride_table).where(*near, ride_table.c.flag.is_(None))
                   .values(flag=Flag.TWO_TAXIS.value))
        return Flag.TWO_TAXIS

    # -- the online variant -----------------------------------------------------------------

    def online_ride(self, terminal_id: bytes, company: str, link_keys: Sequence[str],
                    fare: int, now: dt.datetime) -> list[OnlineOutcome]:
        """One ride of the online variant: the terminal has tapped each rider's
        authentication certificate (``client.recipes.tap_check``) and sends the link keys;
        the ledger holds eligibility and counts instead of the card. Each key is refused if
        unknown, tapped twice, stopped, or at the yearly or daily cap; the accepted riders
        share the ride by the same rule as the card and their rides are recorded in one
        transaction (counted like synced rides, with no card receipt)."""
        if fare <= 0:
            raise LedgerError("the fare must be a positive number of yen")
        year, day = fiscal_year_of(now), now.astimezone(JST).date()
        day_start = dt.datetime.combine(day, dt.time(), JST)
        terminal = terminal_id.decode("ascii", "replace")

        def work(db: Connection) -> list[OnlineOutcome]:
            _note_terminal(db, terminal, company, now)
            outcomes, accepted, seen = [], [], set()
            for link_key in link_keys:
                row = db.execute(select(rider_table).where(rider_table.c.link_key == link_key)
                                 .order_by(rider_table.c.registered_at.desc())).first()
                reason = None
                if row is None:
                    reason = OnlineRefusal.NOT_REGISTERED
                elif link_key in seen:
                    reason = OnlineRefusal.DOUBLE_TAP
                elif row.stopped_at is not None and utc(row.stopped_at) <= now:
                    reason = OnlineRefusal.STOPPED
                else:
                    rides = db.execute(select(ride_table.c.ride_at).where(
                        ride_table.c.rider_id == row.rider_id,
                        ride_table.c.fiscal_year == year)).scalars().all()
                    if len(rides) >= row.yearly_quota:
                        reason = OnlineRefusal.YEARLY_CAP
                    elif sum(1 for at in rides if utc(at) >= day_start) >= ONLINE_DAILY:
                        reason = OnlineRefusal.DAILY_CAP
                seen.add(link_key)
                outcome = OnlineOutcome(link_key, row.rider_id if row else None, refusal=reason)
                outcomes.append(outcome)
                if reason is None:
                    accepted.append(len(outcomes) - 1)
            if not accepted:
                return outcomes
            each = taxi.subsidy(fare, len(accepted), ONLINE_SOLO_CAP, ONLINE_SHARED_CAP)
            time = ride_time(now)
            for index in accepted:
                outcome = outcomes[index]
                sequence = (db.scalar(select(func.max(ride_table.c.sequence)).where(
                    ride_table.c.rider_id == outcome.rider)) or 0) + 1
                db.execute(insert(ride_table).values(
                    rider_id=outcome.rider, sequence=sequence, terminal_id=terminal,
                    terminal_sequence=sequence, ride_at=naive_utc(now), fiscal_year=year,
                    month=time[:6].decode(), fare=fare, riders=len(accepted), subsidy=each,
                    receipt="", received_at=naive_utc(now), flag=None))
                outcomes[index] = OnlineOutcome(
                    outcome.link_key, outcome.rider, sequence, each)
            return outcomes

        return self.db.transact(work)

    # -- reports ----------------------------------------------------------------------------

    def usage(self, rider: str, now: dt.datetime) -> Usage:
        """The rider's rides in the fiscal year of ``now``: the yearly reset is the fiscal
        year turning (April, JST), with no job to run."""
        year = fiscal_year_of(now)

        def work(db: Connection) -> Usage:
            row = db.execute(select(rider_table).where(rider_table.c.rider_id == rider)).first()
            if row is None:
                raise LedgerError(f"no registration for rider {rider}")
            rides = db.scalar(select(func.count()).select_from(ride_table).where(
                ride_table.c.rider_id == rider, ride_table.c.fiscal_year == year))
            return Usage(rider, year, rides or 0, row.yearly_quota,
                         StopReason(row.stop_reason) if row.stop_reason else None,
                         row.enrolment)

        return self.db.transact(work)

    def ride_count(self) -> int:
        return self.db.transact(lambda db: db.scalar(
            select(func.count()).select_from(ride_table)) or 0)

    def claim_csv(self, company: str, month: str) -> str:
        """The monthly claim of one taxi company (``month`` = ``YYYY-MM``, JST): one line per
        subsidised ride (date, taxi, opaque rider, fare, subsidy, flag) and a total line. No
        name, place or My Number (§3.6)."""
        if len(month) != 7 or month[4] != "-" or not (month[:4] + month[5:]).isdigit():
            raise LedgerError(f"month must be YYYY-MM, not {month!r}")

        def work(db: Connection) -> list:
            return list(db.execute(
                select(ride_table).join(terminal_table,
                                        terminal_table.c.terminal_id == ride_table.c.terminal_id)
                .where(terminal_table.c.company == company,
                       ride_table.c.month == month.replace("-", ""))
                .order_by(ride_table.c.ride_at, ride_table.c.rider_id, ride_table.c.sequence)))

        rows = self.db.transact(work)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["ride_time_jst", "terminal", "rider", "sequence", "riders", "fare",
                         "subsidy", "flag"])
        for row in rows:
            time = utc(row.ride_at).astimezone(JST).strftime("%Y-%m-%d %H:%M")
            writer.writerow([time, row.terminal_id, row.rider_id, row.sequence, row.riders,
                             row.fare, row.subsidy, row.flag or ""])
        writer.writerow(["TOTAL", company, month, len(rows), "",
                         sum(r.fare for r in rows), sum(r.subsidy for r in rows),
                         sum(1 for r in rows if r.flag)])
        return out.getvalue()


def _note_terminal(db: Connection, terminal: str, company: str, now: dt.datetime) -> None:
    """Record the terminal's company (the claim groups by it) and when it last spoke."""
    known = db.scalar(select(terminal_table.c.terminal_id)
                      .where(terminal_table.c.terminal_id == terminal))
    values = {"company": company, "last_sync": naive_utc(now)}
    if known is None:
        db.execute(insert(terminal_table).values(terminal_id=terminal, **values))
    else:
        db.execute(update(terminal_table)
                   .where(terminal_table.c.terminal_id == terminal).values(**values))
