"""マイタク figures, each beside its baseline in the same run.

* The card's DEBIT (GET CHALLENGE + DEBIT through the in-process simulator reader, the
  free-space transaction included) beside a whole ride at the terminal (reads, signature and
  deny-list checks, the DEBIT, the receipt queued in its SQLite store).
* Sync throughput of ``TERMINALS`` terminals × ``RIDES`` rides each into one ledger, on SQLite
  and on PostgreSQL (a private server from ``apps.common.pgserver``), ``WORKERS`` terminals
  syncing at once; beside plain INSERTs of the same ride rows (200 per transaction, as the
  ledger batches them). The receipts are made with the city's receipt keys (what the cards
  would answer), so the ledger verifies every MAC; the ratio is what verification,
  de-duplication, the stopped-rider and two-taxi checks cost on top of the writes.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import insert

from mynacard.apps.common.db import naive_utc
from mynacard.apps.common.pgserver import PostgresServer, missing_postgres
from mynacard.apps.taxi.card import TaxiCard, install
from mynacard.apps.taxi.keys import CityKeys
from mynacard.apps.taxi.ledger import BATCH, Ledger, ride_datetime, ride_table
from mynacard.apps.taxi.terminal import Terminal, TerminalConfig
from mynacard.cardsim.perso.issue import issue_card
from mynacard.cardsim.perso.issuer_keys import load_or_create_master
from mynacard.cardsim.perso.persona import load_persona
from mynacard.client.applets import CardManager
from mynacard.clock import VirtualClock
from mynacard.facts import taxi
from mynacard.jpki.ca import SimulatorPKI
from mynacard.readers.simulator import SimulatorReader

Row = tuple[str, str, str]
PERSONA = Path(__file__).resolve().parent.parent / "vectors" / "personas" / "kokutou-mikiya.yaml"
CITY = "10201"
START = dt.datetime(2026, 5, 1, 0, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=6)
"""Between two debits of the benchmark card: 240 a day, under its daily quota of 255."""
DEBITS = 200
TERMINALS = int(os.environ.get("TAXI_BENCH_TERMINALS", "80"))
RIDES = int(os.environ.get("TAXI_BENCH_RIDES", "1000"))
PG_RIDES = int(os.environ.get("TAXI_BENCH_PG_RIDES", "250"))
"""PostgreSQL's rides per terminal: the full 80×1,000 takes over 2 minutes on the shared
2-core machine (the row gives the projection), so it is scaled down."""
WORKERS = 4
RIDERS_PER_TERMINAL = 50


def _card(tmp: Path, city: CityKeys, rider_id: bytes) -> Path:
    pki = SimulatorPKI.open(tmp / "pki", now=START - dt.timedelta(days=30))
    try:
        card = tmp / "card"
        issue_card(load_persona(PERSONA, today=START.date()), card, pki,
                   issued_at=START - dt.timedelta(days=1))
    finally:
        pki.store.close()
    # Quotas as large as the layout allows: the benchmark measures the debit, not the caps.
    record = taxi.Eligibility(CITY, rider_id, 1, "20260401", "20270331", 65535, 255, 1000, 500)
    connection = SimulatorReader.for_image(card).connect()
    try:
        manager = CardManager(connection, load_or_create_master(tmp / "pki", create=False))
        manager.open()
        install(manager, city.admin_key(rider_id), city.terminal_master,
                city.receipt_key(rider_id))
        taxi_card = TaxiCard(connection)
        taxi_card.select()
        taxi_card.personalise(city.sign(record), city.admin_key(rider_id))
    finally:
        connection.disconnect()
    return card


def card_rows() -> list[Row]:
    city, terminal_id = CityKeys.generate(), b"TAXI0001"
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        card = _card(tmp, city, b"BENCH001")
        key = city.terminal_key(terminal_id)
        connection = SimulatorReader.for_image(card).connect()
        debits = []
        try:
            taxi_card = TaxiCard(connection)
            taxi_card.select()
            for n in range(DEBITS):
                time_ = (START + n * STEP).astimezone(dt.timezone(dt.timedelta(hours=9)))
                request = taxi.RideRequest(terminal_id, n + 1,
                                           time_.strftime("%Y%m%d%H%M").encode(), 2000, 1)
                began = time.perf_counter()
                taxi_card.debit(request, key)
                debits.append(time.perf_counter() - began)
        finally:
            connection.disconnect()

        clock = VirtualClock(START + DEBITS * STEP)
        config = TerminalConfig(terminal_id, "前橋タクシー", CITY, key, city.public_pem())
        terminal = Terminal(tmp / "terminal.db", config, clock=clock)
        rides = []
        try:
            for _ in range(DEBITS):
                terminal.install_deny_list([], clock())
                connection = SimulatorReader.for_image(card).connect()
                began = time.perf_counter()
                result = terminal.ride([connection], 2000)
                rides.append(time.perf_counter() - began)
                connection.disconnect()
                assert result.subsidy == 1000, result.outcomes
                clock.advance(STEP)
        finally:
            terminal.close()
    debit, ride = statistics.median(debits) * 1e3, statistics.median(rides) * 1e3
    return [("taxi DEBIT on the card (in process, median)", f"{debit:.2f} ms",
             "baseline for the ride below"),
            ("taxi ride at the terminal, one rider (median)", f"{ride:.2f} ms",
             f"{ride / debit:.1f}× the card's DEBIT")]


def _uploads(city: CityKeys, per_terminal: int) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    """Per terminal, its rides as the cards would have answered them: each terminal's own
    riders, one ride an hour per rider, never two taxis for one card."""
    uploads = []
    jst = dt.timezone(dt.timedelta(hours=9))
    for t in range(TERMINALS):
        terminal_id = f"TAXI{t:04d}".encode()
        rides = []
        for n in range(per_terminal):
            rider_id = f"R{t:03d}{n % RIDERS_PER_TERMINAL:04d}".encode()
            sequence = n // RIDERS_PER_TERMINAL + 1
            when = (START + dt.timedelta(hours=n)).astimezone(jst)
            request = taxi.RideRequest(terminal_id, n + 1, when.strftime("%Y%m%d%H%M").encode(),
                                       2000, 1)
            body = taxi.Receipt(sequence, request, 1000, b"").body()
            mac = taxi.receipt_mac(city.receipt_key(rider_id), rider_id, body)
            rides.append((rider_id.hex(), body + mac))
        uploads.append((terminal_id, rides))
    return uploads


def _register(ledger: Ledger) -> None:
    for t in range(TERMINALS):
        for r in range(RIDERS_PER_TERMINAL):
            rider_id = f"R{t:03d}{r:04d}".encode()
            ledger.register(rider_id, f"resident-{t}-{r}", 1, 65535, START)


def _sync_rate(url: str, city: CityKeys, uploads: list) -> float:
    ledger = Ledger(url, city)
    try:
        _register(ledger)
        now = START + dt.timedelta(days=400)
        began = time.perf_counter()
        with ThreadPoolExecutor(WORKERS) as pool:
            outcomes = list(pool.map(
                lambda upload: ledger.sync(upload[0], "前橋タクシー", upload[1], now), uploads))
        elapsed = time.perf_counter() - began
        total = sum(len(rides) for _, rides in uploads)
        assert sum(len(o.accepted) for o in outcomes) == total
        assert ledger.ride_count() == total
    finally:
        ledger.close()
    return total / elapsed


def _insert_rate(url: str, city: CityKeys, uploads: list) -> float:
    ledger = Ledger(url, city)
    now = naive_utc(START + dt.timedelta(days=400))
    rows = []
    for terminal_id, rides in uploads:
        for rider, raw in rides:
            receipt = taxi.Receipt.decode(raw)
            rows.append({
                "rider_id": rider, "sequence": receipt.sequence,
                "terminal_id": terminal_id.decode(),
                "terminal_sequence": receipt.ride.terminal_sequence,
                "ride_at": naive_utc(ride_datetime(receipt.ride.time)),
                "fiscal_year": taxi.fiscal_year(receipt.ride.time),
                "month": receipt.ride.time[:6].decode(), "fare": receipt.ride.fare,
                "riders": 1, "subsidy": receipt.subsidy, "receipt": raw.hex(),
                "received_at": now, "flag": None})
    try:
        began = time.perf_counter()
        for start in range(0, len(rows), BATCH):
            batch = rows[start:start + BATCH]
            ledger.db.transact(lambda db, batch=batch: db.execute(insert(ride_table), batch))
        elapsed = time.perf_counter() - began
    finally:
        ledger.close()
    return len(rows) / elapsed


def _sync_row(name: str, url_for: Callable[[str], str], city: CityKeys,
              per_terminal: int) -> Row:
    uploads = _uploads(city, per_terminal)
    synced = _sync_rate(url_for("sync"), city, uploads)
    inserted = _insert_rate(url_for("insert"), city, uploads)
    total = TERMINALS * per_terminal
    scale = f"{TERMINALS}×{per_terminal:,} rides"
    if per_terminal != RIDES:
        scale += (f" (scaled from {TERMINALS}×{RIDES:,}: projected "
                  f"{TERMINALS * RIDES / synced:.0f} s)")
    return (f"taxi sync {scale}, {WORKERS} terminals at once, {name}",
            f"{synced:,.0f} rides/s ({total / synced:.1f} s)",
            f"{synced / inserted:.2f}× plain INSERTs ({inserted:,.0f}/s)")


def run() -> list[Row]:
    rows = card_rows()
    city = CityKeys.generate()
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(_sync_row("SQLite (WAL)", lambda name: str(Path(tmp) / f"{name}.db"),
                              city, RIDES))
    if missing_postgres():
        rows.append(("taxi sync, PostgreSQL", "not measured", missing_postgres() or ""))
    else:
        with PostgresServer(fsync=True) as server:
            rows.append(_sync_row("PostgreSQL (private server)", server.create_database,
                                  city, min(PG_RIDES, RIDES)))
    return rows


if __name__ == "__main__":
    for row in run():
        print("  ".join(row))
