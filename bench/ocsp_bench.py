"""OCSP benchmark: signed responses per second from ``mynacard pki serve``, beside the raw RSA
signature rate of the same responder key on this machine, measured alternately in one run.

Run alone (``python bench/ocsp_bench.py``) or through ``bench/run.py``. The server runs in its own
process pinned to one CPU (as a user starts it); the clients run here, on the other CPU when
there is one, over keep-alive connections. Goal: ≥ 1,000 signed responses/s on one core, and no
connection reset when 200 clients connect at once. A signed response cannot be faster than one
RSA-2048 signature, so the ratio to the raw signature rate is the share the server keeps.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp

from mynacard.facts.person import Resident, Sex
from mynacard.jpki import lifecycle
from mynacard.jpki.ca import SimulatorPKI, new_rsa_key
from mynacard.jpki.profile import SIGN_CA

Row = tuple[str, str, str]
PROJECT = Path(__file__).resolve().parent.parent
GOAL_PER_SECOND = 1000
CLIENT_THREADS = 8
ROUND_SECONDS = 1.5
ROUNDS = 3
BURST_CLIENTS = 200
RESIDENT = Resident("佐藤", "一郎", "東京都清瀬市竹丘三丁目3番3号", dt.date(1990, 7, 14), Sex.MALE,
                    "Tokyo-to", "Kiyose-shi", "13221")


def _http_post(body: bytes) -> bytes:
    return (b"POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request"
            b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def _read_response(sock: socket.socket, buffer: bytearray) -> bytes:
    """One HTTP response body from a keep-alive connection (our server always sends a length)."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"server answered {head[:40]!r}")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection mid-answer")
        rest += chunk
    buffer[:] = rest[length:]
    return rest[:length]


def _responses_per_second(address: tuple[str, int], request: bytes, seconds: float) -> float:
    counts = [0] * CLIENT_THREADS
    stop = time.monotonic() + seconds

    def client(slot: int) -> None:
        with socket.create_connection(address, timeout=30) as sock:
            buffer = bytearray()
            while time.monotonic() < stop:
                sock.sendall(request)
                _read_response(sock, buffer)
                counts[slot] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENT_THREADS)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - start)


def _sign_rate(key: rsa.RSAPrivateKey, seconds: float) -> float:
    message = b"tbsResponseData stand-in" * 20
    count, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        count += 1
    return count / (time.monotonic() - start)


def _burst(address: tuple[str, int], request: bytes) -> tuple[int, int, float]:
    """(valid answers, failed clients, seconds) when BURST_CLIENTS connect at once."""
    answers: list[bytes] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(BURST_CLIENTS)

    def client() -> None:
        try:
            barrier.wait(30)
            with socket.create_connection(address, timeout=30) as sock:
                sock.sendall(request)
                answers.append(_read_response(sock, bytearray()))
        except (OSError, RuntimeError, threading.BrokenBarrierError) as exc:
            failures.append(exc)

    threads = [threading.Thread(target=client) for _ in range(BURST_CLIENTS)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    valid = sum(ocsp.load_der_ocsp_response(a).certificate_status is ocsp.OCSPCertStatus.GOOD
                for a in answers)
    return valid, len(failures), elapsed


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {cpu})


def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pki = SimulatorPKI.open(work / "pki")
        card = lifecycle.issue_card(pki, RESIDENT, new_rsa_key().public_key(),
                                    new_rsa_key().public_key(),
                                    dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
                                    dt.date(2035, 7, 14))
        issuer = pki.sign_ca.certificate
        responder_key = pki.responder(SIGN_CA, 1).key
        request = _http_post(
            ocsp.OCSPRequestBuilder().add_certificate(card.sign, issuer, hashes.SHA1())
            .add_extension(x509.OCSPNonce(b"0123456789abcdef"), critical=False).build()
            .public_bytes(serialization.Encoding.DER))
        pki.store.close()
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
        server = subprocess.Popen(
            [sys.executable, "-m", "mynacard", "pki", "serve", "--store", str(work / "pki"),
             "--crl-dir", str(work / "crl"), "--port", "0", "--no-publish"],
            cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=lambda: _pin(cpus[0]))
        try:
            assert server.stderr is not None
            url = server.stderr.readline().decode().rsplit(" ", 1)[-1].strip()
            host, port = url.removeprefix("http://").rsplit(":", 1)
            address = (host, int(port))
            _pin(cpus[-1])
            _responses_per_second(address, request, 0.3)  # warm-up: keys parsed, caches filled
            served, raw = [], []
            for _ in range(ROUNDS):  # alternated, so drift hits both alike
                raw.append(_sign_rate(responder_key, ROUND_SECONDS))
                served.append(_responses_per_second(address, request, ROUND_SECONDS))
            valid, failed, elapsed = _burst(address, request)
        finally:
            server.terminate()
            server.wait(10)
            os.sched_setaffinity(0, set(cpus)) if hasattr(os, "sched_setaffinity") else None
    served_rate, raw_rate = statistics.median(served), statistics.median(raw)
    return [
        (f"OCSP signed responses, pki serve on one CPU ({CLIENT_THREADS} keep-alive clients)",
         f"{served_rate:,.0f} responses/s",
         f"{served_rate / raw_rate:.2f}× the raw RSA-2048 sign rate; goal ≥ {GOAL_PER_SECOND:,}/s: "
         f"{'met' if served_rate >= GOAL_PER_SECOND else 'MISSED'}"),
        ("raw RSA-2048 PKCS#1 v1.5 signatures, responder key (baseline)",
         f"{raw_rate:,.0f} signatures/s", "the ceiling for one core: one signature per response"),
        (f"OCSP burst: {BURST_CLIENTS} clients connecting at once",
         f"{valid}/{BURST_CLIENTS} good answers",
         f"{failed} failed or reset; all answered in {elapsed:.2f} s"),
    ]


if __name__ == "__main__":
    rows = run()
    width = max(len(row[0]) for row in rows)
    for name, figure, note in rows:
        print(f"{name:<{width}}  {figure:>24}  {note}")
