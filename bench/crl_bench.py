"""Million-entry CRL benchmark: our indexed CRL loader against ``openssl crl``, side by side.

Synthesises one realistic CRL, then measures in separate child processes (so that each peak
RSS is its own): ``openssl crl -inform DER -noout`` and our load + signature check + index
(``jpki.crlindex.CRLIndex``), then our lookups per second, hits and misses.

    python bench/crl_bench.py [--entries N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

OURS = r"""
import json, random, sys, time
from cryptography.hazmat.primitives import serialization
from mynacard.jpki.crlindex import CRLIndex
crl_path, key_path, serials_path = sys.argv[1:4]
public_key = serialization.load_pem_public_key(open(key_path, "rb").read())
start = time.perf_counter()
der = open(crl_path, "rb").read()
index = CRLIndex.load(der)
ok = index.verify_signature(public_key)
loaded = time.perf_counter() - start
present = [int(s) for s in open(serials_path).read().split()]
rng = random.Random(1)
absent = [rng.getrandbits(64) for _ in range(len(present))]  # 64-bit, like real serials
def rate(probes):
    t = time.perf_counter()
    for serial in probes:
        index.lookup(serial)
    return len(probes) / (time.perf_counter() - t)
print(json.dumps({"seconds": loaded, "signature_ok": ok, "entries": index.count,
                  "hit_lookups_per_s": rate(present), "miss_lookups_per_s": rate(absent)}))
"""

SYNTH = r"""
import datetime as dt, json, sys, time
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from mynacard.jpki.crlsynth import synthesize_crl
entries, crl_path, key_path, serials_path = int(sys.argv[1]), *sys.argv[2:5]
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
issuer = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "bench CA")])
start = time.perf_counter()
der, serials = synthesize_crl(issuer, key, entries, dt.datetime.now(dt.UTC), seed=1)
seconds = time.perf_counter() - start
open(crl_path, "wb").write(der)
open(key_path, "wb").write(key.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
open(serials_path, "w").write(" ".join(map(str, serials[:: max(1, len(serials) // 200_000)])))
print(json.dumps({"seconds": seconds, "bytes": len(der)}))
"""

REFERENCE = r"""
import sys, time
from cryptography import x509
crl = x509.load_der_x509_crl(open(sys.argv[1], "rb").read())
serial = int(sys.argv[2])
start = time.perf_counter()
for _ in range(5):
    crl.get_revoked_certificate_by_serial_number(serial)
print((time.perf_counter() - start) / 5)
"""


def _child(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MiB, stdout.

    Linux carries a process's RSS high-water mark across exec, so the parent that spawns the
    measured children must stay small: the CRL is synthesised in a child of its own."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed with {proc.returncode}")
        out.seek(0)
        return elapsed, usage.ru_maxrss / 1024, out.read().decode()


def run(entries: int = 1_000_000) -> list[tuple[str, str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        crl_path, key_path, serials_path = (str(Path(tmp) / n) for n in (
            "big.crl", "key.pem", "serials.txt"))
        _, _, output = _child([sys.executable, "-c", SYNTH, str(entries), crl_path, key_path,
                               serials_path])
        synth = json.loads(output)
        ssl_seconds, ssl_mib, _ = _child(["openssl", "crl", "-inform", "DER", "-noout", "-in",
                                          crl_path])
        _, our_mib, output = _child([sys.executable, "-c", OURS, crl_path, key_path,
                                     serials_path])
        ours = json.loads(output)
        probe = Path(serials_path).read_text().split()[0]
        _, _, reference = _child([sys.executable, "-c", REFERENCE, crl_path, probe])
    if not ours["signature_ok"] or ours["entries"] != entries:
        raise RuntimeError(f"our loader disagrees: {ours}")
    size, synth_seconds = synth["bytes"], synth["seconds"]
    speedup = ssl_seconds / ours["seconds"]
    hit_us = 1e6 / ours["hit_lookups_per_s"]
    miss_us = 1e6 / ours["miss_lookups_per_s"]
    return [
        (f"1M-entry CRL: openssl crl -inform DER -noout ({entries:,} entries, "
         f"{size / 2**20:.1f} MiB)", f"{ssl_seconds:.3f} s, {ssl_mib:.0f} MiB",
         f"baseline (CRL synthesised in {synth_seconds:.1f} s)"),
        ("1M-entry CRL: load + verify signature + index (jpki.crlindex)",
         f"{ours['seconds']:.3f} s, {our_mib:.0f} MiB",
         f"{speedup:.1f}x faster than openssl (target >= 3x); peak {our_mib:.0f} MiB "
         f"(target <= 200), {our_mib / ssl_mib:.2f}x openssl's"),
        ("1M-entry CRL: lookup of a listed serial (entry decoded)",
         f"{ours['hit_lookups_per_s']:,.0f}/s", f"{hit_us:.2f} us per lookup (target <= 2)"),
        ("1M-entry CRL: lookup of an unlisted serial", f"{ours['miss_lookups_per_s']:,.0f}/s",
         f"{miss_us:.2f} us per lookup (target <= 2)"),
        ("1M-entry CRL: cryptography get_revoked_certificate_by_serial_number",
         f"{float(reference) * 1e3:.1f} ms per call",
         f"{float(reference) * 1e6 / hit_us:,.0f}x slower than our lookup"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    rows = run(args.entries)
    width = max(len(r[0]) for r in rows)
    for name, figure, ratio in rows:
        print(f"{name:<{width}}  {figure:>22}  {ratio}")


if __name__ == "__main__":
    main()
