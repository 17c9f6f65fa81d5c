"""Fixtures of the shelter tests: the session PKI's CV roots, a desk on a fresh roster, and
the CV roots."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from shelter_helpers import DESK_TIME

from mynacard.apps.shelter.service import ShelterDesk
from mynacard.apps.shelter.store import RosterStore
from mynacard.client.records import load_trust_anchors
from mynacard.clock import VirtualClock


@pytest.fixture(scope="session")
def anchors(pki_dir: Path, card_templates: Callable[[str], Path]) -> dict:
    card_templates("kokutou-mikiya")  # issuing creates the CV hierarchy beside the PKI
    return load_trust_anchors(pki_dir / "cvc")


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
