"""Lifecycle events: their effect on the store, on published CRLs and on validation."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography import x509

from mynacard.facts.person import Resident
from mynacard.jpki import lifecycle
from mynacard.jpki.ca import SimulatorPKI, store_path
from mynacard.jpki.names import names_match
from mynacard.jpki.profile import AUTH_CA, OID, SIGN_CA, read_sign_certificate_facts
from mynacard.jpki.publish import issue_crl, issue_delta_crl, publish
from mynacard.jpki.store import Status
from mynacard.jpki.validate import Policy, RevocationMethod, Validator, Verdict

T0 = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)  # the template store's creation time
HOUR = dt.timedelta(hours=1)
CRL_ONLY = Policy(methods=(RevocationMethod.CRL,))
PROJECT = Path(__file__).resolve().parents[2]


def _validator(pki: SimulatorPKI, crl_dir: Path, *, anchors=None, links=True) -> Validator:
    return Validator(anchors if anchors is not None else pki.trust_anchors(),
                     pki.link_certificates() if links else [],
                     [p.read_bytes() for p in sorted(crl_dir.glob("*.crl"))], policy=CRL_ONLY)


def _issue(pki, resident, card_keys, when=T0, card_id="card-1"):
    return lifecycle.issue_card(pki, resident, card_keys[0], card_keys[1], when,
                                       dt.date(2035, 7, 14), card_id=card_id)


def test_store_survives_reopening(pki, resident, card_keys):
    certs = _issue(pki, resident, card_keys)
    reopened = SimulatorPKI.open(pki.path)
    assert reopened.sign_ca.certificate == pki.sign_ca.certificate
    assert {(r.role.value, r.serial) for r in reopened.store.card_certificates("card-1")} == {
        ("auth", certs.auth.serial_number), ("sign", certs.sign.serial_number)}
    assert store_path(pki.path).name == "pki.sqlite3"
    dp = certs.sign.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert dp[0].full_name[0].value == pki.crl_url(SIGN_CA, 1)


def test_address_change_revokes_only_the_signing_certificate(pki, resident, card_keys, tmp_path):
    certs = _issue(pki, resident, card_keys)
    moved = Resident.from_json(resident.to_json().replace(
        "竹丘三丁目3番3号", "中清戸五丁目5番5号"))
    result = lifecycle.change_resident(pki, "card-1", moved, card_keys[2], T0 + HOUR)
    assert [(r.serial, r.status, r.reason) for r in result.changed] == [
        (certs.sign.serial_number, Status.REVOKED, x509.ReasonFlags.affiliation_changed)]
    assert result.certificates.auth == certs.auth
    facts = read_sign_certificate_facts(result.certificates.sign)
    assert facts[OID.ADDRESS.dotted_string] == moved.address

    publish(pki, tmp_path, T0 + 2 * HOUR)
    validator = _validator(pki, tmp_path)
    at = T0 + 3 * HOUR
    old = validator.validate(certs.sign, at)
    assert (old.verdict, old.reason) == (Verdict.REVOKED, x509.ReasonFlags.affiliation_changed)
    assert validator.validate(certs.auth, at).verdict is Verdict.VALID
    assert validator.validate(result.certificates.sign, at).verdict is Verdict.VALID


def test_loss_puts_both_on_hold_and_a_found_card_is_revoked_then_reissued(
        pki, resident, card_keys, tmp_path):
    certs = _issue(pki, resident, card_keys)
    lifecycle.report_loss(pki, "card-1", T0 + HOUR)
    publish(pki, tmp_path / "hold", T0 + 2 * HOUR)
    held = _validator(pki, tmp_path / "hold")
    for cert in (certs.auth, certs.sign):
        result = held.validate(cert, T0 + 3 * HOUR)
        assert (result.verdict, result.reason) == (Verdict.ON_HOLD,
                                                   x509.ReasonFlags.certificate_hold)

    lifecycle.card_found(pki, "card-1", T0 + 4 * HOUR)
    with pytest.raises(lifecycle.LifecycleError):
        lifecycle.release_hold(pki, "card-1", T0 + 5 * HOUR)
    # A delta on the hold-time CRL carries the final revocation.
    delta = issue_delta_crl(pki, SIGN_CA, 1, T0 + 5 * HOUR)
    entry = delta.get_revoked_certificate_by_serial_number(certs.sign.serial_number)
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is \
        x509.ReasonFlags.superseded

    reissued = lifecycle.reissue(pki, "card-1", card_keys[2], card_keys[3], T0 + 6 * HOUR)
    publish(pki, tmp_path / "after", T0 + 7 * HOUR)
    after = _validator(pki, tmp_path / "after")
    assert after.validate(certs.sign, T0 + 8 * HOUR).verdict is Verdict.REVOKED
    assert after.validate(reissued.certificates.sign, T0 + 8 * HOUR).verdict is Verdict.VALID
    assert after.validate(reissued.certificates.auth, T0 + 8 * HOUR).verdict is Verdict.VALID


def test_released_hold_leaves_through_remove_from_crl_in_the_delta(pki, resident, card_keys):
    certs = _issue(pki, resident, card_keys)
    lifecycle.report_loss(pki, "card-1", T0 + HOUR)
    full = issue_crl(pki, AUTH_CA, 1, T0 + 2 * HOUR)
    lifecycle.release_hold(pki, "card-1", T0 + 3 * HOUR)
    delta = issue_delta_crl(pki, AUTH_CA, 1, T0 + 4 * HOUR)
    entry = delta.get_revoked_certificate_by_serial_number(certs.auth.serial_number)
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is \
        x509.ReasonFlags.remove_from_crl
    at = T0 + 5 * HOUR
    only_full = Validator(pki.trust_anchors(), crls=[full], policy=CRL_ONLY)
    assert only_full.validate(certs.auth, at).verdict is Verdict.ON_HOLD
    with_delta = Validator(pki.trust_anchors(), crls=[full, delta], policy=CRL_ONLY)
    assert with_delta.validate(certs.auth, at).verdict is Verdict.VALID


@pytest.mark.parametrize(("event", "reason", "roles"), [
    (lifecycle.death, x509.ReasonFlags.cessation_of_operation, {"auth", "sign"}),
    (lifecycle.user_request, x509.ReasonFlags.unspecified, {"auth", "sign"}),
    (lifecycle.key_compromise, x509.ReasonFlags.key_compromise, {"auth", "sign"}),
])
def test_revocation_events(pki, resident, card_keys, tmp_path, event, reason, roles):
    certs = _issue(pki, resident, card_keys)
    result = event(pki, "card-1", T0 + HOUR)
    assert {r.role.value for r in result.changed} == roles
    assert {r.reason for r in result.changed} == {reason}
    publish(pki, tmp_path, T0 + 2 * HOUR)
    outcome = _validator(pki, tmp_path).validate(certs.sign, T0 + 3 * HOUR)
    assert (outcome.verdict, outcome.reason) == (Verdict.REVOKED, reason)
    crl = x509.load_der_x509_crl((tmp_path / "sign-g1.crl").read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(certs.sign.serial_number)
    has_invalidity = any(isinstance(e.value, x509.InvalidityDate) for e in entry.extensions)
    assert has_invalidity is (reason is x509.ReasonFlags.key_compromise)


def test_expired_entries_leave_the_crl(pki, resident, card_keys):
    certs = lifecycle.issue_card(pki, resident, card_keys[0], card_keys[1], T0,
                                        dt.date(2026, 5, 1), card_id="short")
    lifecycle.user_request(pki, "short", T0 + HOUR)
    before = issue_crl(pki, SIGN_CA, 1, T0 + 2 * HOUR)
    assert before.get_revoked_certificate_by_serial_number(certs.sign.serial_number)
    later = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    assert lifecycle.expire(pki, later) == ()  # revoked ones are not "expired" events
    after = issue_crl(pki, SIGN_CA, 1, later)
    assert after.get_revoked_certificate_by_serial_number(certs.sign.serial_number) is None
    assert after.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > \
        before.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_expiry_event_marks_good_certificates(pki, resident, card_keys):
    _issue(pki, resident, card_keys, card_id="old")
    expired = lifecycle.expire(pki, dt.datetime(2040, 1, 1, tzinfo=dt.UTC))
    assert {r.card_id for r in expired} == {"old"} and len(expired) == 2
    assert {r.status for r in pki.store.card_certificates("old")} == {Status.EXPIRED}


def test_generations_share_a_name_and_are_told_apart_by_key(rolled_pki, resident, card_keys,
                                                            tmp_path):
    pki = rolled_pki
    g1, g2 = pki.generations(SIGN_CA)
    assert names_match(g1.certificate.subject, g2.certificate.subject)
    assert g1.certificate.public_key() != g2.certificate.public_key()
    old = pki.store.certificates("role = 'link'")
    assert len(old) == 2
    certs = _issue(pki, resident, card_keys, when=T0 + dt.timedelta(days=400))
    aki = certs.sign.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == x509.SubjectKeyIdentifier.from_public_key(
        g2.certificate.public_key()).digest
    publish(pki, tmp_path, T0 + dt.timedelta(days=401))
    g1_crl = x509.load_der_x509_crl((tmp_path / "sign-g1.crl").read_bytes())
    assert g1_crl.is_signature_valid(g1.certificate.public_key())
    assert not g1_crl.is_signature_valid(g2.certificate.public_key())
    at = T0 + dt.timedelta(days=402)
    assert _validator(pki, tmp_path).validate(certs.sign, at).verdict is Verdict.VALID
    # Only the new root trusted: the old-with-new link certificate bridges to generation 1.
    only_new = _validator(pki, tmp_path, anchors=[g2.certificate, pki.auth_ca.certificate])
    assert only_new.validate(certs.sign, at).verdict is Verdict.VALID
    without_links = _validator(pki, tmp_path, anchors=[g2.certificate], links=False)
    assert without_links.validate(certs.sign, at).verdict is Verdict.VALID


def test_old_generation_certificate_with_only_the_new_root(rolled_pki, resident, card_keys,
                                                           tmp_path):
    pki = rolled_pki
    g1, g2 = pki.generations(SIGN_CA)
    # Issue under generation 1 directly, recorded like any card certificate.
    from mynacard.jpki.profile import EndEntityRequest, build_sign_certificate
    from mynacard.jpki.store import Role

    cert = build_sign_certificate(resident, "x", card_keys[0], g1.certificate, g1.key,
                                  EndEntityRequest(12345, T0, T0 + dt.timedelta(days=800),
                                                   pki.crl_url(SIGN_CA, 1)))
    with pki.store.transaction() as db:
        pki.store.add_certificate(db, "sign", 1, Role.SIGN, None, cert)
    publish(pki, tmp_path, T0 + dt.timedelta(days=401))
    at = T0 + dt.timedelta(days=402)
    bridged = _validator(pki, tmp_path, anchors=[g2.certificate])
    result = bridged.validate(cert, at)
    assert result.verdict is Verdict.VALID and len(result.path) == 3
    unbridged = _validator(pki, tmp_path, anchors=[g2.certificate], links=False)
    assert unbridged.validate(cert, at).verdict is Verdict.UNTRUSTED_CHAIN


CHILD = textwrap.dedent("""
    import datetime as dt, os, signal, sys
    from mynacard.jpki.ca import SimulatorPKI
    from mynacard.facts.person import Resident
    from mynacard.jpki.lifecycle import issue_card
    from mynacard.jpki.publish import issue_crl
    from mynacard.jpki.profile import SIGN_CA
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    pki = SimulatorPKI.open(sys.argv[1])
    mode, tag = sys.argv[2], sys.argv[3]
    resident = Resident.from_json(sys.stdin.readline())
    key = load_pem_public_key(sys.stdin.read().encode())
    now = dt.datetime(2026, 4, 2, tzinfo=dt.UTC)
    if mode == "issue":
        for i in range(3):
            issue_card(pki, resident, key, key, now, dt.date(2035, 1, 1), card_id=f"{tag}-{i}")
            issue_crl(pki, SIGN_CA, 1, now)
    else:
        # Die in the middle of an address change: after the old signing certificate was
        # revoked, while the new one is being issued.
        import mynacard.jpki.lifecycle as lc
        lc._issue = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
        lc.change_resident(pki, tag, resident, key, now)
""")


def _child(pki: SimulatorPKI, mode: str, tag: str, resident, key) -> subprocess.Popen:
    from cryptography.hazmat.primitives import serialization

    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(pki.path), mode, tag],
                            stdin=subprocess.PIPE, cwd=PROJECT)
    pem = key.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    proc.stdin.write(resident.to_json().encode() + b"\n" + pem)
    proc.stdin.close()
    return proc


def test_several_processes_write_one_store(pki, resident, card_keys):
    procs = [_child(pki, "issue", tag, resident, card_keys[0]) for tag in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    cards = {r[0] for r in pki.store.query("SELECT card_id FROM card")}
    assert cards == {f"{t}-{i}" for t in "ab" for i in range(3)}
    numbers = [r[0] for r in pki.store.query(
        "SELECT number FROM crl WHERE kind = 'sign' AND generation = 1")]
    assert sorted(numbers) == list(range(1, 7))


def test_a_process_killed_mid_event_leaves_the_card_as_it_was(pki, resident, card_keys):
    certs = _issue(pki, resident, card_keys)
    proc = _child(pki, "kill", "card-1", resident, card_keys[0])
    assert proc.wait(timeout=60) == -signal.SIGKILL
    records = pki.store.card_certificates("card-1")
    assert {(r.certificate, r.status) for r in records} == {
        (certs.auth, Status.GOOD), (certs.sign, Status.GOOD)}
    # The store is not left locked: the event can simply be run again.
    result = lifecycle.change_resident(pki, "card-1", resident, card_keys[2], T0 + HOUR)
    assert [r.serial for r in result.changed] == [certs.sign.serial_number]
    assert os.path.exists(store_path(pki.path))


def test_only_events_that_issue_return_a_new_certificate_set(pki, resident, card_keys):
    # The card image is rewritten from EventResult.certificates (cardsim.perso.reissue), so
    # an event that issues nothing must not hand back a set to install.
    _issue(pki, resident, card_keys)
    moved = lifecycle.change_resident(pki, "card-1", resident, card_keys[2], T0 + HOUR)
    assert moved.certificates is not None
    assert moved.certificates.sign.public_key() == card_keys[2]
    assert lifecycle.report_loss(pki, "card-1", T0 + 2 * HOUR).certificates is None
