"""NIST PKITS (sections 4.1–4.15) with CRL checking required.

Certificates and CRLs come from the ``cryptography-vectors`` package; the expected verdict,
failure kind and initial inputs (initial-policy-set, initial-explicit-policy,
initial-policy-mapping-inhibit, initial-any-policy-inhibit; PKITS §3) of every case from NIST's
published table (tests/data/pkits-expected-results.csv).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography import x509

from mynacard.jpki.validate import Policy, RevocationMethod, Validator

DATA = Path(cryptography_vectors.__file__).parent / "x509" / "PKITS_data"
TABLE = Path(__file__).resolve().parent.parent / "data" / "pkits-expected-results.csv"
SECTIONS = tuple(f"4.{n}." for n in range(1, 16))
# Inside every certificate's and CRL's validity window (2010-01-01 … 2030-12-31) and after the
# nextUpdate of the deliberately stale CRLs.
VALIDATION_TIME = dt.datetime(2020, 6, 1, tzinfo=dt.UTC)
CRL_ONLY = Policy(methods=(RevocationMethod.CRL,), require_revocation_info=True)

EXCLUDED = {
    # The intermediate CA and end entity inherit their DSA domain parameters from the issuer's
    # key (RFC 3279 §2.3.2); cryptography refuses to parse a DSA SubjectPublicKeyInfo without
    # parameters, so neither certificate can be loaded at all.
    "4.1.5": "DSA parameter inheritance: the certificates cannot be parsed by cryptography",
}


def _cases() -> list[dict[str, str]]:
    with TABLE.open(newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["pkits_id"].startswith(SECTIONS)]
    return rows


def _policy(params: str) -> Policy:
    """The case's PKITS initial inputs; absent ones keep their PKITS defaults (any-policy,
    no explicit policy, mapping and anyPolicy allowed)."""
    inputs = json.loads(params) if params else {}
    policy = dataclasses.replace(
        CRL_ONLY,
        initial_explicit_policy=inputs.pop("initial_explicit_policy", False),
        initial_policy_mapping_inhibit=inputs.pop("initial_policy_mapping_inhibit", False),
        initial_any_policy_inhibit=inputs.pop("initial_any_policy_inhibit", False))
    if "user_initial_policy_set" in inputs:
        policy = dataclasses.replace(
            policy, initial_policy_set=frozenset(inputs.pop("user_initial_policy_set")))
    assert not inputs, f"unknown PKITS input {inputs}"
    return policy


def _cert(name: str) -> x509.Certificate:
    return x509.load_der_x509_certificate((DATA / "certs" / name).read_bytes())


@pytest.mark.parametrize("case", _cases(), ids=lambda c: f"{c['pkits_id']}-{c['name']}")
def test_pkits(case: dict[str, str]) -> None:
    if case["pkits_id"] in EXCLUDED:
        pytest.skip(EXCLUDED[case["pkits_id"]])
    validator = Validator(
        [_cert("TrustAnchorRootCertificate.crt")],
        [_cert(n) for n in case["intermediates"].split()],
        [(DATA / "crls" / n).read_bytes() for n in case["crls"].split()],
        policy=_policy(case["params"]))
    result = validator.validate(_cert(case["ee_cert"]), VALIDATION_TIME)
    outcome = ("valid" if result.is_valid else "invalid", result.failure_kind)
    assert outcome == (case["expected"], case["failure_kind"] or "valid"), result.detail


def test_every_section_is_covered() -> None:
    ids = [c["pkits_id"] for c in _cases()]
    assert {i.rsplit(".", 1)[0] + "." for i in ids} == set(SECTIONS)
    assert len(ids) > 100
