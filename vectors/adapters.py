"""Validators nobody here wrote, driven as careful relying parties over the revocation cases.

Each adapter turns a case's stated inputs (``manifest.json`` ``inputs``) into that validator's
own options and answers ``valid`` or ``invalid`` plus a short detail. They never judge a case
themselves: whatever the validator prints decides.

- ``openssl``: ``openssl verify`` with ``-crl_check`` once per certificate below the trust
  anchor (the end entity, then each intermediate as its own target), so every certificate of
  the path is checked while the anchor, which RFC 5280 never checks, needs no CRL (what
  ``-crl_check_all`` would demand); ``-use_deltas`` when the case sets use-deltas. OCSP cases
  add ``openssl ocsp -respin`` with a request carrying the case's nonce (``-reqin``), so
  OpenSSL itself compares the nonces.
- ``pyhanko``: pyhanko-certvalidator's ``CertificateValidator`` with hard-fail revocation,
  no fetching, the case's time and a zero time tolerance.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ..errors import MynacardError
from ..jpki.pem import load_bundle


class AdapterError(MynacardError):
    """The validator an adapter drives is not installed or cannot run."""


class Answer(NamedTuple):
    valid: bool
    detail: str


def _time(entry: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(entry["inputs"]["validation_time"].replace("Z", "+00:00"))


def _certs(path: Path) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(b) for b in load_bundle(path, "CERTIFICATE")]


# --- OpenSSL ----------------------------------------------------------------------------------

def openssl_version() -> str:
    try:
        out = subprocess.run(["openssl", "version"], capture_output=True, text=True,
                             check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise AdapterError(f"openssl is not runnable: {exc}") from None
    return " ".join(out.split()[:2])


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:100] if lines else ""


def openssl_case(root: Path, entry: dict) -> Answer:
    d = root / entry["id"]
    inputs = entry["inputs"]
    epoch = str(int(_time(entry).timestamp()))
    has_intermediates = bool((d / "intermediates.pem").read_bytes().strip())
    common = ["openssl", "verify", "-attime", epoch, "-CAfile", str(d / "anchors.pem"),
              "-no-CApath", "-no-CAstore"]
    if has_intermediates:
        common += ["-untrusted", str(d / "intermediates.pem")]
    if inputs["revocation"]["method"] == "ocsp":
        chain = _run([*common, str(d / "cert.pem")])
        if chain.returncode != 0:
            return Answer(False, _last_line(chain.stderr or chain.stdout))
        return _openssl_ocsp(d, inputs, epoch)
    if (d / "crls.pem").read_bytes().strip():
        common += ["-CRLfile", str(d / "crls.pem"), "-crl_check"]
    else:
        common += ["-crl_check"]  # no CRL at all: OpenSSL must report it missing
    if inputs["revocation"]["use_deltas"]:
        common.append("-use_deltas")
    targets = [d / "cert.pem"]
    if inputs["revocation"]["scope"] == "full-path":
        targets += _split_bundle(d / "intermediates.pem")
    try:
        for target in targets:
            proc = _run([*common, str(target)])
            if proc.returncode != 0:
                return Answer(False, _last_line(proc.stderr or proc.stdout))
    finally:
        for target in targets[1:]:
            target.unlink(missing_ok=True)
    return Answer(True, "OK")


def _split_bundle(path: Path) -> list[Path]:
    """One temporary PEM file per certificate of ``path`` (openssl verify checks one target)."""
    out = []
    for cert in _certs(path):
        with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        out.append(Path(f.name))
    return out


def _openssl_ocsp(d: Path, inputs: dict, epoch: str) -> Answer:
    cert = _certs(d / "cert.pem")[0]
    issuer = next(a for a in _certs(d / "anchors.pem") if a.subject == cert.issuer)
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256())
    nonce = inputs["ocsp_nonce"]
    if nonce and nonce["sent"]:
        builder = builder.add_extension(x509.OCSPNonce(bytes.fromhex(nonce["sent"])),
                                        critical=False)
    with tempfile.TemporaryDirectory() as tmp:
        request = Path(tmp) / "request.der"
        request.write_bytes(builder.build().public_bytes(serialization.Encoding.DER))
        issuer_pem = Path(tmp) / "issuer.pem"
        issuer_pem.write_bytes(issuer.public_bytes(serialization.Encoding.PEM))
        proc = _run(["openssl", "ocsp", "-reqin", str(request), "-respin", str(d / "ocsp.der"),
                     # The responses identify certificates by SHA-256 CertIDs.
                     "-issuer", str(issuer_pem), "-sha256", "-cert", str(d / "cert.pem"),
                     "-CAfile", str(d / "anchors.pem"), "-no-CApath", "-no-CAstore",
                     "-attime", epoch, "-no_nonce"])
    # openssl ocsp exits 0 for a revoked or unknown status and for an unsuccessful response:
    # only "Response verify OK" plus "<cert>: good" means good. Its thisUpdate/nextUpdate
    # check uses the real clock, not -attime, so its warning says nothing about the case.
    status = re.search(r"(?:^|:)\s*(good|revoked|unknown)\s*$", proc.stdout, re.MULTILINE)
    verified = "Response verify OK" in proc.stderr
    if proc.returncode == 0 and verified and status and status.group(1) == "good":
        return Answer(True, "OCSP good")
    detail = status.group(1) if status and verified else _last_line(proc.stderr or proc.stdout)
    return Answer(False, f"OCSP {detail}")


# --- pyhanko-certvalidator --------------------------------------------------------------------

def pyhanko_version() -> str:
    try:
        from importlib.metadata import version

        return f"pyhanko-certvalidator {version('pyhanko-certvalidator')}"
    except ImportError as exc:  # PackageNotFoundError derives from ImportError
        raise AdapterError(f"pyhanko-certvalidator is not installed: {exc}") from None


def pyhanko_case(root: Path, entry: dict) -> Answer:
    try:
        from asn1crypto import x509 as asn1_x509
        from pyhanko_certvalidator import CertificateValidator, ValidationContext
        from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError
    except ImportError as exc:
        raise AdapterError(f"pyhanko-certvalidator is not installed: {exc}") from None
    d = root / entry["id"]

    def load(path: Path) -> list[asn1_x509.Certificate]:
        return [asn1_x509.Certificate.load(b) for b in load_bundle(path, "CERTIFICATE")]

    inputs = entry["inputs"]
    ocsp_der = (d / "ocsp.der").read_bytes()
    context = ValidationContext(
        trust_roots=load(d / "anchors.pem"), other_certs=load(d / "intermediates.pem"),
        crls=[p.read_bytes() for p in sorted(d.glob("crl-*.der"))],
        ocsps=[ocsp_der] if ocsp_der else [], moment=_time(entry),
        allow_fetching=False, revocation_mode="hard-fail",
        time_tolerance=dt.timedelta(seconds=inputs["clock_skew_seconds"]))
    validator = CertificateValidator(load(d / "cert.pem")[0],
                                     load(d / "intermediates.pem"), validation_context=context)
    try:
        asyncio.run(validator.async_validate_usage(set()))
    except (PathBuildingError, PathValidationError) as exc:
        return Answer(False, f"{type(exc).__name__}: {exc}"[:100])
    except Exception as exc:  # noqa: BLE001 - a crash inside the validator is its answer
        return Answer(False, f"crashed: {type(exc).__name__}: {exc}"[:100])
    return Answer(True, "valid")


ADAPTERS: dict[str, tuple[Callable[[], str], Callable[[Path, dict], Answer]]] = {
    "openssl": (openssl_version, openssl_case),
    "pyhanko": (pyhanko_version, pyhanko_case),
}
