"""What we publish and serve, checked with the openssl command line and with our validator.

The server listens on 127.0.0.1 only (an ephemeral port)."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from mynacard.jpki import lifecycle
from mynacard.jpki.fetch import http_fetch
from mynacard.jpki.ocsp import FailureMode, OCSPResponder
from mynacard.jpki.profile import SIGN_CA
from mynacard.jpki.publish import issue_crl, issue_delta_crl, publish
from mynacard.jpki.server import RevocationServer
from mynacard.jpki.validate import Policy, RevocationMethod, Validator, Verdict
from mynacard.loopback import LoopbackOnly


def _pem_file(path: Path, obj) -> Path:
    path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    return path


def _openssl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.fixture
def world(pki, resident, card_keys, tmp_path):
    """A served PKI with one card whose address changed (old signing certificate revoked)."""
    crl_dir = tmp_path / "crl"
    crl_dir.mkdir()
    server = RevocationServer("127.0.0.1", 0, crl_dir, OCSPResponder(pki))
    with pki.store.transaction() as db:
        pki.store.set_meta(db, "base_url", server.url)
    server.start_background()
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    first = lifecycle.issue_card(pki, resident, card_keys[0], card_keys[1], now,
                                        dt.date(2035, 7, 14), card_id="card-1")
    moved = lifecycle.change_resident(pki, "card-1", resident, card_keys[2],
                                      now + dt.timedelta(seconds=1))
    publish(pki, crl_dir, now + dt.timedelta(seconds=2))
    yield {"pki": pki, "server": server, "crl_dir": crl_dir, "old": first.sign,
           "auth": first.auth, "new": moved.certificates.sign, "dir": tmp_path}
    server.shutdown()
    server.server_close()


def test_openssl_reads_and_verifies_every_published_list(world):
    ca = _pem_file(world["dir"] / "ca.pem", world["pki"].sign_ca.certificate)
    auth_ca = _pem_file(world["dir"] / "auth-ca.pem", world["pki"].auth_ca.certificate)
    files = sorted(world["crl_dir"].glob("*.crl"))
    assert {f.name for f in files} >= {"sign-g1.crl", "sign-g1-delta.crl", "sign-g1-arl.crl",
                                       "auth-g1.crl", "auth-g1-delta.crl", "auth-g1-arl.crl"}
    for path in files:
        issuer = ca if path.name.startswith("sign") else auth_ca
        done = _openssl("crl", "-inform", "DER", "-in", str(path), "-CAfile", str(issuer),
                        "-noout", "-text")
        assert done.returncode == 0, done.stderr
        assert "verify OK" in done.stderr
    text = _openssl("crl", "-inform", "DER", "-in", str(world["crl_dir"] / "sign-g1.crl"),
                    "-noout", "-text").stdout
    assert "Affiliation Changed" in text and "Freshest CRL" in text


def _crl_pem(world, name: str) -> Path:
    crl = x509.load_der_x509_crl((world["crl_dir"] / name).read_bytes())
    return _pem_file(world["dir"] / (name + ".pem"), crl)


def test_openssl_verify_with_crl_check(world):
    ca = _pem_file(world["dir"] / "ca.pem", world["pki"].sign_ca.certificate)
    crl = _crl_pem(world, "sign-g1.crl")
    for cert, expected in ((world["new"], "OK"), (world["old"], "certificate revoked")):
        ee = _pem_file(world["dir"] / "ee.pem", cert)
        done = _openssl("verify", "-crl_check", "-CAfile", str(ca), "-CRLfile", str(crl),
                        str(ee))
        assert expected in done.stdout + done.stderr


def test_openssl_applies_our_delta_crl(world):
    pki = world["pki"]
    later = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    lifecycle.key_compromise(pki, "card-1", later)
    delta = issue_delta_crl(pki, SIGN_CA, 1, later + dt.timedelta(seconds=1))
    (world["crl_dir"] / "sign-g1-delta.crl").write_bytes(
        delta.public_bytes(serialization.Encoding.DER))
    ca = _pem_file(world["dir"] / "ca.pem", pki.sign_ca.certificate)
    ee = _pem_file(world["dir"] / "ee.pem", world["new"])
    full, delta_pem = _crl_pem(world, "sign-g1.crl"), _crl_pem(world, "sign-g1-delta.crl")
    only_full = _openssl("verify", "-crl_check", "-use_deltas", "-CAfile", str(ca),
                         "-CRLfile", str(full), str(ee))
    assert "OK" in only_full.stdout
    both = _openssl("verify", "-crl_check", "-use_deltas", "-CAfile", str(ca), "-CRLfile",
                    str(full), "-CRLfile", str(delta_pem), str(ee))
    assert "certificate revoked" in both.stdout + both.stderr


def _ocsp(world, cert: x509.Certificate, *extra: str) -> str:
    ca = _pem_file(world["dir"] / "ca.pem", world["pki"].sign_ca.certificate)
    ee = _pem_file(world["dir"] / "ee.pem", cert)
    done = _openssl("ocsp", "-issuer", str(ca), "-cert", str(ee), "-url",
                    world["server"].url + "/ocsp", "-CAfile", str(ca), *extra)
    return done.stdout + done.stderr


def test_openssl_ocsp_good_and_revoked_with_nonce(world):
    good = _ocsp(world, world["new"])
    assert "Response verify OK" in good and ": good" in good
    revoked = _ocsp(world, world["old"], "-resp_text")
    assert "Response verify OK" in revoked and ": revoked" in revoked
    assert "Affiliation Changed" in revoked or "affiliationChanged" in revoked
    assert "OCSP Nonce" in revoked and "WARNING" not in revoked


def test_openssl_ocsp_sees_configured_failures(world):
    world["server"].responder.failure = FailureMode.TRY_LATER
    assert "trylater" in _ocsp(world, world["new"])
    world["server"].responder.failure = FailureMode.UNAUTHORIZED
    assert "unauthorized" in _ocsp(world, world["new"])


def test_ocsp_over_get_and_unknown_serial(world):
    pki = world["pki"]
    for serial, expected in ((world["new"].serial_number, ocsp.OCSPCertStatus.GOOD),
                             (12345, ocsp.OCSPCertStatus.UNKNOWN)):
        builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
            _hash_name(pki), _hash_key(pki), serial, hashes.SHA1())
        request = builder.build().public_bytes(serialization.Encoding.DER)
        path = urllib.parse.quote(base64.b64encode(request).decode(), safe="")
        with urllib.request.urlopen(f"{world['server'].url}/ocsp/{path}", timeout=10) as r:
            response = ocsp.load_der_ocsp_response(r.read())
        assert response.certificate_status is expected
        assert response.serial_number == serial


def _hash_name(pki) -> bytes:
    digest = hashes.Hash(hashes.SHA1())
    digest.update(pki.sign_ca.certificate.subject.public_bytes(serialization.Encoding.DER))
    return digest.finalize()


def _hash_key(pki) -> bytes:
    from mynacard.jpki.certid import key_hash

    return key_hash(pki.sign_ca.certificate, hashes.SHA1())


def test_validator_fetches_crls_and_ocsp_from_the_certificate_urls(world):
    pki = world["pki"]
    for method in (RevocationMethod.CRL, RevocationMethod.OCSP):
        validator = Validator(pki.trust_anchors(), fetcher=http_fetch,
                              policy=Policy(methods=(method,), ocsp_nonce=b"0123456789abcdef"))
        assert validator.validate(world["new"]).verdict is Verdict.VALID
        old = validator.validate(world["old"])
        assert (old.verdict, old.reason) == (Verdict.REVOKED,
                                             x509.ReasonFlags.affiliation_changed)
        assert validator.validate(world["auth"]).verdict is Verdict.VALID


def test_server_refuses_non_loopback_addresses(pki, tmp_path):
    with pytest.raises(LoopbackOnly):
        RevocationServer("0.0.0.0", 0, tmp_path, OCSPResponder(pki))


def test_crl_numbers_increase_across_complete_and_delta(pki):
    now = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    numbers = [issue_crl(pki, SIGN_CA, 1, now), issue_delta_crl(pki, SIGN_CA, 1, now),
               issue_crl(pki, SIGN_CA, 1, now)]
    values = [c.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
              for c in numbers]
    assert values == sorted(values) and len(set(values)) == 3
    indicator = numbers[1].extensions.get_extension_for_class(x509.DeltaCRLIndicator).value
    assert indicator.crl_number == values[0]


def test_pki_serve_command_publishes_and_serves(pki, tmp_path):
    import socket
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mynacard", "pki", "serve", "--store",
         str(pki.path), "--crl-dir", str(tmp_path / "crl"), "--port", str(port),
         "--duration", "20"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/crl/sign-g1.crl",
                                            timeout=2) as response:
                    crl = x509.load_der_x509_crl(response.read())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert crl.is_signature_valid(pki.sign_ca.certificate.public_key())
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/crl/..%2Fpki.sqlite3", timeout=2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    refused = subprocess.run(
        [sys.executable, "-m", "mynacard", "pki", "serve", "--store",
         str(pki.path), "--host", "0.0.0.0", "--duration", "1"], capture_output=True, text=True,
        cwd=elsewhere)
    assert refused.returncode == 1 and "loopback addresses only" in refused.stderr
    assert not (elsewhere / "crl").exists()  # a refused command publishes nothing
