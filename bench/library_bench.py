"""Library loans per second on SQLite and on PostgreSQL, each beside its baseline in the same
run: plain INSERTs of the same loan rows, one transaction each, through the same driver and
engine settings (WAL + BEGIN IMMEDIATE; SERIALIZABLE). The ratio is what the store's rule
checks (item, member, current loan, limits, overdue, holds) cost on top of the write."""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from mynacard.apps.common.db import naive_utc
from mynacard.apps.common.pgserver import PostgresServer, missing_postgres
from mynacard.apps.library.model import EnrolMethod, LoanRules
from mynacard.apps.library.store import LibraryStore, loan_table

Row = tuple[str, str, str]
NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
LOANS = 150


def _prepare(url: str) -> tuple[LibraryStore, list[str]]:
    # A large loan limit: the benchmark measures the store, not the 10-item rule.
    store = LibraryStore(url, LoanRules(max_loans=LOANS))
    members = [store.link(f"bench:{n:x}", NOW + dt.timedelta(days=900), NOW,
                          method=EnrolMethod.PIN).user_number for n in range(1, 21)]
    for n in range(2 * LOANS):
        store.add_item(f"B{n:06d}", f"book {n}")
    return store, members


def _rates(url: str) -> tuple[float, float]:
    store, members = _prepare(url)
    start = time.perf_counter()
    for n in range(LOANS):
        store.lend(members[n % len(members)], f"B{n:06d}", NOW)
    loans = LOANS / (time.perf_counter() - start)
    due = naive_utc(NOW + dt.timedelta(days=14))
    start = time.perf_counter()
    for n in range(LOANS, 2 * LOANS):
        def write(db, n=n) -> None:  # noqa: ANN001
            db.execute(insert(loan_table).values(
                barcode=f"B{n:06d}", user_number=members[n % len(members)],
                issued_at=naive_utc(NOW), due_at=due, renewals=0))
        store.db.transact(write)
    inserts = LOANS / (time.perf_counter() - start)
    store.close()
    return loans, inserts


def _row(name: str, loans: float, inserts: float) -> Row:
    return (f"library loans, {name}", f"{loans:,.0f} loans/s",
            f"{loans / inserts:.2f}× plain INSERTs ({inserts:,.0f}/s)")


def run() -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(_row("SQLite (WAL, synchronous=FULL)",
                         *_rates(str(Path(tmp) / "library.db"))))
    if missing_postgres():
        rows.append(("library loans, PostgreSQL", "not measured", missing_postgres() or ""))
    else:
        with PostgresServer(fsync=True) as server:
            rows.append(_row("PostgreSQL (private server, SERIALIZABLE)",
                             *_rates(server.create_database("bench"))))
    return rows


if __name__ == "__main__":
    for row in run():
        print("  ".join(row))
