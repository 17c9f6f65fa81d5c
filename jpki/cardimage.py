"""Lifecycle events applied to a card image and the PKI store together.

The card generates its key pairs on chip, so an event that needs a new certificate makes the new
key here, has the PKI issue against it (one store transaction), then writes key and certificates
into the image in one atomic rewrite of ``card.json``. A crash between the two leaves the image
with its previous, now revoked, certificate and the store with an orphan certificate whose key
never reached the card; running the event again revokes the orphan and issues afresh, so a retry
always converges.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..cardsim import jpki_ap
from ..cardsim.issue import PKI_CARD_ID
from ..cardsim.jpki_ap import JPKIApplication, certificate_availability, certificate_ef
from ..cardsim.storage import CardImageError, CardStore
from . import lifecycle
from .ca import CardCertificates, SimulatorPKI, new_rsa_key
from .resident import Resident
from .store import Role

_DER = serialization.Encoding.DER


def _ef(fid: int) -> str:
    return f"{JPKIApplication.NAME}/{fid:04X}"


def _pkcs8(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(_DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class CardImageCertificates:
    """``lifecycle.CardImageHook`` for a card image: certificate EFs and new private keys."""

    def __init__(self, store: CardStore, new_keys: dict[Role, rsa.RSAPrivateKey]) -> None:
        self.store = store
        self.new_keys = new_keys

    def install_certificates(self, card_id: str, certificates: CardCertificates) -> None:
        if self.store.content.metadata.get(PKI_CARD_ID) != card_id:
            raise CardImageError(f"{self.store.path} is not card {card_id} of the PKI store")
        files = {
            _ef(jpki_ap.EF_AUTH_CERT): certificate_ef(certificates.auth.public_bytes(_DER)),
            _ef(jpki_ap.EF_AUTH_CA_CERT): certificate_ef(certificates.auth_ca.public_bytes(_DER)),
            _ef(jpki_ap.EF_SIGN_CA_CERT): certificate_ef(certificates.sign_ca.public_bytes(_DER)),
            _ef(jpki_ap.EF_CERT_AVAILABILITY): certificate_availability(
                certificates.sign is not None),
            _ef(jpki_ap.EF_SIGN_CERT): certificate_ef(certificates.sign.public_bytes(_DER))
            if certificates.sign is not None else b"",
        }
        slots = {Role.AUTH: _ef(jpki_ap.EF_AUTH_KEY), Role.SIGN: _ef(jpki_ap.EF_SIGN_KEY)}
        issued = {Role.AUTH: certificates.auth, Role.SIGN: certificates.sign}
        # Only keys that a new certificate certifies go onto the card.
        keys = {slots[role]: _pkcs8(key) for role, key in self.new_keys.items()
                if issued[role] is not None and issued[role].public_key() == key.public_key()}
        self.store.update_content(files=files, keys=keys)


def card_id(card_dir: Path) -> str:
    store = CardStore.open(Path(card_dir))
    try:
        value = store.content.metadata.get(PKI_CARD_ID)
    finally:
        store.close()
    if not value:
        raise CardImageError(f"{card_dir} records no PKI card id (issued before the PKI store?)")
    return str(value)


def _apply(card_dir: Path, roles: tuple[Role, ...], event) -> lifecycle.EventResult:
    store = CardStore.open(Path(card_dir))
    try:
        the_id = store.content.metadata.get(PKI_CARD_ID)
        if not the_id:
            raise CardImageError(f"{card_dir} records no PKI card id")
        keys = {role: new_rsa_key() for role in roles}
        result = event(str(the_id), {role: key.public_key() for role, key in keys.items()})
        return lifecycle.install(CardImageCertificates(store, keys), result)
    finally:
        store.close()


def change_resident(pki: SimulatorPKI, card_dir: Path, resident: Resident,
                    now: dt.datetime) -> lifecycle.EventResult:
    """Address or name change: a new signing key and certificate on the card; the old signing
    certificate revoked (affiliationChanged); the authentication certificate untouched."""
    def event(the_id, keys):
        has_sign = any(r.role is Role.SIGN for r in lifecycle.live_certificates(pki, the_id))
        return lifecycle.change_resident(pki, the_id, resident,
                                         keys[Role.SIGN] if has_sign else None, now)
    return _apply(card_dir, (Role.SIGN,), event)


def renew(pki: SimulatorPKI, card_dir: Path, now: dt.datetime,
          card_expiry: dt.date | None = None) -> lifecycle.EventResult:
    """Renewal on the same card: new key pairs and certificates; old ones superseded."""
    def event(the_id, keys):
        has_sign = any(r.role is Role.SIGN for r in lifecycle.live_certificates(pki, the_id))
        return lifecycle.renew(pki, the_id, keys[Role.AUTH],
                               keys[Role.SIGN] if has_sign else None, now, card_expiry)
    return _apply(card_dir, (Role.AUTH, Role.SIGN), event)


def reissue(pki: SimulatorPKI, card_dir: Path, now: dt.datetime,
            card_expiry: dt.date | None = None) -> lifecycle.EventResult:
    """Reissue after a loss (the card image standing for the replacement card)."""
    def event(the_id, keys):
        had_sign = any(r.role is Role.SIGN for r in pki.store.card_certificates(the_id))
        return lifecycle.reissue(pki, the_id, keys[Role.AUTH],
                                 keys[Role.SIGN] if had_sign else None, now, card_expiry)
    return _apply(card_dir, (Role.AUTH, Role.SIGN), event)
