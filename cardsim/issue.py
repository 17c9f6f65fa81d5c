"""Card issuance: a persona in, a complete card image out.

Keys are generated per card (as the real card generates them on chip), the
certificates come from the simulator PKI, and the image is written all at once.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cardsim import jpki_ap
from cardsim.jpki_ap import JPKIApplication, TokenInfo, certificate_availability, certificate_ef
from cardsim.persona import Persona
from cardsim.pin import AUTH_PIN, SIGN_PASSWORD
from cardsim.storage import CardStore, ImageContent
from jpki.ca import SimulatorPKI, new_rsa_key

PKI_CARD_ID = "pki_card_id"
"""Image metadata key: the card's id in the PKI store (jpki.cardimage uses it)."""


def _der(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def jpki_content(persona: Persona, pki: SimulatorPKI,
                 issued_at: dt.datetime, card_id: str | None = None,
                 ) -> tuple[dict[str, bytes], dict[str, bytes], dict[str, bytes], dict[str, int]]:
    """(files, keys, pins, counter limits) of the JPKI-AP for one card; the PKI store records
    the certificates under ``card_id``."""
    name = JPKIApplication.NAME

    def ef(fid: int) -> str:
        return f"{name}/{fid:04X}"

    auth_key = new_rsa_key()
    sign_key = new_rsa_key() if persona.gets_sign_certificate else None
    certs = pki.issue_card_certificates(
        persona.resident, auth_key.public_key(),
        sign_key.public_key() if sign_key else None, issued_at, persona.card_expiry,
        card_id=card_id)
    der = serialization.Encoding.DER
    files = {
        ef(jpki_ap.EF_AUTH_CERT): certificate_ef(certs.auth.public_bytes(der)),
        ef(jpki_ap.EF_AUTH_CA_CERT): certificate_ef(certs.auth_ca.public_bytes(der)),
        ef(jpki_ap.EF_SIGN_CA_CERT): certificate_ef(certs.sign_ca.public_bytes(der)),
        ef(jpki_ap.EF_TOKEN_INFO): TokenInfo().encode(),
        ef(jpki_ap.EF_CERT_AVAILABILITY): certificate_availability(certs.sign is not None),
        ef(jpki_ap.EF_SIGN_CERT): certificate_ef(certs.sign.public_bytes(der)) if certs.sign
        else b"",
    }
    keys = {ef(jpki_ap.EF_AUTH_KEY): _der(auth_key)}
    if sign_key is not None:
        keys[ef(jpki_ap.EF_SIGN_KEY)] = _der(sign_key)
    pins = {ef(jpki_ap.EF_AUTH_PIN): persona.pins.auth.encode(),
            ef(jpki_ap.EF_SIGN_PIN): persona.pins.sign.encode()}
    limits = {ef(jpki_ap.EF_AUTH_PIN): AUTH_PIN.max_tries,
              ef(jpki_ap.EF_SIGN_PIN): SIGN_PASSWORD.max_tries}
    return files, keys, pins, limits


def issue_card(persona: Persona, out: Path, pki: SimulatorPKI,
               issued_at: dt.datetime | None = None) -> Path:
    """Write a new card image for ``persona`` into ``out`` (which must be absent or empty)."""
    issued_at = issued_at or dt.datetime.combine(persona.issued, dt.time(9, 0), dt.UTC)
    # The PKI store knows the card by this id; later lifecycle events find it in the image.
    card_id = secrets.token_hex(8)
    files, keys, pins, limits = jpki_content(persona, pki, issued_at, card_id)
    content = ImageContent(
        atr=persona.atr, files=files, keys=keys, pins=pins, counter_max=limits,
        metadata={"issued": persona.issued.isoformat(),
                  "card_expiry": persona.card_expiry.isoformat(),
                  "holder": persona.resident.name, PKI_CARD_ID: card_id})
    CardStore.create(Path(out), content)
    return Path(out)
