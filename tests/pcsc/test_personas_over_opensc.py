"""Every hard-case persona served through pcscd + vpcd, as OpenSC sees it: a real card of each
kind is a JPKI card OpenSC recognises, whose authentication certificate it reads byte for byte
and whose PIN counters it reports as the card holds them (0 for a blocked or 顔認証 PIN)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from helpers import TEST_TODAY, der_object, load_test_persona

from mynacard.cardsim.perso.issue import issue_card
from mynacard.cardsim.storage import image_key
from mynacard.clock import VirtualClock
from mynacard.facts.jpki import EF_AUTH_CERT
from mynacard.jpki.ca import SimulatorPKI

from .conftest import PcscSandbox, copy_image
from .test_opensc_interop import tries_left

pytestmark = pytest.mark.xdist_group("pcscd")

NOW = dt.datetime.combine(TEST_TODAY, dt.time(3, 0), dt.UTC)
EXPECTED_TRIES = {
    # persona: [auth PIN, signing password] as OpenSC's --list-pins reports them
    "face-auth": [0, 0],
    "blocked-auth-pin": [0, 5],
    "renewed": [3, 5],
    "moved": [3, 5],
    "lost-card": [3, 5],
    "deceased": [3, 5],
    "sato-sora-child": [3, 5],
    "cloned-certificate": [3, 5],
    "long-address": [3, 5],
    "expiring-soon": [3, 5],
}


@pytest.fixture(scope="module")
def persona_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hard-personas")
    pki = SimulatorPKI.open(root / "pki", clock=VirtualClock(NOW))
    try:
        return {name: issue_card(load_test_persona(name), root / name, pki)
                for name in EXPECTED_TRIES}
    finally:
        pki.store.close()


@pytest.fixture
def served(pcsc: PcscSandbox) -> Iterator[Callable[[Path], None]]:
    slot = pcsc.slots[0]

    def serve(image: Path) -> None:
        slot.remove()
        slot.insert(copy_image(image, pcsc.workdir / f"served-{image.name}"))

    yield serve
    slot.remove()
    slot.insert(pcsc.fresh_image(0))


@pytest.mark.parametrize("persona", sorted(EXPECTED_TRIES))
def test_opensc_reads_each_hard_persona_as_a_jpki_card(
        pcsc: PcscSandbox, served, persona_images: dict[str, Path], persona: str) -> None:
    served(persona_images[persona])
    assert pcsc.opensc("opensc-tool", "--reader", "0", "--name").stdout.strip() == "jpki"
    pem = pcsc.opensc("pkcs15-tool", "--reader", "0", "--read-certificate", "01").stdout
    read = x509.load_pem_x509_certificate(pem.encode())
    card = pcsc.slots[0].card
    expected = der_object(card.store.file(image_key("jpki", EF_AUTH_CERT)))
    assert read.public_bytes(serialization.Encoding.DER) == expected
    listing = pcsc.opensc("pkcs15-tool", "--reader", "0", "--list-pins").stdout
    assert tries_left(listing) == EXPECTED_TRIES[persona]
