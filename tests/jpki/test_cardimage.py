"""Card image and PKI store stay consistent through lifecycle events."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.perso import reissue as cardimage
from mynacard.cardsim.perso.issue import PKI_CARD_ID, issue_card
from mynacard.cardsim.perso.persona import load_persona
from mynacard.cardsim.storage import CardImageError, CardStore
from mynacard.client.jpki import JPKIClient, JPKIKey
from mynacard.jpki import lifecycle
from mynacard.jpki.store import Role, Status
from mynacard.readers.simulator import SimulatorReader

PERSONAS = Path(__file__).resolve().parents[2] / "vectors" / "personas"
T0 = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def _image_certificates(card_dir: Path) -> dict[str, x509.Certificate | None]:
    store = CardStore.open(card_dir)
    try:
        out = {}
        for role, fid in (("auth", "000A"), ("sign", "0001")):
            ef = store.file(f"jpki/{fid}") or b""
            out[role] = (x509.load_der_x509_certificate(ef[:4 + int.from_bytes(ef[2:4])])
                         if ef else None)
        return out
    finally:
        store.close()


@pytest.fixture
def issued(pki, tmp_path):
    persona = load_persona(PERSONAS / "kokutou-mikiya.yaml", today=dt.date(2026, 11, 23))
    card_dir = issue_card(persona, tmp_path / "card", pki, issued_at=T0 + HOUR)
    return persona, card_dir


def test_issuance_records_the_card_in_the_store(pki, issued):
    _, card_dir = issued
    the_id = cardimage.card_id(card_dir)
    records = {r.role: r.certificate for r in pki.store.card_certificates(the_id)}
    image = _image_certificates(card_dir)
    assert records == {Role.AUTH: image["auth"], Role.SIGN: image["sign"]}


def test_address_change_updates_image_and_store_together(pki, issued):
    persona, card_dir = issued
    before = _image_certificates(card_dir)
    moved = dataclasses.replace(persona.resident, address="東京都清瀬市下宿一丁目1番1号")
    result = cardimage.change_resident(pki, card_dir, moved, T0 + 2 * HOUR)

    after = _image_certificates(card_dir)
    assert after["auth"] == before["auth"]
    assert after["sign"] == result.certificates.sign != before["sign"]
    the_id = cardimage.card_id(card_dir)
    live = {r.role: r.certificate for r in lifecycle.live_certificates(pki, the_id)}
    assert live == {Role.AUTH: after["auth"], Role.SIGN: after["sign"]}
    old = pki.store.certificate(before["sign"].serial_number, "sign")
    assert (old.status, old.reason) == (Status.REVOKED, x509.ReasonFlags.affiliation_changed)

    # The card signs with the new key, which the new certificate certifies.
    card = VirtualCard.open(card_dir)
    card.power_on()
    try:
        client = JPKIClient(SimulatorReader(card=card).connect())
        signature = client.sign(JPKIKey.SIGN, b"moved house", persona.pins.sign)
    finally:
        card.close()
    after["sign"].public_key().verify(signature, b"moved house", padding.PKCS1v15(),
                                      hashes.SHA256())


def test_renewal_replaces_both_keys_on_the_card(pki, issued):
    persona, card_dir = issued
    before = _image_certificates(card_dir)
    cardimage.renew(pki, card_dir, T0 + 2 * HOUR)
    after = _image_certificates(card_dir)
    assert after["auth"].public_key() != before["auth"].public_key()
    assert after["sign"].public_key() != before["sign"].public_key()
    card = VirtualCard.open(card_dir)
    card.power_on()
    try:
        signature = JPKIClient(SimulatorReader(card=card).connect()).sign(
            JPKIKey.AUTH, b"renewed", persona.pins.auth)
    finally:
        card.close()
    after["auth"].public_key().verify(signature, b"renewed", padding.PKCS1v15(), hashes.SHA256())


def test_an_image_from_another_store_is_refused(pki, issued, tmp_path):
    _, card_dir = issued
    store = CardStore.open(card_dir)
    try:
        store.update_content(metadata={PKI_CARD_ID: "not-in-this-store"})
    finally:
        store.close()
    with pytest.raises(lifecycle.LifecycleError):
        cardimage.change_resident(pki, card_dir, issued[0].resident, T0 + 2 * HOUR)
    store = CardStore.open(card_dir)
    try:
        store.update_content(metadata={PKI_CARD_ID: ""})
    finally:
        store.close()
    with pytest.raises(CardImageError):
        cardimage.card_id(card_dir)
