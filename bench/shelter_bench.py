"""避難所受付 (issue 13): app time per check-in on the default path, and merging 20 devices.

**Check-in** (goal ≤ 50 ms): one desk on a SQLite roster, the kokutou-mikiya card in the
in-process simulator reader. One check-in is what the staff page does after the card face is
typed: ``ShelterDesk.read_code_b`` (照合番号B validated locally, VERIFY, the 4 facts, the
integrity chain and the CV certificate checked, the chip's challenge–response) then
``check_in`` (one transaction writing the stay event). Between check-ins the person is checked
out (not timed), so every check-in writes. "card" is the time inside
``CardConnection.transmit_raw`` (the simulator's APDU handling, with its RSA signature for the
chip's proof); the rest is the host: chain verification, parsing, the roster.

**Merge**: 20 device logs of 2,000 stay events each (100 persons and households per device,
check-in/check-out alternating) merged into an empty headquarters roster, one
``RosterStore.merge`` per device (dedup by (device, seq), newest-wins rows), beside a plain
INSERT of the same rows into the same tables through the same engine, one transaction per
device. Both on SQLite (WAL, synchronous=FULL).

    python bench/shelter_bench.py
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert
from timing import TimedConnection

from mynacard.apps.shelter.service import ShelterDesk
from mynacard.apps.shelter.store import (
    SYNCED_TABLES,
    RosterStore,
    _from_json,
    event_table,
    household_table,
    person_table,
)
from mynacard.cardsim.perso.issue import issue_card
from mynacard.cardsim.perso.persona import load_persona
from mynacard.client.records import load_trust_anchors
from mynacard.clock import VirtualClock
from mynacard.facts.person import code_b
from mynacard.jpki.ca import SimulatorPKI
from mynacard.readers.simulator import SimulatorReader

ROOT = Path(__file__).resolve().parent.parent

Row = tuple[str, str, str]

PERSONA = ROOT / "vectors" / "personas" / "kokutou-mikiya.yaml"
NOW = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)
CHECK_INS = 40
DEVICES = 20
EVENTS_PER_DEVICE = 2_000
PERSONS_PER_DEVICE = 100


def check_in_rows(tmp: Path) -> list[Row]:
    pki = SimulatorPKI.open(tmp / "pki", now=NOW - dt.timedelta(days=2))
    persona = load_persona(PERSONA, today=NOW.date())
    card_dir = issue_card(persona, tmp / "card", pki)
    pki.store.close()
    anchors = load_trust_anchors(tmp / "pki" / "cvc")
    code = code_b(persona.resident.birth_date, persona.card_expiry.year, persona.security_code)
    clock = VirtualClock(NOW)
    store = RosterStore(tmp / "roster.db", "desk-1")
    store.add_shelter("S1", "清瀬第一小学校", NOW)
    desk = ShelterDesk(store, "S1", anchors, clock=clock)
    totals, cards = [], []
    with SimulatorReader.for_image(card_dir).connect() as inner:
        conn = TimedConnection(inner)
        for _ in range(CHECK_INS + 1):     # the first warms caches and is dropped
            clock.advance(dt.timedelta(minutes=1))
            conn.seconds = 0.0
            start = time.perf_counter()
            result = desk.check_in(desk.read_code_b(conn, code))
            totals.append(time.perf_counter() - start)
            cards.append(conn.seconds)
            assert result.event is not None
            clock.advance(dt.timedelta(minutes=1))
            desk.check_out(result.person.id)
    store.close()
    total, card = statistics.median(totals[1:]), statistics.median(cards[1:])
    return [("shelter check-in, default path (照合番号B, in-process simulator)",
             f"{total * 1000:.1f} ms median",
             f"card {card / total:.0%} ({card * 1000:.1f} ms), host {1 - card / total:.0%}; "
             f"goal ≤ 50 ms")]


def device_log(device: str) -> dict[str, list[dict[str, Any]]]:
    """What ``own_records`` of a busy device would hold, in its JSON form."""
    at = NOW.replace(tzinfo=None)
    stamp = at.isoformat()
    households, persons, events = [], [], []
    for n in range(PERSONS_PER_DEVICE):
        households.append({"id": f"{device}-H{n}", "shelter_id": "S1",
                           "head_person_id": f"{device}-P{n}", "notes": "", "origin": device,
                           "updated_at": stamp})
        persons.append({"id": f"{device}-P{n}", "household_id": f"{device}-H{n}",
                        "name": f"避難者 {device} {n}", "name_kana": "", "birth_date": None,
                        "sex": "9", "address_card": "東京都清瀬市中里５丁目",
                        "address_current": "", "source": "manual", "card_verified": False,
                        "needs": "", "consent": "", "dedup_key": f"{device}:{n:060d}",
                        "created_at": stamp, "origin": device, "updated_at": stamp})
    for seq in range(1, EVENTS_PER_DEVICE + 1):
        events.append({"device_id": device, "seq": seq,
                       "person_id": f"{device}-P{seq % PERSONS_PER_DEVICE}",
                       "shelter_id": "S1",
                       "kind": "check_in" if (seq // PERSONS_PER_DEVICE) % 2 == 0
                       else "check_out",
                       "at": (at + dt.timedelta(seconds=seq)).isoformat(), "staff": "",
                       "from_shelter": None, "note": ""})
    return {"shelter_shelter": [], household_table.name: households,
            person_table.name: persons, event_table.name: events}


def merge_rows(tmp: Path) -> list[Row]:
    logs = [device_log(f"dev-{d:02d}") for d in range(DEVICES)]
    hq = RosterStore(tmp / "hq.db", "hq")
    start = time.perf_counter()
    for log in logs:
        hq.merge(log)
    merged = time.perf_counter() - start
    assert len(hq.events()) == DEVICES * EVENTS_PER_DEVICE
    hq.close()

    plain = RosterStore(tmp / "plain.db", "hq")
    tables = {t.name: t for t in (*SYNCED_TABLES, event_table)}
    start = time.perf_counter()
    for log in logs:
        def write(db: Connection, log: dict[str, list[dict[str, Any]]] = log) -> None:
            for name, rows in log.items():
                if rows:
                    db.execute(insert(tables[name]), [_from_json(tables[name], r)
                                                      for r in rows])
        plain.db.transact(write)
    inserted = time.perf_counter() - start
    plain.close()
    total = DEVICES * EVENTS_PER_DEVICE
    return [(f"shelter HQ merge, {DEVICES} devices × {EVENTS_PER_DEVICE:,} events (SQLite)",
             f"{merged:.2f} s ({total / merged:,.0f} events/s)",
             f"{merged / inserted:.2f}× a plain INSERT of the same rows ({inserted:.2f} s)")]


def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        return check_in_rows(Path(tmp)) + merge_rows(Path(tmp))


if __name__ == "__main__":
    for row in run():
        print("  ".join(row))
