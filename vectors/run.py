"""``mynacard vectors run``: a validator (this project's, in process, or any command) over
every case of a manifest, with a pass/fail per case."""

from __future__ import annotations

import datetime as dt
import json
import shlex
import subprocess
from pathlib import Path
from typing import NamedTuple

from cryptography import x509

from ..errors import MynacardError
from ..jpki.pem import load_bundle
from ..jpki.validate import Policy, RevocationMethod, Validator, Verdict
from .cases import MANIFEST


class RunResult(NamedTuple):
    case_id: str
    expected: str
    got: str
    passed: bool


def _expected_text(entry: dict) -> str:
    exp = entry["expected"]
    return exp["verdict"] + (f" ({exp['reason']})" if exp["reason"] else "")


def validation_time(entry: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(entry["inputs"]["validation_time"].replace("Z", "+00:00"))


def policy_for(entry: dict) -> Policy:
    """The case's stated relying-party inputs as this project's validator policy."""
    inputs = entry["inputs"]
    revocation = inputs["revocation"]
    nonce = inputs["ocsp_nonce"]
    cp = inputs["certificate_policy"]
    return Policy(
        methods=(RevocationMethod(revocation["method"]),),
        require_revocation_info=revocation["required"],
        use_deltas=revocation["use_deltas"],
        ocsp_nonce=bytes.fromhex(nonce["sent"]) if nonce and nonce["required_in_response"]
        else None,
        clock_skew=dt.timedelta(seconds=inputs["clock_skew_seconds"]),
        initial_policy_set=frozenset(cp["initial_policy_set"]),
        initial_explicit_policy=cp["initial_explicit_policy"],
        initial_policy_mapping_inhibit=cp["initial_policy_mapping_inhibit"],
        initial_any_policy_inhibit=cp["initial_any_policy_inhibit"])


def run_case_in_process(root: Path, entry: dict) -> RunResult:
    d = root / entry["id"]
    validator = Validator(
        [x509.load_der_x509_certificate(b) for b in load_bundle(d / "anchors.pem",
                                                                      "CERTIFICATE")],
        [x509.load_der_x509_certificate(b) for b in load_bundle(d / "intermediates.pem",
                                                                      "CERTIFICATE")],
        sorted((p.read_bytes() for p in d.glob("crl-*.der")), key=len),
        [b for b in [(d / "ocsp.der").read_bytes()] if b],
        policy=policy_for(entry))
    result = validator.validate(load_bundle(d / "cert.pem", "CERTIFICATE")[0],
                                validation_time(entry))
    got = result.verdict.value + (f" ({result.reason.value})" if result.reason else "")
    return RunResult(entry["id"], _expected_text(entry), got, got == _expected_text(entry))


def run_case_command(root: Path, entry: dict, template: str, timeout: float) -> RunResult:
    d = root / entry["id"]
    when = validation_time(entry)
    nonce = entry["inputs"]["ocsp_nonce"]
    fields = {
        "dir": str(d), "cert": str(d / "cert.pem"), "anchors": str(d / "anchors.pem"),
        "intermediates": str(d / "intermediates.pem"), "chain": str(d / "chain.pem"),
        "crls": str(d / "crls.pem"),
        "crls_der": " ".join(str(p) for p in sorted(d.glob("crl-*.der"))),
        "ocsp": str(d / "ocsp.der"), "time": entry["inputs"]["validation_time"],
        "epoch": str(int(when.timestamp())), "method": entry["inputs"]["revocation"]["method"],
        "nonce": (nonce or {}).get("sent") or "",
    }
    argv = shlex.split(template.format(**{k: shlex.quote(v) if k != "crls_der" else v
                                          for k, v in fields.items()}))
    expected_valid = entry["expected"]["result"] == "valid"
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return RunResult(entry["id"], _expected_text(entry), f"error: {exc}"[:40], False)
    first = proc.stdout.decode(errors="replace").strip().split("\n")[0].strip()
    known = {v.value for v in Verdict}
    got = first if first in known else ("valid" if proc.returncode == 0 else "invalid")
    passed = (proc.returncode == 0) == expected_valid
    if first in known:
        passed = passed and first == entry["expected"]["verdict"]
    return RunResult(entry["id"], entry["expected"]["verdict"], got, passed)


class VectorsError(MynacardError):
    """The directory does not hold test vectors (no readable manifest)."""


def _manifest_cases(root: Path) -> list[dict]:
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VectorsError(f"{root} has no {MANIFEST}: not a vectors directory (write one with "
                           "`mynacard vectors build`)") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise VectorsError(f"{root / MANIFEST} is unreadable: {exc}") from None
    cases = manifest.get("cases") if isinstance(manifest, dict) else None
    if not isinstance(cases, list) or not cases:
        raise VectorsError(f"{root / MANIFEST} lists no cases")
    return cases


def run_vectors(root: Path, template: str | None = None, timeout: float = 60.0
                ) -> list[RunResult]:
    results = []
    for entry in _manifest_cases(Path(root)):
        if template is None:
            results.append(run_case_in_process(Path(root), entry))
        else:
            results.append(run_case_command(Path(root), entry, template, timeout))
    return results
