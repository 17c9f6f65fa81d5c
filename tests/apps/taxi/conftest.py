"""マイタク fixtures: city keys, cards enrolled over the issuer channel, a provisioned terminal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from mynacard.apps.taxi.card import TaxiCard, install
from mynacard.apps.taxi.keys import CityKeys
from mynacard.apps.taxi.terminal import Terminal, TerminalConfig
from mynacard.cardsim.perso.issuer_keys import load_or_create_master
from mynacard.client.applets import CardManager
from mynacard.clock import VirtualClock
from mynacard.facts import taxi
from mynacard.readers.simulator import SimulatorReader

CITY = "10201"  # 前橋市
TERMINAL_ID = b"TAXI0001"
NOW = dt.datetime(2026, 5, 1, 1, 0, tzinfo=dt.UTC)  # 10:00 JST
RECORD = taxi.Eligibility(CITY, b"R0000001", 1, "20260401", "20270331", 70, 2, 1000, 500)


@pytest.fixture(scope="session")
def city() -> CityKeys:
    return CityKeys.generate()


@pytest.fixture
def master(pki_dir: Path, card_templates) -> bytes:
    card_templates("kokutou-mikiya")
    return load_or_create_master(pki_dir, create=False)


@pytest.fixture
def enrolled(make_card_dir: Callable[..., Path], master: bytes, city: CityKeys, tmp_path: Path
             ) -> Callable[..., Path]:
    """A card image with the taxi applet, personalised with ``RECORD`` for ``rider``."""
    count = iter(range(1, 100))

    def make(rider: bytes | None = None, keys: CityKeys | None = None, **changes) -> Path:
        keys = keys or city
        record = replace(RECORD, rider_id=rider or f"R{next(count):07d}".encode(), **changes)
        source = make_card_dir()
        image = source.rename(tmp_path / f"card-{record.rider_id.decode()}")
        connection = SimulatorReader.for_image(image).connect()
        try:
            manager = CardManager(connection, master)
            manager.open()
            install(manager, keys.admin_key(record.rider_id), keys.terminal_master,
                    keys.receipt_key(record.rider_id))
            taxi_card = TaxiCard(connection)
            taxi_card.select()
            taxi_card.personalise(keys.sign(record), keys.admin_key(record.rider_id))
        finally:
            connection.disconnect()
        return image

    return make


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(NOW)


@pytest.fixture
def config(city: CityKeys) -> TerminalConfig:
    return TerminalConfig(TERMINAL_ID, "前橋タクシー", CITY, city.terminal_key(TERMINAL_ID),
                          city.public_pem())


@pytest.fixture
def terminal(tmp_path: Path, config: TerminalConfig, clock: VirtualClock) -> Terminal:
    made = Terminal(tmp_path / "terminal.db", config, clock=clock)
    made.install_deny_list([], NOW - dt.timedelta(days=1))
    yield made
    made.close()
