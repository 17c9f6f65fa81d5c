"""``mynacard vectors build``: write every case and its manifest, deterministically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..jpki.validate import Verdict
from .cases import MANIFEST, _crl_pem, _pem, cases


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
            "validation_time": case.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "method": case.method,
            "ocsp_nonce": case.nonce.hex() if case.nonce else None,
            "expected": {"result": "valid" if case.verdict is Verdict.VALID else "invalid",
                         "verdict": case.verdict.value,
                         "reason": case.reason.value if case.reason else None},
        })
    manifest = {"format": 1, "generator": "mynacard vectors build",
                "result_semantics": "result valid/invalid is what every validator must agree on; "
                                    "verdict and reason are this project's finer outcome",
                "cases": entries}
    _write(out / MANIFEST, (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode())
    return entries


