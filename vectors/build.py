"""``mynacard vectors build``: write every case and its manifest, deterministically."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..jpki.policies import ANY_POLICY
from ..jpki.validate import Verdict
from .cases import (
    CLOCK_SKEW,
    MANIFEST,
    POLICY_DEPENDENT,
    Case,
    _crl_pem,
    _pem,
    cases,
    revocation_scope,
    uses_deltas,
)

FORMAT = 2


def _anchor(cert: x509.Certificate) -> dict:
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"subject": cert.subject.rfc4514_string(),
            "spki_sha256": hashlib.sha256(spki).hexdigest(),
            "certificate_sha256": hashlib.sha256(
                cert.public_bytes(serialization.Encoding.DER)).hexdigest()}


def relying_party_inputs(case: Case) -> dict:
    """Every input a validator needs to reach the case's expected verdict (docs/vectors.md)."""
    return {
        "validation_time": case.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "trust_anchors": [_anchor(a) for a in case.anchors],
        "revocation": {
            "method": case.method,
            "required": True,
            "scope": revocation_scope(case),
            "use_deltas": uses_deltas(case),
            "fetch": False,
        },
        "ocsp_nonce": None if case.method != "ocsp" else {
            "sent": case.nonce.hex() if case.nonce else None,
            "required_in_response": case.nonce is not None},
        "clock_skew_seconds": int(CLOCK_SKEW.total_seconds()),
        "certificate_policy": {"initial_policy_set": [ANY_POLICY],
                               "initial_explicit_policy": False,
                               "initial_policy_mapping_inhibit": False,
                               "initial_any_policy_inhibit": False},
    }


def _expected(case: Case) -> dict:
    policy = POLICY_DEPENDENT.get(case.id)
    return {"result": "valid" if case.verdict is Verdict.VALID else "invalid",
            "verdict": case.verdict.value,
            "reason": case.reason.value if case.reason else None,
            "outcome": "policy-dependent" if policy else "universal",
            "policy": policy[0] if policy else None,
            "otherwise": policy[1] if policy else None}


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def build_vectors(out: Path) -> list[dict]:
    """Write every case and the manifest; returns the manifest's case entries."""
    out = Path(out)
    if (out / MANIFEST).exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for case in cases():
        d = out / case.id
        files = {"cert.pem": _pem(case.cert),
                 "anchors.pem": b"".join(map(_pem, case.anchors)),
                 "intermediates.pem": b"".join(map(_pem, case.intermediates)),
                 # For tools that refuse an empty bundle (openssl verify -untrusted).
                 "chain.pem": b"".join(map(_pem, case.intermediates + case.anchors)),
                 "crls.pem": b"".join(map(_crl_pem, case.crls)),
                 "ocsp.der": case.ocsp or b""}
        for n, crl in enumerate(case.crls, 1):
            files[f"crl-{n}.der"] = crl
        for name, data in files.items():
            _write(d / name, data)
        entries.append({
            "id": case.id,
            "description": case.description,
            "files": [f"{case.id}/{name}" for name in sorted(files)],
            "inputs": relying_party_inputs(case),
            "expected": _expected(case),
        })
    manifest = {"format": FORMAT, "generator": "mynacard vectors build",
                "schema": "docs/vectors.md",
                "result_semantics": "result valid/invalid is what every validator reaches given "
                                    "the case's inputs; outcome says whether the RFCs fix it "
                                    "(universal) or the stated policy does (policy-dependent); "
                                    "verdict and reason are this project's finer outcome",
                "cases": entries}
    _write(out / MANIFEST, (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode())
    return entries


