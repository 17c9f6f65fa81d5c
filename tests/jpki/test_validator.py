"""Validator behaviour not covered by PKITS or the vectors: fail-closed handling of hostile
input, the injectable clock, and the OCSP responder's choice of CA generation."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from mynacard.jpki import lifecycle
from mynacard.jpki.ocsp import FailureMode, OCSPResponder
from mynacard.jpki.profile import SIGN_CA
from mynacard.jpki.publish import issue_crl
from mynacard.jpki.validate import Policy, RevocationMethod, Validator, Verdict

T0 = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
CRL_ONLY = Policy(methods=(RevocationMethod.CRL,))
OCSP_ONLY = Policy(methods=(RevocationMethod.OCSP,), ocsp_nonce=b"nonce-0123456789")


def _issue(pki, resident, card_keys, when=T0 + HOUR):
    return lifecycle.issue_card(pki, resident, card_keys[0], card_keys[1], when,
                                       dt.date(2035, 7, 14), card_id="card-1")


def test_malformed_certificates_give_a_verdict_not_an_exception(pki):
    validator = Validator(pki.trust_anchors())
    for junk in (b"", b"\x30\x03\x02\x01\x01", b"\x30\x80" + b"\x00" * 30):
        result = validator.validate(junk, T0)
        assert result.verdict is Verdict.MALFORMED and "cannot parse" in result.detail


def test_a_malformed_crl_leaves_no_usable_information(pki, resident, card_keys):
    certs = _issue(pki, resident, card_keys)
    good = issue_crl(pki, SIGN_CA, 1, T0 + 2 * HOUR).public_bytes(serialization.Encoding.DER)
    validator = Validator(pki.trust_anchors(), crls=[good[:-10]], policy=CRL_ONLY)
    result = validator.validate(certs.sign, T0 + 3 * HOUR)
    assert result.verdict is Verdict.NO_REVOCATION_INFO
    assert "malformed CRL" in result.detail


def test_revocation_can_be_optional_but_is_required_by_default(pki, resident, card_keys):
    certs = _issue(pki, resident, card_keys)
    strict = Validator(pki.trust_anchors(), policy=CRL_ONLY)
    assert strict.validate(certs.sign, T0 + 2 * HOUR).verdict is Verdict.NO_REVOCATION_INFO
    lax = Validator(pki.trust_anchors(), policy=Policy(require_revocation_info=False))
    assert lax.validate(certs.sign, T0 + 2 * HOUR).verdict is Verdict.VALID


def test_the_clock_is_injectable(pki, resident, card_keys):
    certs = _issue(pki, resident, card_keys)
    crl = issue_crl(pki, SIGN_CA, 1, T0 + 2 * HOUR)
    now = [T0 + 3 * HOUR]
    validator = Validator(pki.trust_anchors(), crls=[crl], policy=CRL_ONLY,
                          clock=lambda: now[0])
    assert validator.validate(certs.sign).verdict is Verdict.VALID
    now[0] = T0 + 3 * dt.timedelta(days=1)
    assert validator.validate(certs.sign).verdict is Verdict.STALE_REVOCATION_INFO
    now[0] = dt.datetime(2040, 1, 1, tzinfo=dt.UTC)
    assert validator.validate(certs.sign).verdict is Verdict.EXPIRED


def _request(cert, issuer, nonce=b"nonce-0123456789") -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def test_ocsp_responder_answers_per_generation(rolled_pki, resident, card_keys):
    pki = rolled_pki
    g1, g2 = pki.generations(SIGN_CA)
    old = _issue(pki, resident, card_keys)  # before the rollover: generation 1
    assert old.sign_ca == g1.certificate
    lifecycle.change_resident(pki, "card-1", resident, card_keys[2],
                              T0 + dt.timedelta(days=400))
    new_sign = lifecycle.live_certificates(pki, "card-1")
    new_sign = next(r.certificate for r in new_sign if r.role.value == "sign")
    at = T0 + dt.timedelta(days=400, hours=1)
    responder = OCSPResponder(pki, clock=lambda: at)
    for cert, issuer, generation, status in (
            (old.sign, g1.certificate, 1, ocsp.OCSPCertStatus.REVOKED),
            (new_sign, g2.certificate, 2, ocsp.OCSPCertStatus.GOOD)):
        response = responder.response(_request(cert, issuer))
        assert response.certificate_status is status
        assert response.certificates[0] == pki.responder(SIGN_CA, generation).certificate
        assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == \
            b"nonce-0123456789"
    # The validator accepts what the responder signed, for both generations.
    answers = [responder.respond(_request(old.sign, g1.certificate)),
               responder.respond(_request(new_sign, g2.certificate))]
    validator = Validator(pki.trust_anchors(), ocsp_responses=answers, policy=OCSP_ONLY)
    revoked = validator.validate(old.sign, at)
    assert (revoked.verdict, revoked.reason) == (Verdict.REVOKED,
                                                 x509.ReasonFlags.affiliation_changed)
    assert validator.validate(new_sign, at).verdict is Verdict.VALID
    # A request naming generation 2 for a generation-1 serial: unknown, not "good".
    cross = responder.response(_request(old.sign, g2.certificate))
    assert cross.certificate_status is ocsp.OCSPCertStatus.UNKNOWN


def test_ocsp_responder_refusals(pki, resident, card_keys):
    certs = _issue(pki, resident, card_keys)
    responder = OCSPResponder(pki, clock=lambda: T0 + 2 * HOUR)
    assert responder.response(b"\x30\x00").response_status is \
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    foreign = x509.load_der_x509_certificate(certs.auth.public_bytes(serialization.Encoding.DER))
    # Naming the end entity as issuer: not a CA this responder answers for.
    assert responder.response(_request(certs.sign, foreign)).response_status is \
        ocsp.OCSPResponseStatus.UNAUTHORIZED
    responder.failure = FailureMode.TRY_LATER
    answer = responder.respond(_request(certs.sign, pki.sign_ca.certificate))
    validator = Validator(pki.trust_anchors(), ocsp_responses=[answer], policy=OCSP_ONLY)
    result = validator.validate(certs.sign, T0 + 2 * HOUR)
    assert result.verdict is Verdict.NO_REVOCATION_INFO and "TRY_LATER" in result.detail
