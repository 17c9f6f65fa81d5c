"""Shared fixtures: one simulator PKI and one issued image per persona per test session,
copied for each test so that tests never share card state."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import load_test_persona

from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.perso.issue import issue_card
from mynacard.jpki.ca import SimulatorPKI
from mynacard.readers.simulator import SimulatorReader


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pki")
    SimulatorPKI.open(path)
    return path


@pytest.fixture(scope="session")
def session_pki(pki_dir: Path) -> SimulatorPKI:
    return SimulatorPKI.open(pki_dir)


@pytest.fixture(scope="session")
def card_templates(tmp_path_factory: pytest.TempPathFactory,
                   session_pki: SimulatorPKI) -> Callable[[str], Path]:
    made: dict[str, Path] = {}

    def template(persona_name: str) -> Path:
        if persona_name not in made:
            out = tmp_path_factory.mktemp("templates") / persona_name
            issue_card(load_test_persona(persona_name), out, session_pki)
            made[persona_name] = out
        return made[persona_name]

    return template


@pytest.fixture
def make_card_dir(tmp_path: Path, card_templates: Callable[[str], Path]) -> Callable[..., Path]:
    def make(persona_name: str = "kokutou-mikiya") -> Path:
        target = tmp_path / f"card-{persona_name}"
        shutil.copytree(card_templates(persona_name), target)
        return target

    return make


@pytest.fixture
def card_dir(make_card_dir: Callable[..., Path]) -> Path:
    """A fresh copy of the 黒桐 幹也 card (auth PIN 1234, signing password ABC123)."""
    return make_card_dir()


@pytest.fixture
def card(card_dir: Path) -> Iterator[VirtualCard]:
    opened = VirtualCard.open(card_dir)
    opened.power_on()
    yield opened
    opened.close()


@pytest.fixture
def connection(card: VirtualCard) -> Iterator:
    reader = SimulatorReader(card=card)
    conn = reader.connect()
    yield conn
    conn.disconnect()

