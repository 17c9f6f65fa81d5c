"""Card lifecycle events and their consequences on certificates (facts §12).

Each event is one store transaction. Reason codes follow what relying parties see downstream:

==============  ============================================================  ====================
event           certificates                                                  reason
==============  ============================================================  ====================
renew           both replaced                                                 superseded
address / name  signing revoked and replaced; authentication untouched        affiliationChanged
loss            both suspended                                                certificateHold
card found      held certificates revoked (a card's hold is never lifted)     superseded
death           both revoked                                                  cessationOfOperation
user request    the chosen certificates revoked                               unspecified
key compromise  the chosen certificates revoked, with an invalidity date      keyCompromise
unwritten card  both revoked, card closed (its image could not be written)    cessationOfOperation
expiry          nothing revoked; expired entries drop off later CRLs          (none)
==============  ============================================================  ====================

``release_hold`` exists for the smartphone authentication certificate, whose suspension the
holder may lift (facts §14); it produces a removeFromCRL entry in the next delta CRL.

Every ``now`` defaults to the PKI's clock (``SimulatorPKI.clock``); pass one to override it.

Keys come from the card: an event that needs a new certificate takes the card's new public key
and returns the card's new certificate set; ``cardsim.perso.reissue`` writes it into the image.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from ..facts.person import Resident
from .ca import CardCertificates, SimulatorPKI
from .profile import AUTH_CA, SIGN_CA, CAKind, certificate_expiry
from .store import CertificateRecord, Role, Status, StoreError, serial_key

ROLE_KIND: dict[Role, CAKind] = {Role.AUTH: AUTH_CA, Role.SIGN: SIGN_CA}


class LifecycleError(StoreError):
    """The event does not apply to the card in its current state."""


@dataclass(frozen=True, slots=True)
class EventResult:
    """What an event changed: certificates whose status changed, and the card's new set."""

    card_id: str
    changed: tuple[CertificateRecord, ...]
    certificates: CardCertificates | None


@dataclass(frozen=True, slots=True)
class Card:
    card_id: str
    resident: Resident
    card_expiry: dt.date
    state: str


def card(pki: SimulatorPKI, card_id: str) -> Card:
    rows = pki.store.query("SELECT resident_json, card_expiry, state FROM card WHERE card_id = ?",
                           (card_id,))
    if not rows:
        raise LifecycleError(f"no card {card_id!r} in the PKI store")
    return Card(card_id, Resident.from_json(rows[0][0]), dt.date.fromisoformat(rows[0][1]),
                rows[0][2])


def live_certificates(pki: SimulatorPKI, card_id: str,
                      roles: Iterable[Role] = (Role.AUTH, Role.SIGN)) -> list[CertificateRecord]:
    """The card's certificates that are neither revoked nor expired (held ones included)."""
    wanted = set(roles)
    return [r for r in pki.store.card_certificates(card_id)
            if r.role in wanted and r.status in (Status.GOOD, Status.HOLD, Status.RELEASED)]


def _issue(pki: SimulatorPKI, db, card_id: str, resident: Resident, role: Role,
           key: rsa.RSAPublicKey, issued: dt.datetime, card_expiry: dt.date) -> x509.Certificate:
    not_after = certificate_expiry(issued.date(), resident.birth_date, card_expiry)
    build = pki.build_auth if role is Role.AUTH else pki.build_sign
    ca, cert = build(resident, key, issued, not_after)
    pki.store.add_certificate(db, ca.kind.key, ca.generation, role, card_id, cert)
    return cert


def _card_set(pki: SimulatorPKI, card_id: str) -> CardCertificates:
    """The card's current certificates: the newest live one per role."""
    newest: dict[Role, CertificateRecord] = {}
    for record in live_certificates(pki, card_id):
        if (record.role not in newest or record.certificate.not_valid_before_utc
                >= newest[record.role].certificate.not_valid_before_utc):
            newest[record.role] = record
    if Role.AUTH not in newest:
        raise LifecycleError(f"card {card_id} has no live authentication certificate")
    auth = newest[Role.AUTH]
    sign = newest.get(Role.SIGN)
    sign_ca = pki.ca(SIGN_CA, sign.generation) if sign else pki.sign_ca
    return CardCertificates(auth.certificate, sign.certificate if sign else None,
                            pki.ca(AUTH_CA, auth.generation).certificate,
                            sign_ca.certificate, card_id)


def _revoke(pki: SimulatorPKI, db, records: Iterable[CertificateRecord], status: Status,
            reason: x509.ReasonFlags, when: dt.datetime,
            invalidity_date: dt.datetime | None = None) -> tuple[CertificateRecord, ...]:
    changed = []
    for record in records:
        pki.store.set_status(db, record, status, reason, when, invalidity_date)
        changed.append(record)
    return tuple(changed)


def _set_card_state(db, card_id: str, state: str) -> None:
    db.execute("UPDATE card SET state = ? WHERE card_id = ?", (state, card_id))


def issue_card(pki: SimulatorPKI, resident: Resident, auth_key: rsa.RSAPublicKey,
               sign_key: rsa.RSAPublicKey | None, issued: dt.datetime, card_expiry: dt.date,
               *, card_id: str | None = None,
               accept: Callable[[CardCertificates], None] | None = None) -> CardCertificates:
    """A new card's certificates (``sign_key`` None for under-15s), recorded with the card.

    ``accept`` sees the certificates before the transaction commits; whatever it raises rolls
    the issuance back (issuance checks there that each certificate fits its card EF)."""
    card_id = card_id or secrets.token_hex(8)
    with pki.store.transaction() as db:
        if db.execute("SELECT 1 FROM card WHERE card_id = ?", (card_id,)).fetchone():
            raise LifecycleError(f"card {card_id!r} already exists")
        db.execute("INSERT INTO card(card_id, resident_json, card_expiry, state) VALUES "
                   "(?, ?, ?, 'active')", (card_id, resident.to_json(),
                                           card_expiry.isoformat()))
        auth = _issue(pki, db, card_id, resident, Role.AUTH, auth_key, issued, card_expiry)
        sign = (None if sign_key is None else
                _issue(pki, db, card_id, resident, Role.SIGN, sign_key, issued, card_expiry))
        certificates = CardCertificates(auth, sign, pki.ca_at(AUTH_CA, issued).certificate,
                                        pki.ca_at(SIGN_CA, issued).certificate, card_id)
        if accept is not None:
            accept(certificates)
    return certificates


def abandon_issuance(pki: SimulatorPKI, card_id: str, now: dt.datetime) -> EventResult:
    """The card just issued never came to exist (its image could not be written): every
    certificate revoked as cessationOfOperation and the card closed, so no certificate of a
    card nobody holds stays good."""
    with pki.store.transaction() as db:
        card(pki, card_id)
        changed = _revoke(pki, db, live_certificates(pki, card_id), Status.REVOKED,
                          x509.ReasonFlags.cessation_of_operation, now)
        _set_card_state(db, card_id, "closed")
    return EventResult(card_id, _refresh(pki, changed), None)


def renew(pki: SimulatorPKI, card_id: str, auth_key: rsa.RSAPublicKey,
          sign_key: rsa.RSAPublicKey | None, now: dt.datetime | None = None,
          card_expiry: dt.date | None = None) -> EventResult:
    """更新: both certificates replaced; the old ones revoked as superseded."""
    now = pki.now(now)
    # Reads happen inside the write transaction: another process cannot change the card
    # between what we saw and what we write.
    with pki.store.transaction() as db:
        current = card(pki, card_id)
        _require_active(current)
        changed = _replace_certificates(pki, db, current, auth_key, sign_key, now,
                                        card_expiry or current.card_expiry)
    return EventResult(card_id, _refresh(pki, changed), _card_set(pki, card_id))


def _replace_certificates(pki: SimulatorPKI, db, current: Card, auth_key: rsa.RSAPublicKey,
                          sign_key: rsa.RSAPublicKey | None, now: dt.datetime,
                          expiry: dt.date) -> tuple[CertificateRecord, ...]:
    """Renewal and reissue alike: every live certificate superseded, fresh ones issued."""
    card_id = current.card_id
    changed = _revoke(pki, db, live_certificates(pki, card_id), Status.REVOKED,
                      x509.ReasonFlags.superseded, now)
    db.execute("UPDATE card SET card_expiry = ? WHERE card_id = ?", (expiry.isoformat(), card_id))
    _issue(pki, db, card_id, current.resident, Role.AUTH, auth_key, now, expiry)
    if sign_key is not None:
        _issue(pki, db, card_id, current.resident, Role.SIGN, sign_key, now, expiry)
    return changed


def change_resident(pki: SimulatorPKI, card_id: str, resident: Resident,
                    sign_key: rsa.RSAPublicKey | None,
                    now: dt.datetime | None = None) -> EventResult:
    """Change of address or name: the signing certificate (which carries them) is revoked as
    affiliationChanged and, if ``sign_key`` is given, replaced; authentication is untouched."""
    now = pki.now(now)
    with pki.store.transaction() as db:
        current = card(pki, card_id)
        _require_active(current)
        changed = _revoke(pki, db, live_certificates(pki, card_id, [Role.SIGN]), Status.REVOKED,
                          x509.ReasonFlags.affiliation_changed, now)
        db.execute("UPDATE card SET resident_json = ? WHERE card_id = ?",
                   (resident.to_json(), card_id))
        if sign_key is not None:
            _issue(pki, db, card_id, resident, Role.SIGN, sign_key, now, current.card_expiry)
    return EventResult(card_id, _refresh(pki, changed), _card_set(pki, card_id))


def report_loss(pki: SimulatorPKI, card_id: str, now: dt.datetime | None = None) -> EventResult:
    """紛失: every live certificate of the card goes on hold (一時保留)."""
    now = pki.now(now)
    with pki.store.transaction() as db:
        _require_active(card(pki, card_id))
        changed = _revoke(pki, db, [r for r in live_certificates(pki, card_id)
                                    if r.status is not Status.HOLD],
                          Status.HOLD, x509.ReasonFlags.certificate_hold, now)
        _set_card_state(db, card_id, "lost")
    return EventResult(card_id, _refresh(pki, changed), None)


def card_found(pki: SimulatorPKI, card_id: str, now: dt.datetime | None = None) -> EventResult:
    """A lost card turned up: its held certificates are revoked, never released; reissue next."""
    now = pki.now(now)
    with pki.store.transaction() as db:
        if card(pki, card_id).state != "lost":
            raise LifecycleError(f"card {card_id} was not reported lost")
        changed = _revoke(pki, db, live_certificates(pki, card_id), Status.REVOKED,
                          x509.ReasonFlags.superseded, now)
        _set_card_state(db, card_id, "revoked")
    return EventResult(card_id, _refresh(pki, changed), None)


def reissue(pki: SimulatorPKI, card_id: str, auth_key: rsa.RSAPublicKey,
            sign_key: rsa.RSAPublicKey | None, now: dt.datetime | None = None,
            card_expiry: dt.date | None = None) -> EventResult:
    """再発行 after loss: new certificates for the new card; anything still live is revoked."""
    now = pki.now(now)
    with pki.store.transaction() as db:
        current = card(pki, card_id)
        if current.state == "closed":
            raise LifecycleError(f"card {card_id} is closed")
        _set_card_state(db, card_id, "active")
        changed = _replace_certificates(pki, db, current, auth_key, sign_key, now,
                                        card_expiry or current.card_expiry)
    return EventResult(card_id, _refresh(pki, changed), _card_set(pki, card_id))


def death(pki: SimulatorPKI, card_id: str, now: dt.datetime | None = None) -> EventResult:
    """死亡: every certificate of the card revoked; the card is closed."""
    now = pki.now(now)
    with pki.store.transaction() as db:
        card(pki, card_id)
        changed = _revoke(pki, db, live_certificates(pki, card_id), Status.REVOKED,
                          x509.ReasonFlags.cessation_of_operation, now)
        _set_card_state(db, card_id, "closed")
    return EventResult(card_id, _refresh(pki, changed), None)


def user_request(pki: SimulatorPKI, card_id: str, now: dt.datetime | None = None,
                 roles: Iterable[Role] = (Role.AUTH, Role.SIGN)) -> EventResult:
    """失効申請 by the holder."""
    now = pki.now(now)
    with pki.store.transaction() as db:
        card(pki, card_id)
        changed = _revoke(pki, db, live_certificates(pki, card_id, roles), Status.REVOKED,
                          x509.ReasonFlags.unspecified, now)
    return EventResult(card_id, _refresh(pki, changed), None)


def key_compromise(pki: SimulatorPKI, card_id: str, now: dt.datetime | None = None,
                   invalidity_date: dt.datetime | None = None,
                   roles: Iterable[Role] = (Role.AUTH, Role.SIGN)) -> EventResult:
    """A reported key compromise; ``invalidity_date`` is when the key is known or suspected to
    have been compromised (an entry extension, RFC 5280 §5.3.2)."""
    now = pki.now(now)
    with pki.store.transaction() as db:
        card(pki, card_id)
        changed = _revoke(pki, db, live_certificates(pki, card_id, roles), Status.REVOKED,
                          x509.ReasonFlags.key_compromise, now, invalidity_date or now)
    return EventResult(card_id, _refresh(pki, changed), None)


def release_hold(pki: SimulatorPKI, card_id: str, now: dt.datetime | None = None,
                 roles: Iterable[Role] = (Role.AUTH,)) -> EventResult:
    """Lift a hold (smartphone authentication certificate only, facts §14)."""
    now = pki.now(now)
    with pki.store.transaction() as db:
        current = card(pki, card_id)
        held = [r for r in live_certificates(pki, card_id, roles) if r.status is Status.HOLD]
        if not held:
            raise LifecycleError(f"card {card_id} has no held certificate to release")
        changed = _revoke(pki, db, held, Status.RELEASED, x509.ReasonFlags.remove_from_crl, now)
        if current.state == "lost":
            _set_card_state(db, card_id, "active")
    return EventResult(card_id, _refresh(pki, changed), None)


def expire(pki: SimulatorPKI, now: dt.datetime | None = None) -> tuple[CertificateRecord, ...]:
    """Mark good certificates past their notAfter as expired; nothing is revoked."""
    now = pki.now(now)
    with pki.store.transaction() as db:
        records = pki.store.certificates("status IN ('good', 'released') AND not_after < ?",
                                         (now.astimezone(dt.UTC).isoformat(),))
        for record in records:
            db.execute("UPDATE certificate SET status = 'expired' WHERE kind = ? AND "
                       "generation = ? AND serial = ?",
                       (record.kind, record.generation, serial_key(record.serial)))
    return tuple(records)


def _refresh(pki: SimulatorPKI,
             records: tuple[CertificateRecord, ...]) -> tuple[CertificateRecord, ...]:
    return tuple(pki.store.certificate(r.serial, r.kind) for r in records)


def _require_active(current: Card) -> None:
    if current.state != "active":
        raise LifecycleError(f"card {current.card_id} is {current.state}, not active")

