"""A terminal syncing to the ledger over HTTP: real cards ridden offline, the upload, the
deny list pushed back (a move-out fed to the ledger stops the card in the taxi), a stale
terminal made usable again by a sync, the claim, and a tablet that cannot upload as another."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CITY, NOW

from mynacard.apps.taxi.card import Reason, Refusal
from mynacard.apps.taxi.keys import CityKeys
from mynacard.apps.taxi.ledger import Ledger
from mynacard.apps.taxi.server import LedgerServer, SyncError, sync_terminal
from mynacard.apps.taxi.terminal import Terminal, TerminalConfig
from mynacard.cli import main
from mynacard.clock import VirtualClock
from mynacard.readers.simulator import SimulatorReader


@pytest.fixture
def served(tmp_path: Path, city: CityKeys, clock: VirtualClock) -> Iterator[tuple[str, Ledger]]:
    ledger = Ledger(tmp_path / "ledger.db", city)
    server = LedgerServer("127.0.0.1", 0, ledger, clock=clock)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.url, ledger
    server.shutdown()
    server.server_close()
    ledger.close()


def ride(terminal: Terminal, image: Path, fare: int = 3000):  # noqa: ANN201
    connection = SimulatorReader.for_image(image).connect()
    try:
        return terminal.ride([connection], fare)
    finally:
        connection.disconnect()


def test_ride_sync_stop_and_claim(served, terminal: Terminal, enrolled, city: CityKeys,
                                  clock: VirtualClock, tmp_path: Path,
                                  config: TerminalConfig) -> None:
    url, ledger = served
    alone, mover = enrolled(b"R0000001"), enrolled(b"R0000002")
    ledger.register(b"R0000001", "resident-1", 1, 70, NOW - dt.timedelta(days=30))
    ledger.register(b"R0000002", "resident-2", 1, 70, NOW - dt.timedelta(days=30))
    assert ride(terminal, alone).subsidy == 1000
    clock.advance(dt.timedelta(minutes=30))
    assert ride(terminal, mover, 1200).subsidy == 600

    report = sync_terminal(terminal, url)
    assert (report.uploaded, report.accepted, report.duplicates, report.deny) == (2, 2, 0, 0)
    assert terminal.queued(unsynced_only=True) == []
    assert sync_terminal(terminal, url).uploaded == 0          # nothing left to send

    # The resident-record feed says R0000002's resident moved out; the next sync pushes it.
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps([{"event": "move-out", "resident": "resident-2",
                                 "at": (NOW + dt.timedelta(hours=1)).isoformat()}]))
    keys = tmp_path / "city"
    city.save(keys)
    runner = CliRunner()
    fed = runner.invoke(main, ["app", "taxi", "resident-feed", "--keys", str(keys),
                               "--ledger-db", str(tmp_path / "ledger.db"), str(feed)])
    assert fed.exit_code == 0, fed.output
    assert f"resident-2: {b'R0000002'.hex()} stopped" in fed.output

    # A week without sync: the terminal refuses to run; a sync makes it usable again, and
    # the pushed list now stops the mover.
    clock.advance(dt.timedelta(days=8))
    with pytest.raises(Refusal) as stale:
        ride(terminal, alone)
    assert stale.value.reason is Reason.STALE_DENY_LIST
    config_file = tmp_path / "taxi1.json"
    config_file.write_text(config.to_json())
    synced = runner.invoke(main, ["app", "taxi", "sync", "--config", str(config_file),
                                  "--db", str(tmp_path / "terminal.db"), "--ledger", url,
                                  "--json"], obj={"taxi_clock": clock})
    assert synced.exit_code == 0, synced.output
    assert json.loads(synced.output)["deny"] == 1
    refused = ride(terminal, mover)
    assert [o.refusal.reason for o in refused.outcomes] == [Reason.STOPPED]
    assert ride(terminal, alone).subsidy == 1000

    claim = runner.invoke(main, ["app", "taxi", "claim", "--keys", str(keys), "--ledger-db",
                                 str(tmp_path / "ledger.db"), "--company", config.company,
                                 "--month", "2026-05"])
    rows = list(csv.reader(io.StringIO(claim.output)))
    assert rows[-1][:7] == ["TOTAL", config.company, "2026-05", "2", "", "4200", "1600"]


def test_a_tablet_cannot_upload_as_another(served, tmp_path: Path, city: CityKeys,
                                           clock: VirtualClock) -> None:
    url, _ = served
    impostor = TerminalConfig(b"TAXI0009", "偽タクシー", CITY, b"\x00" * 16, city.public_pem())
    terminal = Terminal(tmp_path / "impostor.db", impostor, clock=clock)
    with pytest.raises(SyncError, match="403"):
        sync_terminal(terminal, url)
    with pytest.raises(SyncError, match="cannot reach"):
        sync_terminal(terminal, "http://127.0.0.1:9")
    terminal.close()
