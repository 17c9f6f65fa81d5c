"""The library's store: its tables and every statement on them (SQLAlchemy Core), one
serialised transaction per call, on SQLite or PostgreSQL (``apps.common.db``).

The store enforces the circulation rules inside the transaction that writes, so two counters
acting on the same item or member at once can never both succeed against a stale read.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)

from ..common.db import Database, naive_utc, utc
from .model import (
    ITEM_TYPES,
    CirculationRefused,
    EnrolMethod,
    Hold,
    Item,
    LibraryError,
    Link,
    LinkStatus,
    Loan,
    LoanRules,
    Member,
    Refusal,
    Report,
    UnknownItem,
    UnknownMember,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "library_alembic_version"
USER_NUMBER_PREFIX = "L"

# The tables as the migrations leave them (migrations/versions/): statements are built on these.
metadata = MetaData()
member_table = Table(
    "library_member", metadata,
    Column("user_number", String(16), primary_key=True),
    Column("registered_at", DateTime, nullable=False),
)
link_table = Table(
    "library_link", metadata,
    Column("link_key", String(200), primary_key=True),
    Column("user_number", String(16), ForeignKey("library_member.user_number"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("method", String(16), nullable=False),
    Column("document", String(64)),
    Column("not_after", DateTime, nullable=False),
    Column("linked_at", DateTime, nullable=False),
    Column("card_serial", String(32)),
)
item_table = Table(
    "library_item", metadata,
    Column("barcode", String(32), primary_key=True),
    Column("title", String(500), nullable=False),
    Column("item_type", String(8), nullable=False),
)
loan_table = Table(
    "library_loan", metadata,
    Column("barcode", String(32), ForeignKey("library_item.barcode"), primary_key=True),
    Column("user_number", String(16), ForeignKey("library_member.user_number"), nullable=False),
    Column("issued_at", DateTime, nullable=False),
    Column("due_at", DateTime, nullable=False),
    Column("renewals", Integer, nullable=False),
)
hold_table = Table(
    "library_hold", metadata,
    Column("barcode", String(32), ForeignKey("library_item.barcode"), primary_key=True),
    Column("user_number", String(16), ForeignKey("library_member.user_number"),
           primary_key=True),
    Column("placed_at", DateTime, nullable=False),
    Column("seq", Integer, nullable=False),
)


def _link(row) -> Link:  # noqa: ANN001 - a SQLAlchemy row
    return Link(row.link_key, row.user_number, LinkStatus(row.status), EnrolMethod(row.method),
                row.document, utc(row.not_after), utc(row.linked_at), row.card_serial)


def _loan(row) -> Loan:  # noqa: ANN001
    return Loan(row.barcode, row.user_number, utc(row.issued_at), utc(row.due_at), row.renewals)


def _hold(row) -> Hold:  # noqa: ANN001
    return Hold(row.barcode, row.user_number, utc(row.placed_at))


def _item(db: Connection, barcode: str) -> Item:
    row = db.execute(select(item_table).where(item_table.c.barcode == barcode)).first()
    if row is None:
        raise UnknownItem(f"no item with barcode {barcode}")
    return Item(row.barcode, row.title, row.item_type)


def _require_member(db: Connection, user_number: str) -> None:
    found = db.execute(select(member_table.c.user_number)
                       .where(member_table.c.user_number == user_number)).first()
    if found is None:
        raise UnknownMember(f"no library member {user_number}")


def _loans_of(db: Connection, user_number: str) -> list[Loan]:
    rows = db.execute(select(loan_table).where(loan_table.c.user_number == user_number)
                      .order_by(loan_table.c.due_at, loan_table.c.barcode))
    return [_loan(row) for row in rows]


def _queue(db: Connection, barcode: str) -> list[Hold]:
    rows = db.execute(select(hold_table).where(hold_table.c.barcode == barcode)
                      .order_by(hold_table.c.seq))
    return [_hold(row) for row in rows]


def _current_loan(db: Connection, barcode: str) -> Loan | None:
    row = db.execute(select(loan_table).where(loan_table.c.barcode == barcode)).first()
    return _loan(row) if row is not None else None


def _refuse_if_long_overdue(loans: list[Loan], now: dt.datetime, rules: LoanRules,
                            doing: str) -> None:
    late = [loan for loan in loans if loan.days_overdue(now) >= rules.long_overdue_days]
    if late:
        raise CirculationRefused(
            Refusal.LONG_OVERDUE,
            f"no {doing} while {late[0].barcode} is {late[0].days_overdue(now)} days overdue "
            f"(limit {rules.long_overdue_days}): return it first (there is no fine)")


class LibraryStore:
    """The library database at ``spec`` (a path, ``sqlite:///…`` or ``postgresql://…``),
    migrated to the newest schema when opened."""

    def __init__(self, spec: str | Path, rules: LoanRules | None = None) -> None:
        self.db = Database(spec)
        self.rules = rules or LoanRules()
        self.db.migrate(MIGRATIONS, VERSION_TABLE)

    def close(self) -> None:
        self.db.dispose()

    # -- members and card links -------------------------------------------------------------

    def link(self, link_key: str, not_after: dt.datetime, now: dt.datetime, *,
             method: EnrolMethod, document: str | None = None,
             user_number: str | None = None, card_serial: str | None = None) -> Link:
        """Link a card to a member: a new member when ``user_number`` is None, else that
        member, whose previous card link becomes superseded (a renewed certificate).
        Linking a card that is already linked returns its link unchanged. ``card_serial``:
        the chip the certificate was enrolled on, compared at every tap."""

        def work(db: Connection) -> Link:
            row = db.execute(select(link_table).where(link_table.c.link_key == link_key)).first()
            if row is not None:
                existing = _link(row)
                if user_number not in (None, existing.user_number):
                    raise LibraryError(f"this card is already linked to member "
                                       f"{existing.user_number}")
                if existing.status is LinkStatus.ACTIVE:
                    return existing
            if user_number is None:
                number = self._new_member(db, now)
            else:
                _require_member(db, user_number)
                number = user_number
            db.execute(update(link_table)
                       .where(link_table.c.user_number == number,
                              link_table.c.status == LinkStatus.ACTIVE.value)
                       .values(status=LinkStatus.SUPERSEDED.value))
            values = {"user_number": number, "status": LinkStatus.ACTIVE.value,
                      "method": method.value, "document": document, "card_serial": card_serial,
                      "not_after": naive_utc(not_after), "linked_at": naive_utc(now)}
            if row is None:
                db.execute(insert(link_table).values(link_key=link_key, **values))
            else:
                db.execute(update(link_table).where(link_table.c.link_key == link_key)
                           .values(**values))
            return Link(link_key, number, LinkStatus.ACTIVE, method, document,
                        not_after.astimezone(dt.UTC), now.astimezone(dt.UTC), card_serial)

        return self.db.transact(work)

    def _new_member(self, db: Connection, now: dt.datetime) -> str:
        count = db.execute(select(func.count()).select_from(member_table)).scalar_one()
        number = f"{USER_NUMBER_PREFIX}{count + 1:08d}"
        db.execute(insert(member_table).values(user_number=number,
                                               registered_at=naive_utc(now)))
        return number

    def active_link(self, link_key: str) -> Link | None:
        """The active link of this card, or None (never enrolled, or superseded)."""

        def work(db: Connection) -> Link | None:
            row = db.execute(select(link_table).where(
                link_table.c.link_key == link_key,
                link_table.c.status == LinkStatus.ACTIVE.value)).first()
            return _link(row) if row is not None else None

        return self.db.transact(work)

    def member(self, user_number: str) -> Member:
        def work(db: Connection) -> Member:
            row = db.execute(select(member_table)
                             .where(member_table.c.user_number == user_number)).first()
            if row is None:
                raise UnknownMember(f"no library member {user_number}")
            link_row = db.execute(select(link_table).where(
                link_table.c.user_number == user_number,
                link_table.c.status == LinkStatus.ACTIVE.value)).first()
            holds = db.execute(select(hold_table).where(hold_table.c.user_number == user_number)
                               .order_by(hold_table.c.barcode))
            return Member(user_number, utc(row.registered_at),
                          _link(link_row) if link_row is not None else None,
                          tuple(_loans_of(db, user_number)),
                          tuple(_hold(h) for h in holds))

        return self.db.transact(work)

    def member_numbers(self) -> list[str]:
        def work(db: Connection) -> list[str]:
            return list(db.execute(select(member_table.c.user_number)
                                   .order_by(member_table.c.user_number)).scalars())

        return self.db.transact(work)

    # -- items ----------------------------------------------------------------------------

    def add_item(self, barcode: str, title: str, item_type: str = "book") -> Item:
        if item_type not in ITEM_TYPES:
            raise LibraryError(f"item type must be one of {', '.join(ITEM_TYPES)}")
        if not barcode or len(barcode) > 32:
            raise LibraryError("a barcode is 1 to 32 characters")

        def work(db: Connection) -> Item:
            found = db.execute(select(item_table.c.barcode)
                               .where(item_table.c.barcode == barcode)).first()
            if found is not None:
                raise LibraryError(f"an item with barcode {barcode} already exists")
            db.execute(insert(item_table).values(barcode=barcode, title=title,
                                                 item_type=item_type))
            return Item(barcode, title, item_type)

        return self.db.transact(work)

    def items(self) -> list[tuple[Item, Loan | None, int]]:
        """Every item with its loan (if out) and the length of its hold queue."""

        def work(db: Connection) -> list[tuple[Item, Loan | None, int]]:
            queue = (select(hold_table.c.barcode, func.count().label("holds"))
                     .group_by(hold_table.c.barcode).subquery())
            rows = db.execute(
                select(item_table, loan_table.c.user_number, loan_table.c.issued_at,
                       loan_table.c.due_at, loan_table.c.renewals, queue.c.holds)
                .outerjoin(loan_table, loan_table.c.barcode == item_table.c.barcode)
                .outerjoin(queue, queue.c.barcode == item_table.c.barcode)
                .order_by(item_table.c.barcode))
            return [(Item(r.barcode, r.title, r.item_type),
                     Loan(r.barcode, r.user_number, utc(r.issued_at), utc(r.due_at), r.renewals)
                     if r.user_number is not None else None,
                     r.holds or 0) for r in rows]

        return self.db.transact(work)

    # -- circulation ------------------------------------------------------------------------

    def lend(self, user_number: str, barcode: str, now: dt.datetime) -> Loan:
        rules = self.rules

        def work(db: Connection) -> Loan:
            item = _item(db, barcode)
            _require_member(db, user_number)
            current = _current_loan(db, barcode)
            if current is not None:
                if current.user_number == user_number:
                    raise CirculationRefused(Refusal.ALREADY_BORROWED,
                                             f"{barcode} is already lent to this member")
                raise CirculationRefused(Refusal.ON_LOAN, f"{barcode} is on loan")
            loans = _loans_of(db, user_number)
            _refuse_if_long_overdue(loans, now, rules, "loans")
            if len(loans) >= rules.max_loans:
                raise CirculationRefused(Refusal.TOO_MANY_LOANS,
                                         f"the limit is {rules.max_loans} items at a time")
            if item.item_type == "av":
                av = db.execute(select(func.count()).select_from(loan_table)
                                .join(item_table, item_table.c.barcode == loan_table.c.barcode)
                                .where(loan_table.c.user_number == user_number,
                                       item_table.c.item_type == "av")).scalar_one()
                if av >= rules.max_av_loans:
                    raise CirculationRefused(Refusal.TOO_MANY_AV, f"the limit is "
                                             f"{rules.max_av_loans} audio-visual items")
            queue = _queue(db, barcode)
            if queue and queue[0].user_number != user_number:
                raise CirculationRefused(Refusal.HELD_FOR_ANOTHER,
                                         f"{barcode} is held for another member")
            if queue:
                db.execute(delete(hold_table).where(hold_table.c.barcode == barcode,
                                                    hold_table.c.user_number == user_number))
            loan = Loan(barcode, user_number, now.astimezone(dt.UTC),
                        (now + dt.timedelta(days=rules.loan_days)).astimezone(dt.UTC), 0)
            db.execute(insert(loan_table).values(
                barcode=barcode, user_number=user_number, issued_at=naive_utc(loan.issued_at),
                due_at=naive_utc(loan.due_at), renewals=0))
            return loan

        return self.db.transact(work)

    def give_back(self, barcode: str) -> str | None:
        """Return an item: its loan record is erased (who read it is forgotten, §2.8).
        Answers the member the item is now held for, if any, so staff set it aside."""

        def work(db: Connection) -> str | None:
            _item(db, barcode)
            gone = db.execute(delete(loan_table).where(loan_table.c.barcode == barcode))
            if gone.rowcount == 0:
                raise CirculationRefused(Refusal.NOT_ON_LOAN, f"{barcode} is not on loan")
            queue = _queue(db, barcode)
            return queue[0].user_number if queue else None

        return self.db.transact(work)

    def renew(self, user_number: str, barcode: str, now: dt.datetime) -> Loan:
        rules = self.rules

        def work(db: Connection) -> Loan:
            _item(db, barcode)
            current = _current_loan(db, barcode)
            if current is None:
                raise CirculationRefused(Refusal.NOT_ON_LOAN, f"{barcode} is not on loan")
            if current.user_number != user_number:
                raise CirculationRefused(Refusal.NOT_YOUR_LOAN,
                                         f"{barcode} is not lent to this member")
            if current.renewals >= rules.max_renewals:
                raise CirculationRefused(Refusal.RENEWAL_LIMIT, f"{barcode} was already renewed "
                                         f"{current.renewals} time(s), the limit")
            if _queue(db, barcode):
                raise CirculationRefused(Refusal.RENEWAL_HELD,
                                         f"{barcode} cannot be renewed: another member holds it")
            overdue = [loan for loan in _loans_of(db, user_number) if loan.due_at < now]
            if overdue:
                raise CirculationRefused(Refusal.RENEWAL_OVERDUE,
                                         f"no renewal while {overdue[0].barcode} is overdue")
            due = (now + dt.timedelta(days=rules.renewal_days)).astimezone(dt.UTC)
            db.execute(update(loan_table).where(loan_table.c.barcode == barcode)
                       .values(due_at=naive_utc(due), renewals=current.renewals + 1))
            return Loan(barcode, user_number, current.issued_at, due, current.renewals + 1)

        return self.db.transact(work)

    def hold(self, user_number: str, barcode: str, now: dt.datetime) -> Hold:
        rules = self.rules

        def work(db: Connection) -> Hold:
            _item(db, barcode)
            _require_member(db, user_number)
            current = _current_loan(db, barcode)
            if current is not None and current.user_number == user_number:
                raise CirculationRefused(Refusal.ALREADY_BORROWED,
                                         f"{barcode} is already lent to this member")
            _refuse_if_long_overdue(_loans_of(db, user_number), now, rules, "holds")
            mine = db.execute(select(hold_table.c.barcode)
                              .where(hold_table.c.user_number == user_number)).scalars().all()
            if barcode in mine:
                raise CirculationRefused(Refusal.ALREADY_HELD, f"{barcode} is already held "
                                         "for this member")
            if len(mine) >= rules.max_holds:
                raise CirculationRefused(Refusal.TOO_MANY_HOLDS,
                                         f"the limit is {rules.max_holds} holds")
            last = db.execute(select(func.max(hold_table.c.seq))
                              .where(hold_table.c.barcode == barcode)).scalar_one()
            db.execute(insert(hold_table).values(barcode=barcode, user_number=user_number,
                                                 placed_at=naive_utc(now), seq=(last or 0) + 1))
            return Hold(barcode, user_number, now.astimezone(dt.UTC))

        return self.db.transact(work)

    def report(self, now: dt.datetime) -> Report:
        rules = self.rules

        def work(db: Connection) -> Report:
            def count(table: Table, *where) -> int:  # noqa: ANN002
                return db.execute(select(func.count()).select_from(table).where(*where)
                                  ).scalar_one()

            late = naive_utc(now - dt.timedelta(days=rules.long_overdue_days))
            return Report(count(member_table), count(item_table), count(loan_table),
                          count(loan_table, loan_table.c.due_at < naive_utc(now)),
                          count(loan_table, loan_table.c.due_at <= late),
                          count(hold_table))

        return self.db.transact(work)
