"""Fixtures of the shelter tests: the session PKI's CV roots, a desk on a fresh roster, and
the 照合番号B of any test persona computed from its card face."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import TEST_TODAY, load_test_persona

from mynacard.apps.shelter.service import ShelterDesk
from mynacard.apps.shelter.store import RosterStore
from mynacard.client.records import load_trust_anchors
from mynacard.clock import VirtualClock
from mynacard.facts.person import code_b

DESK_TIME = dt.datetime.combine(TEST_TODAY, dt.time(1, 0), tzinfo=dt.UTC)  # 10:00 JST


@pytest.fixture(scope="session")
def anchors(pki_dir: Path, card_templates: Callable[[str], Path]) -> dict:
    card_templates("kokutou-mikiya")  # issuing creates the CV hierarchy beside the PKI
    return load_trust_anchors(pki_dir / "cvc")


def persona_code_b(name: str) -> str:
    persona = load_test_persona(name)
    return code_b(persona.resident.birth_date, persona.card_expiry.year, persona.security_code)


@pytest.fixture
def clock() -> VirtualClock:
    clock = VirtualClock()
    clock.freeze(DESK_TIME)
    return clock


@pytest.fixture
def roster(tmp_path: Path) -> Iterator[RosterStore]:
    store = RosterStore(tmp_path / "roster.db", "desk-1")
    store.add_shelter("S1", "清瀬第一小学校", DESK_TIME, municipality_code="132217")
    store.add_shelter("S2", "清瀬市民センター", DESK_TIME, municipality_code="132217")
    yield store
    store.close()


@pytest.fixture
def desk(roster: RosterStore, anchors: dict, clock: VirtualClock) -> ShelterDesk:
    return ShelterDesk(roster, "S1", anchors, clock=clock)
