"""The library store on SQLite and on PostgreSQL: migrations, circulation rules, erasure on
return, re-linking, and two counters lending the same item at the same moment (real
processes released together by a barrier)."""

from __future__ import annotations

import datetime as dt
import multiprocessing

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, insert

from mynacard.apps.common.db import Database, naive_utc
from mynacard.apps.library.model import CirculationRefused, EnrolMethod, LinkStatus, Refusal
from mynacard.apps.library.store import MIGRATIONS, VERSION_TABLE, LibraryStore, member_table

NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def member(store: LibraryStore, key: str) -> str:
    return store.link(key, NOW + 900 * DAY, NOW, method=EnrolMethod.PIN).user_number


def test_reopening_keeps_data_and_schema(db_url: str) -> None:
    store = LibraryStore(db_url)
    number = member(store, "aa:01")
    store.add_item("B1", "t")
    store.lend(number, "B1", NOW)
    store.close()
    again = LibraryStore(db_url)          # the migration finds the schema at head: no-op
    assert [loan.barcode for loan in again.member(number).loans] == ["B1"]
    again.close()


def test_return_erases_the_loan_and_relink_moves_the_member(db_url: str) -> None:
    store = LibraryStore(db_url)
    number = member(store, "aa:01")
    store.add_item("B1", "t")
    store.lend(number, "B1", NOW)
    store.give_back("B1")
    assert store.items()[0][1] is None and store.member(number).loans == ()
    with pytest.raises(CirculationRefused) as refused:
        store.give_back("B1")
    assert refused.value.reason is Refusal.NOT_ON_LOAN
    moved = store.link("aa:02", NOW + 900 * DAY, NOW, method=EnrolMethod.PIN,
                       user_number=number)
    assert moved.user_number == number and store.active_link("aa:01") is None
    assert store.member(number).link == moved and moved.status is LinkStatus.ACTIVE
    store.close()


def test_hold_queue_in_order_and_overdue_threshold(db_url: str) -> None:
    store = LibraryStore(db_url)
    first, second, third = (member(store, f"aa:0{n}") for n in (1, 2, 3))
    store.add_item("B1", "t")
    store.add_item("B2", "t")
    store.lend(first, "B1", NOW)
    store.hold(second, "B1", NOW)
    store.hold(third, "B1", NOW)          # same instant: the queue keeps arrival order
    assert store.give_back("B1") == second
    with pytest.raises(CirculationRefused):
        store.lend(third, "B1", NOW)
    store.lend(second, "B1", NOW)
    assert store.items()[0][2] == 1
    late = NOW + (14 + 14) * DAY
    store.lend(second, "B2", late)        # 14 days late: not yet blocked
    store.give_back("B2")
    with pytest.raises(CirculationRefused) as refused:
        store.lend(second, "B2", late + DAY)
    assert refused.value.reason is Refusal.LONG_OVERDUE
    store.close()


def _counter(url: str, user_number: str, barcode: str, barrier, results) -> None:  # noqa: ANN001
    store = LibraryStore(url)
    barrier.wait()
    try:
        store.lend(user_number, barcode, NOW)
        results.put((user_number, "lent"))
    except CirculationRefused as refused:
        results.put((user_number, refused.reason.value))
    finally:
        store.close()


def test_two_counters_lending_one_item_at_once_make_one_loan(db_url: str) -> None:
    store = LibraryStore(db_url)
    numbers = [member(store, "aa:01"), member(store, "aa:02")]
    rounds = 6
    for n in range(rounds):
        store.add_item(f"B{n}", "t")
    context = multiprocessing.get_context("fork")
    for n in range(rounds):
        barrier, results = context.Barrier(2), context.Queue()
        counters = [context.Process(target=_counter,
                                    args=(db_url, number, f"B{n}", barrier, results))
                    for number in numbers]
        for process in counters:
            process.start()
        for process in counters:
            process.join(60)
            assert process.exitcode == 0
        outcomes = sorted(results.get(timeout=5)[1] for _ in counters)
        assert outcomes == ["lent", "on-loan"]
    loans = [loan for _, loan, _ in store.items() if loan]
    assert len(loans) == rounds
    assert sum(len(store.member(number).loans) for number in numbers) == rounds
    store.close()


def test_links_made_before_the_card_serial_revision_are_kept(db_url: str) -> None:
    """A database at revision 0001 (no card serial) upgrades in place: its links survive with
    no serial, and new links record theirs."""
    old = Database(db_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["version_table"] = VERSION_TABLE

    def to_0001(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(insert(member_table).values(user_number="L00000001",
                                                       registered_at=naive_utc(NOW)))
        connection.exec_driver_sql(
            "INSERT INTO library_link (link_key, user_number, status, method, not_after, "
            "linked_at) VALUES ('aa:01', 'L00000001', 'active', 'pin', "
            "'2030-01-01 00:00:00', '2026-01-01 00:00:00')")

    old.transact(to_0001)
    old.dispose()
    store = LibraryStore(db_url)
    kept = store.active_link("aa:01")
    assert kept is not None and kept.user_number == "L00000001" and kept.card_serial is None
    new = store.link("bb:02", NOW + 900 * DAY, NOW, method=EnrolMethod.PIN,
                     card_serial="400000012719843")
    assert store.active_link("bb:02") == new and new.card_serial == "400000012719843"
    store.close()
