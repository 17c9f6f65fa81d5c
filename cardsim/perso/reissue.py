"""Lifecycle events applied to a card image and the PKI store together.

The card generates its key pairs on chip, so an event that needs a new certificate makes the new
key here, has the PKI issue against it (one store transaction), then writes key and certificates
into the image in one atomic rewrite of ``card.json``. A crash between the two leaves the image
with its previous, now revoked, certificate and the store with an orphan certificate whose key
never reached the card; running the event again revokes the orphan and issues afresh, so a retry
always converges. ``now`` defaults to the PKI's clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ...facts.person import Resident
from ...jpki import lifecycle
from ...jpki.ca import CardCertificates, SimulatorPKI, new_rsa_key
from ...jpki.store import Role
from .. import jpki_ap
from ..jpki_ap import JPKIApplication, certificate_files
from ..storage import CardImageError, CardStore, image_key
from .issue import PKI_CARD_ID, pkcs8_der
from .persona import Persona

_DER = serialization.Encoding.DER
KeyedEvent = Callable[[str, dict[Role, rsa.RSAPublicKey]], lifecycle.EventResult]


def _install(store: CardStore, card_id: str, certificates: CardCertificates,
             new_keys: dict[Role, rsa.RSAPrivateKey]) -> None:
    if store.content.metadata.get(PKI_CARD_ID) != card_id:
        raise CardImageError(f"{store.path} is not card {card_id} of the PKI store")
    files = certificate_files(
        auth=certificates.auth.public_bytes(_DER), auth_ca=certificates.auth_ca.public_bytes(_DER),
        sign_ca=certificates.sign_ca.public_bytes(_DER),
        sign=certificates.sign.public_bytes(_DER) if certificates.sign is not None else None)
    slots = {Role.AUTH: jpki_ap.EF_AUTH_KEY, Role.SIGN: jpki_ap.EF_SIGN_KEY}
    issued = {Role.AUTH: certificates.auth, Role.SIGN: certificates.sign}
    # Only keys that a new certificate certifies go onto the card.
    keys = {image_key(JPKIApplication.NAME, slots[role]): pkcs8_der(key)
            for role, key in new_keys.items()
            if issued[role] is not None and issued[role].public_key() == key.public_key()}
    store.update_content(files=files, keys=keys)


def card_id(card_dir: Path) -> str:
    store = CardStore.open(Path(card_dir))
    try:
        value = store.content.metadata.get(PKI_CARD_ID)
    finally:
        store.close()
    if not value:
        raise CardImageError(f"{card_dir} records no PKI card id (issued before the PKI store?)")
    return str(value)


def _apply(card_dir: Path, roles: tuple[Role, ...], event: KeyedEvent) -> lifecycle.EventResult:
    store = CardStore.open(Path(card_dir))
    try:
        the_id = store.content.metadata.get(PKI_CARD_ID)
        if not the_id:
            raise CardImageError(f"{card_dir} records no PKI card id")
        keys = {role: new_rsa_key() for role in roles}
        result = event(str(the_id), {role: key.public_key() for role, key in keys.items()})
        if result.certificates is not None:
            _install(store, result.card_id, result.certificates, keys)
        return result
    finally:
        store.close()


def _has_sign(pki: SimulatorPKI, card_id: str, *, ever: bool = False) -> bool:
    records = (pki.store.card_certificates(card_id) if ever
               else lifecycle.live_certificates(pki, card_id))
    return any(r.role is Role.SIGN for r in records)


def change_resident(pki: SimulatorPKI, card_dir: Path, resident: Resident,
                    now: dt.datetime | None = None) -> lifecycle.EventResult:
    """Address or name change: a new signing key and certificate on the card; the old signing
    certificate revoked (affiliationChanged); the authentication certificate untouched."""
    def event(the_id: str, keys: dict[Role, rsa.RSAPublicKey]) -> lifecycle.EventResult:
        return lifecycle.change_resident(pki, the_id, resident,
                                         keys[Role.SIGN] if _has_sign(pki, the_id) else None, now)
    return _apply(card_dir, (Role.SIGN,), event)


def renew(pki: SimulatorPKI, card_dir: Path, now: dt.datetime | None = None,
          card_expiry: dt.date | None = None) -> lifecycle.EventResult:
    """Renewal on the same card: new key pairs and certificates; old ones superseded."""
    def event(the_id: str, keys: dict[Role, rsa.RSAPublicKey]) -> lifecycle.EventResult:
        return lifecycle.renew(pki, the_id, keys[Role.AUTH],
                               keys[Role.SIGN] if _has_sign(pki, the_id) else None, now,
                               card_expiry)
    return _apply(card_dir, (Role.AUTH, Role.SIGN), event)


def reissue(pki: SimulatorPKI, card_dir: Path, now: dt.datetime | None = None,
            card_expiry: dt.date | None = None) -> lifecycle.EventResult:
    """Reissue after a loss (the card image standing for the replacement card)."""
    def event(the_id: str, keys: dict[Role, rsa.RSAPublicKey]) -> lifecycle.EventResult:
        return lifecycle.reissue(pki, the_id, keys[Role.AUTH],
                                 keys[Role.SIGN] if _has_sign(pki, the_id, ever=True) else None,
                                 now, card_expiry)
    return _apply(card_dir, (Role.AUTH, Role.SIGN), event)


def replay_history(pki: SimulatorPKI, card_dir: Path, persona: Persona) -> None:
    """Apply the persona's ``history`` to a freshly issued card, event by event, at each
    event's date, through the same functions a municipality's counter would use."""
    the_id = card_id(card_dir)
    resident = persona.resident
    for entry in persona.history:
        when = entry.time
        if entry.event == "renew":
            renew(pki, card_dir, when)
        elif entry.event == "move":
            assert entry.address is not None  # the persona parser requires it
            resident = Resident.from_mapping({**resident.to_mapping(), "address": entry.address})
            change_resident(pki, card_dir, resident, when)
        elif entry.event == "loss":
            lifecycle.report_loss(pki, the_id, when)
        elif entry.event == "found":
            lifecycle.card_found(pki, the_id, when)
        elif entry.event == "reissue":
            reissue(pki, card_dir, when)
        elif entry.event == "death":
            lifecycle.death(pki, the_id, when)
        else:
            raise ValueError(f"unknown lifecycle event {entry.event!r}")
