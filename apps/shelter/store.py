"""The shelter roster: its tables and every statement on them (SQLAlchemy Core on
``apps.common.db``: a SQLite file on each shelter device, SQLite or PostgreSQL at headquarters).

Each device numbers everything it creates from one counter (``shelter_device.next_seq``): stay
events are keyed ``(device, seq)``, persons and households get ids ``<device>-P<seq>`` and
``<device>-H<seq>``, so records made offline on different devices never collide and a merge
is a set union (:meth:`RosterStore.merge`). Events are append-only; person, household and
shelter rows carry ``updated_at`` and the merge keeps the newest version (ties: the larger
content), which makes merging idempotent and independent of order.

Persons are linked across shelters and devices by ``dedup_key`` (name, birth date, sex), never
by the My Number: a person's presence is the latest check-in or check-out of any record with
that key, which is how a check-in twice is recognised and a move between shelters is seen.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    update,
)

from ..common.db import Database, naive_utc, utc
from .model import (
    CONSENT_FIELDS,
    NEEDS,
    CheckInResult,
    EventKind,
    Facts,
    Household,
    Person,
    Shelter,
    ShelterError,
    Source,
    StayEvent,
    UnknownRecord,
    age_band,
    dedup_key,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "shelter_alembic_version"
MAX_DEVICE_ID = 64

metadata = MetaData()


def _synced() -> list[Column]:
    return [Column("origin", String(64), nullable=False),
            Column("updated_at", DateTime, nullable=False)]


device_table = Table("shelter_device", metadata,
                     Column("device_id", String(64), primary_key=True),
                     Column("next_seq", Integer, nullable=False))
shelter_table = Table("shelter_shelter", metadata,
                      Column("id", String(64), primary_key=True),
                      Column("name", String(200), nullable=False),
                      Column("municipality_code", String(6), nullable=False),
                      Column("capacity", Integer), *_synced())
household_table = Table("shelter_household", metadata,
                        Column("id", String(80), primary_key=True),
                        Column("shelter_id", String(64), nullable=False),
                        Column("head_person_id", String(80)),
                        Column("notes", String(1000), nullable=False), *_synced())
person_table = Table("shelter_person", metadata,
                     Column("id", String(80), primary_key=True),
                     Column("household_id", String(80), nullable=False),
                     Column("name", String(200), nullable=False),
                     Column("name_kana", String(200), nullable=False),
                     Column("birth_date", Date),
                     Column("sex", String(1), nullable=False),
                     Column("address_card", String(400), nullable=False),
                     Column("address_current", String(400), nullable=False),
                     Column("source", String(16), nullable=False),
                     Column("card_verified", Boolean, nullable=False),
                     Column("needs", String(200), nullable=False),
                     Column("consent", String(100), nullable=False),
                     Column("dedup_key", String(64), nullable=False),
                     Column("created_at", DateTime, nullable=False), *_synced())
event_table = Table("shelter_event", metadata,
                    Column("device_id", String(64), primary_key=True),
                    Column("seq", Integer, primary_key=True),
                    Column("person_id", String(80), nullable=False),
                    Column("shelter_id", String(64), nullable=False),
                    Column("kind", String(16), nullable=False),
                    Column("at", DateTime, nullable=False),
                    Column("staff", String(100), nullable=False),
                    Column("from_shelter", String(64)),
                    Column("note", String(200), nullable=False))
link_table = Table("shelter_link", metadata,
                   Column("link_key", String(200), primary_key=True),
                   Column("person_id", String(80), nullable=False),
                   Column("linked_at", DateTime, nullable=False))
my_number_table = Table("shelter_my_number", metadata,
                        Column("person_id", String(80), primary_key=True),
                        Column("my_number", String(12), nullable=False),
                        Column("basis", String(200), nullable=False),
                        Column("read_at", DateTime, nullable=False))

SYNCED_TABLES = (shelter_table, household_table, person_table)
"""Rows a bundle carries besides the events (never links or My Numbers)."""


def _person(row: Any) -> Person:
    return Person(row.id, row.household_id, row.name, row.name_kana, row.birth_date, row.sex,
                  row.address_card, row.address_current, Source(row.source),
                  bool(row.card_verified), tuple(filter(None, row.needs.split(","))),
                  tuple(filter(None, row.consent.split(","))), row.dedup_key,
                  utc(row.created_at))


def _event(row: Any) -> StayEvent:
    return StayEvent(row.device_id, row.seq, row.person_id, row.shelter_id, EventKind(row.kind),
                     utc(row.at), row.staff, row.from_shelter, row.note)


def _check_codes(values: tuple[str, ...], allowed: dict[str, str], what: str) -> str:
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ShelterError(f"unknown {what}: {', '.join(unknown)} (one of {', '.join(allowed)})")
    return ",".join(sorted(set(values)))


@dataclass(frozen=True, slots=True)
class Presence:
    """Where a person (all records sharing a dedup key) stands: the latest stay event."""

    event: StayEvent

    @property
    def present(self) -> bool:
        return self.event.kind is EventKind.CHECK_IN


@dataclass(frozen=True, slots=True)
class RosterRow:
    shelter_id: str
    household_id: str
    person: Person
    present: bool
    since: dt.datetime
    moved_from: str | None


@dataclass(frozen=True, slots=True)
class Counts:
    shelter_id: str
    present: int
    households: int
    by_age_band: dict[str, int]
    by_need: dict[str, int]
    unverified: int
    day_visits: int


@dataclass(frozen=True, slots=True)
class MergeResult:
    events_added: int
    rows_changed: int


class RosterStore:
    """The roster at ``spec`` (a path, ``sqlite:///…`` or ``postgresql://…``) as seen by
    device ``device_id``, migrated to the newest schema when opened."""

    def __init__(self, spec: str | Path, device_id: str) -> None:
        if not device_id or len(device_id) > MAX_DEVICE_ID or not device_id.replace(
                "-", "").replace("_", "").isalnum() or not device_id.isascii():
            raise ShelterError("a device id is 1 to 64 ASCII letters, digits, - or _")
        self.device_id = device_id
        self.db = Database(spec)
        self.db.migrate(MIGRATIONS, VERSION_TABLE)

    def close(self) -> None:
        self.db.dispose()

    def _next(self, db: Connection) -> int:
        row = db.execute(select(device_table.c.next_seq)
                         .where(device_table.c.device_id == self.device_id)).first()
        if row is None:
            db.execute(insert(device_table).values(device_id=self.device_id, next_seq=2))
            return 1
        db.execute(update(device_table).where(device_table.c.device_id == self.device_id)
                   .values(next_seq=row.next_seq + 1))
        return row.next_seq

    # -- shelters, households, persons ----------------------------------------------------

    def add_shelter(self, shelter_id: str, name: str, now: dt.datetime, *,
                    municipality_code: str = "", capacity: int | None = None) -> Shelter:
        if not shelter_id or len(shelter_id) > 64 or not name.strip():
            raise ShelterError("a shelter needs an id (at most 64 characters) and a name")

        def work(db: Connection) -> Shelter:
            values = {"name": name.strip(), "municipality_code": municipality_code,
                      "capacity": capacity, "origin": self.device_id,
                      "updated_at": naive_utc(now)}
            found = db.execute(select(shelter_table.c.id)
                               .where(shelter_table.c.id == shelter_id)).first()
            if found is None:
                db.execute(insert(shelter_table).values(id=shelter_id, **values))
            else:
                db.execute(update(shelter_table).where(shelter_table.c.id == shelter_id)
                           .values(**values))
            return Shelter(shelter_id, name.strip(), municipality_code, capacity)

        return self.db.transact(work)

    def shelters(self) -> list[Shelter]:
        def work(db: Connection) -> list[Shelter]:
            return [Shelter(r.id, r.name, r.municipality_code, r.capacity)
                    for r in db.execute(select(shelter_table).order_by(shelter_table.c.id))]

        return self.db.transact(work)

    def register(self, facts: Facts, shelter_id: str, now: dt.datetime, *,
                 household_id: str | None = None, name_kana: str = "",
                 address_current: str = "", needs: tuple[str, ...] = (),
                 consent: tuple[str, ...] = ()) -> Person:
        """The roster's record of this person: the existing one when someone with the same
        dedup key is known (from this or any synced device), else a new one — in
        ``household_id``, or in a household opened now with this person at its head."""
        needs_text = _check_codes(needs, NEEDS, "need")
        consent_text = _check_codes(consent, CONSENT_FIELDS, "consent field")
        key = dedup_key(facts.name, facts.birth_date, facts.sex)

        def work(db: Connection) -> Person:
            _require_shelter(db, shelter_id)
            existing = db.execute(select(person_table).where(person_table.c.dedup_key == key)
                                  .order_by(person_table.c.created_at, person_table.c.id)
                                  ).first()
            if existing is not None:
                return _person(existing)
            if household_id is not None:
                _require_household(db, household_id)
                household = household_id
            else:
                household = f"{self.device_id}-H{self._next(db)}"
            person_id = f"{self.device_id}-P{self._next(db)}"
            if household_id is None:
                db.execute(insert(household_table).values(
                    id=household, shelter_id=shelter_id, head_person_id=person_id, notes="",
                    origin=self.device_id, updated_at=naive_utc(now)))
            db.execute(insert(person_table).values(
                id=person_id, household_id=household, name=facts.name, name_kana=name_kana,
                birth_date=facts.birth_date, sex=facts.sex, address_card=facts.address,
                address_current=address_current, source=facts.source.value,
                card_verified=facts.verified, needs=needs_text, consent=consent_text,
                dedup_key=key, created_at=naive_utc(now), origin=self.device_id,
                updated_at=naive_utc(now)))
            return _person(db.execute(select(person_table)
                                      .where(person_table.c.id == person_id)).one())

        return self.db.transact(work)

    def update_person(self, person_id: str, now: dt.datetime, *,
                      address_current: str | None = None, needs: tuple[str, ...] | None = None,
                      consent: tuple[str, ...] | None = None,
                      household_id: str | None = None) -> Person:
        values: dict[str, Any] = {"updated_at": naive_utc(now), "origin": self.device_id}
        if address_current is not None:
            values["address_current"] = address_current
        if needs is not None:
            values["needs"] = _check_codes(needs, NEEDS, "need")
        if consent is not None:
            values["consent"] = _check_codes(consent, CONSENT_FIELDS, "consent field")

        def work(db: Connection) -> Person:
            _require_person(db, person_id)
            if household_id is not None:
                _require_household(db, household_id)
                values["household_id"] = household_id
            db.execute(update(person_table).where(person_table.c.id == person_id)
                       .values(**values))
            return _person(db.execute(select(person_table)
                                      .where(person_table.c.id == person_id)).one())

        return self.db.transact(work)

    def person(self, person_id: str) -> Person:
        return self.db.transact(lambda db: _person(_require_person(db, person_id)))

    def household(self, household_id: str) -> Household:
        def work(db: Connection) -> Household:
            row = _require_household(db, household_id)
            members = db.execute(select(person_table)
                                 .where(person_table.c.household_id == household_id)
                                 .order_by(person_table.c.created_at, person_table.c.id))
            return Household(row.id, row.shelter_id, row.head_person_id, row.notes,
                             tuple(_person(m) for m in members))

        return self.db.transact(work)

    # -- stay events --------------------------------------------------------------------

    def presence(self, person_id: str) -> Presence | None:
        return self.db.transact(lambda db: _presence(db, _require_person(db, person_id)))

    def check_in(self, person_id: str, shelter_id: str, now: dt.datetime,
                 staff: str = "") -> CheckInResult:
        """Check in; a person already checked in here is shown, not recorded twice; one last
        checked in at another shelter is recorded as a movement from there."""

        def work(db: Connection) -> CheckInResult:
            _require_shelter(db, shelter_id)
            row = _require_person(db, person_id)
            standing = _presence(db, row)
            if standing and standing.present and standing.event.shelter_id == shelter_id:
                return CheckInResult(_person(row), None, standing.event.at)
            moved_from = (standing.event.shelter_id if standing and standing.present else None)
            event = self._append(db, person_id, shelter_id, EventKind.CHECK_IN, now, staff,
                                 from_shelter=moved_from)
            return CheckInResult(_person(row), event)

        return self.db.transact(work)

    def check_out(self, person_id: str, shelter_id: str, now: dt.datetime,
                  staff: str = "") -> StayEvent:
        def work(db: Connection) -> StayEvent:
            standing = _presence(db, _require_person(db, person_id))
            if not (standing and standing.present and standing.event.shelter_id == shelter_id):
                raise ShelterError("この方はこの避難所に入所していません (not checked in here)")
            return self._append(db, person_id, shelter_id, EventKind.CHECK_OUT, now, staff)

        return self.db.transact(work)

    def record_visit(self, person_id: str, shelter_id: str, kind: EventKind, now: dt.datetime,
                     staff: str = "", note: str = "") -> StayEvent:
        """A day visit or a supply handed out: recorded every time, presence unchanged."""
        if kind not in (EventKind.DAY_VISIT, EventKind.SUPPLY):
            raise ShelterError("use check_in / check_out for stays")

        def work(db: Connection) -> StayEvent:
            _require_shelter(db, shelter_id)
            _require_person(db, person_id)
            return self._append(db, person_id, shelter_id, kind, now, staff, note=note[:200])

        return self.db.transact(work)

    def _append(self, db: Connection, person_id: str, shelter_id: str, kind: EventKind,
                now: dt.datetime, staff: str, *, from_shelter: str | None = None,
                note: str = "") -> StayEvent:
        event = StayEvent(self.device_id, self._next(db), person_id, shelter_id, kind,
                          now.astimezone(dt.UTC), staff[:100], from_shelter, note)
        db.execute(insert(event_table).values(
            device_id=event.device_id, seq=event.seq, person_id=person_id,
            shelter_id=shelter_id, kind=kind.value, at=naive_utc(now), staff=event.staff,
            from_shelter=from_shelter, note=note))
        return event

    def events(self) -> list[StayEvent]:
        def work(db: Connection) -> list[StayEvent]:
            return [_event(r) for r in db.execute(select(event_table).order_by(
                event_table.c.device_id, event_table.c.seq))]

        return self.db.transact(work)

    # -- tap links and the My Number (both local to this device) --------------------------

    def link(self, link_key: str, person_id: str, now: dt.datetime) -> None:
        def work(db: Connection) -> None:
            _require_person(db, person_id)
            found = db.execute(select(link_table).where(link_table.c.link_key == link_key)
                               ).first()
            if found is None:
                db.execute(insert(link_table).values(link_key=link_key, person_id=person_id,
                                                     linked_at=naive_utc(now)))
            else:
                db.execute(update(link_table).where(link_table.c.link_key == link_key)
                           .values(person_id=person_id, linked_at=naive_utc(now)))

        self.db.transact(work)

    def linked_person(self, link_key: str) -> Person | None:
        def work(db: Connection) -> Person | None:
            row = db.execute(select(person_table).join(
                link_table, link_table.c.person_id == person_table.c.id)
                .where(link_table.c.link_key == link_key)).first()
            return _person(row) if row is not None else None

        return self.db.transact(work)

    def keep_my_number(self, person_id: str, my_number: str, basis: str,
                       now: dt.datetime) -> None:
        """Municipal disaster mode: the number in its own table, with the legal basis."""

        def work(db: Connection) -> None:
            _require_person(db, person_id)
            db.execute(my_number_table.delete().where(my_number_table.c.person_id == person_id))
            db.execute(insert(my_number_table).values(person_id=person_id, my_number=my_number,
                                                      basis=basis, read_at=naive_utc(now)))

        self.db.transact(work)

    def my_number(self, person_id: str) -> str | None:
        return self.db.transact(lambda db: db.execute(
            select(my_number_table.c.my_number)
            .where(my_number_table.c.person_id == person_id)).scalar())

    # -- roster, counts ---------------------------------------------------------------------

    def roster(self, shelter_id: str | None = None) -> list[RosterRow]:
        """One row per person (records merged by dedup key) who ever stayed: where their
        latest check-in or check-out was, in which household, since when."""

        def work(db: Connection) -> list[RosterRow]:
            persons = {r.id: _person(r) for r in db.execute(select(person_table))}
            stays = [_event(r) for r in db.execute(select(event_table).where(
                event_table.c.kind.in_([EventKind.CHECK_IN.value, EventKind.CHECK_OUT.value])))]
            latest: dict[str, StayEvent] = {}
            last_in: dict[str, StayEvent] = {}
            for event in sorted(stays, key=_order):
                person = persons.get(event.person_id)
                if person is not None:
                    latest[person.dedup_key] = event
                    if event.kind is EventKind.CHECK_IN:
                        last_in[person.dedup_key] = event
            rows = []
            for key, event in latest.items():
                person = persons[event.person_id]
                if shelter_id is None or event.shelter_id == shelter_id:
                    rows.append(RosterRow(event.shelter_id, person.household_id, person,
                                          event.kind is EventKind.CHECK_IN, event.at,
                                          last_in[key].from_shelter if key in last_in
                                          else None))
            return sorted(rows, key=lambda r: (r.shelter_id, r.household_id,
                                               r.person.created_at, r.person.id))

        return self.db.transact(work)

    def counts(self, shelter_id: str, today: dt.date) -> Counts:
        present = [r for r in self.roster(shelter_id) if r.present]
        bands: dict[str, int] = defaultdict(int)
        needs: dict[str, int] = {need: 0 for need in NEEDS}
        for row in present:
            bands[age_band(row.person.birth_date, today)] += 1
            for need in row.person.needs:
                needs[need] += 1

        def visits(db: Connection) -> int:
            return len(db.execute(select(event_table.c.seq).where(
                event_table.c.shelter_id == shelter_id,
                event_table.c.kind == EventKind.DAY_VISIT.value)).all())

        return Counts(shelter_id, len(present), len({r.household_id for r in present}),
                      dict(bands), needs, sum(not r.person.card_verified for r in present),
                      self.db.transact(visits))

    # -- sync ---------------------------------------------------------------------------------

    def own_records(self) -> dict[str, list[dict[str, Any]]]:
        """Everything this device made (the content of its bundle): shelters, households,
        persons (last changed here) and its events. Never tap links, never My Numbers."""

        def work(db: Connection) -> dict[str, list[dict[str, Any]]]:
            out = {table.name: [_jsonable(r._asdict()) for r in db.execute(
                select(table).where(table.c.origin == self.device_id).order_by(table.c.id))]
                for table in SYNCED_TABLES}
            out[event_table.name] = [_jsonable(r._asdict()) for r in db.execute(
                select(event_table).where(event_table.c.device_id == self.device_id)
                .order_by(event_table.c.seq))]
            return out

        return self.db.transact(work)

    def merge(self, records: dict[str, list[dict[str, Any]]]) -> MergeResult:
        """Union another device's records into this roster: events by (device, seq),
        other rows newest-wins. Merging the same records again changes nothing."""
        tables = {t.name: t for t in (*SYNCED_TABLES, event_table)}
        unknown = set(records) - set(tables)
        if unknown:
            raise ShelterError(f"bundle has unknown tables: {', '.join(sorted(unknown))}")

        def work(db: Connection) -> MergeResult:
            changed = 0
            for table in SYNCED_TABLES:
                for raw in records.get(table.name, []):
                    row = _from_json(table, raw)
                    current = db.execute(select(table).where(table.c.id == row["id"])).first()
                    if current is None:
                        db.execute(insert(table).values(**row))
                        changed += 1
                    elif _version(row) > _version(current._asdict()):
                        db.execute(update(table).where(table.c.id == row["id"]).values(**row))
                        changed += 1
            known = defaultdict(set)
            for device, seq in db.execute(select(event_table.c.device_id, event_table.c.seq)):
                known[device].add(seq)
            fresh = []
            for raw in records.get(event_table.name, []):
                row = _from_json(event_table, raw)
                if row["seq"] not in known[row["device_id"]]:
                    known[row["device_id"]].add(row["seq"])
                    fresh.append(row)
            if fresh:
                db.execute(insert(event_table), fresh)
            return MergeResult(len(fresh), changed)

        return self.db.transact(work)


def _order(event: StayEvent) -> tuple[dt.datetime, str, int]:
    return (event.at, event.device_id, event.seq)


def _presence(db: Connection, person_row: Any) -> Presence | None:
    rows = db.execute(select(event_table).join(
        person_table, person_table.c.id == event_table.c.person_id).where(
        person_table.c.dedup_key == person_row.dedup_key,
        event_table.c.kind.in_([EventKind.CHECK_IN.value, EventKind.CHECK_OUT.value]))
        .order_by(event_table.c.at.desc(), event_table.c.device_id.desc(),
                  event_table.c.seq.desc()).limit(1)).first()
    return Presence(_event(rows)) if rows is not None else None


def _require_shelter(db: Connection, shelter_id: str) -> Any:
    row = db.execute(select(shelter_table).where(shelter_table.c.id == shelter_id)).first()
    if row is None:
        raise UnknownRecord(f"no shelter {shelter_id!r} on this device: add it first")
    return row


def _require_household(db: Connection, household_id: str) -> Any:
    row = db.execute(select(household_table)
                     .where(household_table.c.id == household_id)).first()
    if row is None:
        raise UnknownRecord(f"no household {household_id!r}")
    return row


def _require_person(db: Connection, person_id: str) -> Any:
    row = db.execute(select(person_table).where(person_table.c.id == person_id)).first()
    if row is None:
        raise UnknownRecord(f"no person {person_id!r}")
    return row


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """A row as JSON values: datetimes as naive-UTC ISO strings, dates as ISO dates."""
    out = {}
    for key, value in row.items():
        if isinstance(value, dt.datetime):
            value = naive_utc(utc(value)).isoformat()
        elif isinstance(value, dt.date):
            value = value.isoformat()
        out[key] = value
    return out


def _from_json(table: Table, raw: dict[str, Any]) -> dict[str, Any]:
    if set(raw) != set(table.c.keys()):
        raise ShelterError(f"bundle row of {table.name} has the wrong columns")
    row = dict(raw)
    try:
        for column in table.c:
            value = row[column.name]
            if value is None:
                continue
            if isinstance(column.type, DateTime):
                row[column.name] = dt.datetime.fromisoformat(value)
            elif isinstance(column.type, Date):
                row[column.name] = dt.date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ShelterError(f"bundle row of {table.name}: {exc}") from None
    return row


def _version(row: dict[str, Any]) -> tuple[str, str]:
    """Newest wins; equal times are ordered by content so every device picks the same."""
    stamp = row["updated_at"]
    stamp = stamp.isoformat() if isinstance(stamp, dt.datetime) else str(stamp)
    return stamp, json.dumps(_jsonable(row), sort_keys=True, ensure_ascii=False)
