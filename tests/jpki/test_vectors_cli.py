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
        assert {"id", "description", "files", "validation_time", "expected"} <= entry.keys()
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
