"""The revocation vectors and the ``pki`` / ``vectors`` command groups."""

from __future__ import annotations

import datetime as dt
import filecmp
import json
import shlex
import sys
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509

from mynacard.cli import main
from mynacard.vectors.build import build_vectors
from mynacard.vectors.run import run_vectors

PROJECT = Path(__file__).resolve().parents[2]
COMMITTED = PROJECT / "vectors" / "revocation"


def _same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    return not mismatch and not errors and all(
        _same_tree(a / d, b / d) for d in cmp.common_dirs)


def test_vectors_are_deterministic_and_committed(tmp_path):
    entries = build_vectors(tmp_path / "v")
    assert len(entries) >= 40
    assert _same_tree(tmp_path / "v", COMMITTED), "run `mynacard vectors build` and commit"
    manifest = json.loads((COMMITTED / "manifest.json").read_text())
    for entry in manifest["cases"]:
        assert {"id", "description", "files", "inputs", "expected"} <= entry.keys()
        assert all((COMMITTED / f).is_file() for f in entry["files"])


def test_our_validator_passes_every_vector():
    results = run_vectors(COMMITTED)
    assert [r for r in results if not r.passed] == []
    verdicts = {r.got.split()[0] for r in results}
    assert {"valid", "revoked", "on-hold", "stale-revocation-info", "bad-crl-signature",
            "unknown-critical-extension", "no-usable-revocation-info"} <= verdicts


def test_vectors_run_drives_a_command_per_case(tmp_path):
    # Our own CLI as the "vendor" validator: its exit status and printed verdict are checked.
    template = (f"{shlex.quote(sys.executable)} -m mynacard pki verify "
                "{cert} --anchors {anchors} --intermediates {intermediates} --crls {crls} "
                "--ocsp-response {ocsp} --at {time} --method {method} --nonce '{nonce}'")
    subset = tmp_path / "subset"
    build_vectors(subset)
    manifest = json.loads((subset / "manifest.json").read_text())
    keep = {"address-change-sign-revoked", "address-change-auth-good", "ocsp-wrong-nonce",
            "delta-remove-from-crl"}
    manifest["cases"] = [c for c in manifest["cases"] if c["id"] in keep]
    (subset / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(main, ["vectors", "run", "--dir", str(subset),
                                                "--validator", template])
    assert result.exit_code == 0, result.output
    assert "4 passed, 0 failed" in result.output
    # A validator that accepts everything fails the invalid cases.
    lenient = CliRunner().invoke(main, ["vectors", "run", "--dir", str(subset), "--validator",
                                                 "true"])
    assert lenient.exit_code == 1 and "2 passed, 2 failed" in lenient.output


def test_pki_commands_end_to_end(tmp_path, resident):
    runner = CliRunner()
    store = str(tmp_path / "store")
    resident_file = tmp_path / "resident.json"
    resident_file.write_text(resident.to_json(), encoding="utf-8")
    now = "2026-04-01T00:00:00Z"

    def ok(*args):
        result = runner.invoke(main, ["pki", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    ok("init", "--store", store, "--now", now)
    ok("issue", "--store", store, "--resident", str(resident_file), "--card-id", "c1",
       "--card-expiry", "2035-01-01", "--out", str(tmp_path / "certs"), "--now", now)
    old_sign = (tmp_path / "certs" / "c1-sign.pem").read_bytes()
    (tmp_path / "old-sign.pem").write_bytes(old_sign)
    output = ok("change-address", "c1", "--store", store, "--resident", str(resident_file),
                "--now", "2026-04-02T00:00:00Z", "--out", str(tmp_path / "certs"))
    assert "revoked (affiliationChanged)" in output
    ok("loss", "c1", "--store", store, "--now", "2026-04-03T00:00:00Z")
    ok("publish", "--store", store, "--out", str(tmp_path / "crl"), "--now",
       "2026-04-03T01:00:00Z")
    crls = [a for p in sorted((tmp_path / "crl").glob("*.crl")) for a in ("--crls", str(p))]
    verify = ["verify", "--store", store, *crls, "--method", "crl", "--at",
              "2026-04-03T02:00:00Z"]
    revoked = runner.invoke(main, ["pki", *verify, str(tmp_path / "old-sign.pem")])
    assert revoked.exit_code == 1 and revoked.output.startswith("revoked\n")
    assert "reason: affiliationChanged" in revoked.output
    held = runner.invoke(main, ["pki", *verify, str(tmp_path / "certs" / "c1-auth.pem")])
    assert held.exit_code == 1 and held.output.startswith("on-hold\n")
    assert "sign CA generation 2" in ok("rollover", "--store", store, "--kind", "sign",
                                        "--now", "2026-05-01T00:00:00Z")
    status = ok("status", "c1", "--store", store)
    assert "sign sign-g1" in status and " hold certificateHold" in status
    bad = runner.invoke(main, ["pki", "renew", "nope", "--store", store])
    assert bad.exit_code == 1 and "no card 'nope'" in bad.output


def test_crl_synth_command(tmp_path):
    out, issuer = tmp_path / "s.crl", tmp_path / "ca.pem"
    result = CliRunner().invoke(main, ["pki", "crl", "synth", "--entries", "2500", "--out",
                                            str(out), "--issuer-out", str(issuer), "--now",
                                            "2026-01-01T00:00:00Z"])
    assert result.exit_code == 0, result.output
    crl = x509.load_der_x509_crl(out.read_bytes())
    ca = x509.load_pem_x509_certificate(issuer.read_bytes())
    assert len(crl) == 2500 and crl.is_signature_valid(ca.public_key())
    assert crl.last_update_utc == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _has(crl_path: Path, extension: type) -> bool:
    try:
        x509.load_der_x509_crl(crl_path.read_bytes()).extensions.get_extension_for_class(extension)
    except x509.ExtensionNotFound:
        return False
    return True


def _manifest() -> list[dict]:
    return json.loads((COMMITTED / "manifest.json").read_text())["cases"]


def test_crl_numbers_are_unique_per_issuer_key_across_the_corpus():
    seen: dict[tuple[bytes, int], bytes] = {}
    for entry in _manifest():
        for path in sorted((COMMITTED / entry["id"]).glob("crl-*.der")):
            der = path.read_bytes()
            crl = x509.load_der_x509_crl(der)
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
            aki = crl.extensions.get_extension_for_class(
                x509.AuthorityKeyIdentifier).value.key_identifier
            assert seen.setdefault((aki, number), der) == der, f"{path}: number {number} reused"


def test_expired_certificate_has_a_fresh_crl_so_expiry_is_its_only_fault():
    entry = next(e for e in _manifest() if e["id"] == "expired-certificate")
    when = dt.datetime.fromisoformat(entry["inputs"]["validation_time"].replace("Z", "+00:00"))
    crl = x509.load_der_x509_crl((COMMITTED / entry["id"] / "crl-1.der").read_bytes())
    assert crl.last_update_utc <= when <= crl.next_update_utc


def test_every_case_states_its_relying_party_inputs():
    for entry in _manifest():
        inputs = entry["inputs"]
        anchors = x509.load_pem_x509_certificates(
            (COMMITTED / entry["id"] / "anchors.pem").read_bytes())
        assert [a["subject"] for a in inputs["trust_anchors"]] == [
            a.subject.rfc4514_string() for a in anchors]
        ships_delta = any(_has(p, x509.DeltaCRLIndicator)
                          for p in (COMMITTED / entry["id"]).glob("crl-*.der"))
        assert inputs["revocation"]["use_deltas"] is ships_delta, entry["id"]
        has_intermediates = bool((COMMITTED / entry["id"] / "intermediates.pem").read_bytes())
        assert inputs["revocation"]["scope"] == (
            "full-path" if has_intermediates else "end-entity")
        expected = entry["expected"]
        assert (expected["outcome"] == "policy-dependent") is bool(expected["policy"])
    policy_dependent = {e["id"] for e in _manifest()
                        if e["expected"]["outcome"] == "policy-dependent"}
    assert {"crl-missing-next-update", "ocsp-missing-nonce",
            "crl-next-update-boundary-stale", "hold-without-delta"} <= policy_dependent


def test_complete_crls_point_to_a_delta_only_in_cases_that_ship_one():
    for entry in _manifest():
        for path in (COMMITTED / entry["id"]).glob("crl-*.der"):
            if not _has(path, x509.FreshestCRL):
                continue
            assert entry["inputs"]["revocation"]["use_deltas"] or \
                entry["id"] == "hold-without-delta", path
