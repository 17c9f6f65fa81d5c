"""CRL, delta CRL and ARL issuance per CA generation, and their publication as DER files.

Each generation signs the lists of what it issued, under its own key and with its own CRL
number sequence (complete and delta CRLs share it, as RFC 5280 §5.2.3 requires). A complete CRL
points to its delta through freshestCRL; a delta names its base in deltaCRLIndicator and lists
every change since that base, released holds as removeFromCRL. ARLs list revoked link
certificates, with an issuingDistributionPoint that says onlyContainsCACerts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ..fsutil import atomic_write
from .ca import CertificateAuthority, SimulatorPKI
from .profile import CA_KINDS, CAKind
from .store import CertificateRecord, Role, Status, StoreError

CRL_VALIDITY = dt.timedelta(days=1)
DELTA_VALIDITY = dt.timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    serial: int
    revocation_date: dt.datetime
    reason: x509.ReasonFlags | None = None
    invalidity_date: dt.datetime | None = None


def _second(when: dt.datetime) -> dt.datetime:
    return when.astimezone(dt.UTC).replace(microsecond=0)


def revoked_certificate(entry: RevokedEntry) -> x509.RevokedCertificate:
    builder = (x509.RevokedCertificateBuilder().serial_number(entry.serial)
               .revocation_date(_second(entry.revocation_date)))
    # RFC 5280 §5.3.1: reasonCode unspecified SHOULD be absent rather than present.
    if entry.reason is not None and entry.reason is not x509.ReasonFlags.unspecified:
        builder = builder.add_extension(x509.CRLReason(entry.reason), critical=False)
    if entry.invalidity_date is not None:
        builder = builder.add_extension(x509.InvalidityDate(
            _second(entry.invalidity_date).replace(tzinfo=None)), critical=False)
    return builder.build()


def sign_crl(
    issuer: CertificateAuthority,
    entries: Iterable[RevokedEntry],
    number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
    *,
    idp_url: str | None = None,
    only_ca_certs: bool = False,
    delta_base: int | None = None,
    freshest_url: str | None = None,
    extra_extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.CertificateRevocationList:
    """A CRL signed by one CA generation (the one primitive the store and the vectors share)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.certificate.subject)
        .last_update(_second(this_update))
        .next_update(_second(next_update))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.key.public_key()), critical=False)
    )
    if idp_url is not None:
        builder = builder.add_extension(x509.IssuingDistributionPoint(
            full_name=[x509.UniformResourceIdentifier(idp_url)], relative_name=None,
            only_contains_user_certs=not only_ca_certs, only_contains_ca_certs=only_ca_certs,
            only_some_reasons=None, indirect_crl=False, only_contains_attribute_certs=False),
            critical=True)
    if delta_base is not None:
        builder = builder.add_extension(x509.DeltaCRLIndicator(delta_base), critical=True)
    if freshest_url is not None:
        builder = builder.add_extension(x509.FreshestCRL([x509.DistributionPoint(
            [x509.UniformResourceIdentifier(freshest_url)], None, None, None)]), critical=False)
    for extension, critical in extra_extensions:
        builder = builder.add_extension(extension, critical=critical)
    for entry in entries:
        builder = builder.add_revoked_certificate(revoked_certificate(entry))
    return builder.sign(issuer.key, hashes.SHA256())


def _entry(record: CertificateRecord) -> RevokedEntry:
    if record.revoked_at is None:
        raise StoreError(f"certificate {record.serial:#x} is {record.status.value} without a date")
    return RevokedEntry(record.serial, record.revoked_at, record.reason, record.invalidity_date)


def _issued_by(pki: SimulatorPKI, kind: CAKind, generation: int,
               roles: tuple[Role, ...]) -> list[CertificateRecord]:
    marks = ",".join("?" * len(roles))
    return pki.store.certificates(f"kind = ? AND generation = ? AND role IN ({marks})",
                                  (kind.key, generation, *(r.value for r in roles)))


def _on_complete_list(record: CertificateRecord, now: dt.datetime) -> bool:
    # An entry may leave the list once its certificate has expired (RFC 5280 §3.3).
    return (record.status in (Status.HOLD, Status.REVOKED)
            and record.certificate.not_valid_after_utc >= now)


def issue_crl(pki: SimulatorPKI, kind: CAKind, generation: int,
              now: dt.datetime | None = None,
              validity: dt.timedelta = CRL_VALIDITY) -> x509.CertificateRevocationList:
    """A complete CRL of the end-entity certificates issued by one generation; thisUpdate is
    ``now`` (default: the PKI's clock), nextUpdate ``validity`` later."""
    now = pki.now(now)
    ca = pki.ca(kind, generation)
    with pki.store.transaction() as db:
        number = pki.store.take_crl_number(db, kind.key, generation)
        records = [r for r in _issued_by(pki, kind, generation, (Role.AUTH, Role.SIGN))
                   if _on_complete_list(r, now)]
        crl = sign_crl(ca, map(_entry, records), number, now, now + validity,
                       idp_url=pki.crl_url(kind, generation),
                       freshest_url=pki.delta_crl_url(kind, generation))
        pki.store.record_crl(db, kind.key, generation, number, "crl", None, crl,
                             crl.public_bytes(serialization.Encoding.DER))
    return crl


def issue_delta_crl(pki: SimulatorPKI, kind: CAKind, generation: int,
                    now: dt.datetime | None = None,
                    validity: dt.timedelta = DELTA_VALIDITY) -> x509.CertificateRevocationList:
    """A delta CRL on the latest complete CRL of that generation."""
    now = pki.now(now)
    ca = pki.ca(kind, generation)
    base = pki.store.latest_crl_number(kind.key, generation, "crl")
    if base is None:
        raise StoreError(f"{kind.key} generation {generation} has no complete CRL to build on")
    with pki.store.transaction() as db:
        number = pki.store.take_crl_number(db, kind.key, generation)
        entries = []
        for record in _issued_by(pki, kind, generation, (Role.AUTH, Role.SIGN)):
            if record.change_seq is None or record.change_seq <= base:
                continue
            if record.status is Status.RELEASED:
                entries.append(RevokedEntry(record.serial, record.revoked_at or now,
                                            x509.ReasonFlags.remove_from_crl))
            elif _on_complete_list(record, now):
                entries.append(_entry(record))
        crl = sign_crl(ca, entries, number, now, now + validity,
                       idp_url=pki.crl_url(kind, generation), delta_base=base)
        pki.store.record_crl(db, kind.key, generation, number, "delta", base, crl,
                             crl.public_bytes(serialization.Encoding.DER))
    return crl


def issue_arl(pki: SimulatorPKI, kind: CAKind, generation: int,
              now: dt.datetime | None = None,
              validity: dt.timedelta = CRL_VALIDITY) -> x509.CertificateRevocationList:
    """An authority revocation list: link certificates issued by this generation."""
    now = pki.now(now)
    ca = pki.ca(kind, generation)
    with pki.store.transaction() as db:
        number = pki.store.take_crl_number(db, kind.key, generation)
        records = [r for r in _issued_by(pki, kind, generation, (Role.LINK,))
                   if _on_complete_list(r, now)]
        crl = sign_crl(ca, map(_entry, records), number, now, now + validity,
                       idp_url=pki.arl_url(kind, generation), only_ca_certs=True)
        pki.store.record_crl(db, kind.key, generation, number, "arl", None, crl,
                             crl.public_bytes(serialization.Encoding.DER))
    return crl


def revoke_link_certificate(pki: SimulatorPKI, serial: int, reason: x509.ReasonFlags,
                            now: dt.datetime | None = None) -> CertificateRecord:
    """Revoke a rollover certificate (e.g. cACompromise); it appears on the issuer's ARL."""
    now = pki.now(now)
    record = pki.store.certificate(serial)
    if record.role is not Role.LINK:
        raise StoreError(f"{serial:#x} is not a link certificate")
    with pki.store.transaction() as db:
        pki.store.set_status(db, record, Status.REVOKED, reason, now)
    return record


def publish(pki: SimulatorPKI, out_dir: Path, now: dt.datetime | None = None, *,
            complete: bool = True) -> list[Path]:
    """Issue and write, for every generation of both CAs: a complete CRL (when ``complete`` or
    none exists yet), a delta CRL on it, and an ARL. Files are replaced atomically. ``now``
    (default: the PKI's clock) is every list's thisUpdate."""
    now = pki.now(now)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in CA_KINDS.values():
        for ca in pki.generations(kind):
            stem = f"{kind.key}-g{ca.generation}"
            lists = []
            if complete or pki.store.latest_crl_number(kind.key, ca.generation, "crl") is None:
                lists.append((f"{stem}.crl", issue_crl(pki, kind, ca.generation, now)))
            lists.append((f"{stem}-delta.crl", issue_delta_crl(pki, kind, ca.generation, now)))
            lists.append((f"{stem}-arl.crl", issue_arl(pki, kind, ca.generation, now)))
            for name, crl in lists:
                atomic_write(out_dir / name, crl.public_bytes(serialization.Encoding.DER))
                written.append(out_dir / name)
    return written
