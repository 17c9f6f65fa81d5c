"""The revocation server under load and hostile clients, spoken to over real loopback sockets.

Keys are parsed once per CA generation while status is re-read per request; malformed requests
get a 4xx and never a traceback; slow clients are dropped at the request deadline; a burst of
concurrent OCSP clients is answered without a reset, every answer verified."""

from __future__ import annotations

import datetime as dt
import http.client
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import ocsp

from mynacard.jpki import ca as ca_module
from mynacard.jpki import lifecycle
from mynacard.jpki.ca import SimulatorPKI
from mynacard.jpki.ocsp import OCSPResponder
from mynacard.jpki.profile import SIGN_CA
from mynacard.jpki.server import MAX_PATH, MAX_REQUEST, RevocationServer

SLOW_TIMEOUT = 1.0  # the request deadline of the server in the slow-client tests
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def served(pki: SimulatorPKI, tmp_path) -> Iterator[RevocationServer]:
    server = RevocationServer("127.0.0.1", 0, tmp_path, OCSPResponder(pki),
                              request_timeout=SLOW_TIMEOUT)
    server.start_background()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def card(pki, resident, card_keys) -> lifecycle.CardCertificates:
    return lifecycle.issue_card(pki, resident, card_keys[0], card_keys[1],
                                NOW - dt.timedelta(days=1), dt.date(2035, 7, 14),
                                card_id="card-1")


def ocsp_request(issuer: x509.Certificate, cert: x509.Certificate, nonce: bytes) -> bytes:
    return (ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
            .add_extension(x509.OCSPNonce(nonce), critical=False).build()
            .public_bytes(serialization.Encoding.DER))


def post(server: RevocationServer, body: bytes) -> bytes:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request("POST", "/ocsp", body,
                           {"Content-Type": "application/ocsp-request"})
        answer = connection.getresponse()
        assert answer.status == 200
        return answer.read()
    finally:
        connection.close()


def verified(der: bytes, pki: SimulatorPKI, cert: x509.Certificate,
             nonce: bytes) -> ocsp.OCSPResponse:
    """The response, after checking it names ``cert`` and is signed by the responder that the
    certificate's own CA generation certified (RFC 6960 §4.2.2.2)."""
    response = ocsp.load_der_ocsp_response(der)
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.serial_number == cert.serial_number
    (responder,) = response.certificates
    # Certificates only, no key loaded: the test counts the server's key loads.
    issuer = next(ca for ca in (x509.load_der_x509_certificate(der)
                                for kind, _, der in pki.generation_certificates()
                                if kind is SIGN_CA)
                  if _signed_by(cert, ca))
    responder.verify_directly_issued_by(issuer)
    responder.public_key().verify(response.signature, response.tbs_response_bytes,
                                  padding.PKCS1v15(), response.signature_hash_algorithm)
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    return response


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # noqa: BLE001 - any failure means "not this issuer"
        return False
    return True


def test_keys_are_parsed_once_per_generation_and_status_is_read_per_request(
        served, pki, card, resident, card_keys, monkeypatch):
    issuer = pki.sign_ca.certificate
    loads = []
    real_load = ca_module._load_key
    monkeypatch.setattr(ca_module, "_load_key", lambda pem: loads.append(1) or real_load(pem))

    for i in range(10):
        nonce = b"first-%02d-padding" % i
        answer = verified(post(served, ocsp_request(issuer, card.sign, nonce)), pki, card.sign,
                          nonce)
        assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert len(loads) == 1  # the generation-1 responder key, once for ten answers

    # A lifecycle event in the store after the server started is answered at once.
    lifecycle.key_compromise(pki, "card-1", NOW)
    loads.clear()
    nonce = b"after-compromise"
    answer = verified(post(served, ocsp_request(issuer, card.sign, nonce)), pki, card.sign, nonce)
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason is x509.ReasonFlags.key_compromise
    assert loads == []

    # A rollover while serving: the new generation is answered with its own responder.
    pki.rollover(SIGN_CA, NOW)
    second = lifecycle.issue_card(pki, resident, card_keys[2], card_keys[3],
                                  NOW + dt.timedelta(seconds=1), dt.date(2035, 7, 14),
                                  card_id="card-2")
    assert pki.sign_ca.generation == 2
    new_issuer = pki.sign_ca.certificate
    loads.clear()
    for i in range(5):
        nonce = b"second-%02d-pad" % i
        answer = verified(post(served, ocsp_request(new_issuer, second.sign, nonce)),
                          pki, second.sign, nonce)
        assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
        nonce = b"old-gen-%02d-pad" % i
        answer = verified(post(served, ocsp_request(issuer, card.sign, nonce)), pki, card.sign,
                          nonce)
        assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert len(loads) == 1  # only the new generation's responder key


def raw_exchange(server: RevocationServer, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    with socket.create_connection(server.server_address[:2], timeout=5) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1."), answer[:80]
    return int(answer.split(b" ", 2)[1])


def _post_head(*headers: str) -> bytes:
    return ("POST /ocsp HTTP/1.1\r\nHost: localhost\r\n" + "".join(h + "\r\n" for h in headers)
            + "\r\n").encode()


@pytest.mark.parametrize(("request_bytes", "status"), [
    (_post_head("Content-Length: abc"), 400),
    (_post_head("Content-Length: -5") + b"hello", 400),
    (_post_head("Content-Length: +5") + b"hello", 400),
    (_post_head("Content-Length: 1_0") + b"0123456789", 400),
    (_post_head("Content-Length: 5", "Content-Length: 6") + b"hello!", 400),
    (_post_head(), 400),
    (_post_head("Content-Length: 0"), 400),
    (_post_head("Transfer-Encoding: chunked") + b"5\r\nhello\r\n0\r\n\r\n", 400),
    (_post_head(f"Content-Length: {MAX_REQUEST + 1}"), 413),
    (_post_head("Content-Length: " + "9" * 5000), 413),
    (b"GET /ocsp/" + b"A" * MAX_PATH + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
    (b"POST /ocsp" + b"/" * MAX_PATH + b" HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", 400),
    (b"GET /" + b"A" * 70000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"\x00\x01 junk NOT-HTTP/1.1\r\n\r\n", 400),
    (_post_head(*(f"X-{i}: y" for i in range(101)), "Content-Length: 1") + b"x", 431),
    (b"GET /ocsp/%%%not-base64 HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
], ids=["content-length-abc", "negative", "plus-sign", "underscore", "two-lengths",
        "no-length", "zero-length", "chunked", "over-limit", "thousands-of-digits",
        "long-get-path", "long-post-path", "request-line-over-64k", "garbage-request-line",
        "too-many-headers", "bad-base64"])
def test_malformed_requests_get_a_status_and_no_traceback(served, capsys, request_bytes, status):
    answer = raw_exchange(served, request_bytes)
    assert status_of(answer) == status
    assert "Traceback" not in capsys.readouterr().err


def test_garbage_ocsp_body_gets_malformed_request(served, capsys):
    response = ocsp.load_der_ocsp_response(post(served, b"\x30\x03\x02\x01\x00"))
    assert response.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert "Traceback" not in capsys.readouterr().err


def _wait_for_threads(at_most: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while threading.active_count() > at_most and time.monotonic() < deadline:
        time.sleep(0.05)
    return threading.active_count()


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return True


def test_slow_clients_are_dropped_at_the_deadline_and_release_their_threads(
        served, pki, card):
    baseline = threading.active_count()
    slow = []
    for i in range(60):
        sock = socket.create_connection(served.server_address[:2], timeout=5)
        # Half a request line, half a header block, or a body that never completes.
        sock.sendall([b"POST /ocsp HTTP/1.1\r\nHost: l", b"GET /crl/x.crl HTT",
                      _post_head("Content-Length: 100") + b"0123456789"][i % 3])
        slow.append(sock)
    # A byte every 0.3 s beats any per-read timeout: only a whole-request deadline stops it.
    started = time.monotonic()
    while time.monotonic() - started < SLOW_TIMEOUT * 0.8:
        for sock in slow:
            sock.send(b"x")
        time.sleep(0.3)
    # Slow clients do not block an honest one meanwhile.
    nonce = b"while-slow-load!"
    answer = verified(post(served, ocsp_request(pki.sign_ca.certificate, card.sign, nonce)),
                      pki, card.sign, nonce)
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert all(_closed_by_server(sock) for sock in slow)
    assert time.monotonic() - started < SLOW_TIMEOUT + 5
    for sock in slow:
        sock.close()
    assert _wait_for_threads(baseline, 5.0) <= baseline


def test_200_concurrent_ocsp_posts_get_valid_answers_without_a_reset(served, pki, card):
    clients = 200
    issuer = pki.sign_ca.certificate
    bodies = [ocsp_request(issuer, card.sign, b"nonce-%05d-pad" % i) for i in range(clients)]
    answers: dict[int, bytes] = {}
    failures: list[BaseException] = []
    start = threading.Barrier(clients)

    def client(i: int) -> None:
        try:
            start.wait(30)
            answers[i] = post(served, bodies[i])
        except BaseException as exc:  # noqa: BLE001 - recorded, asserted below
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert sorted(answers) == list(range(clients))
    for i, der in answers.items():
        answer = verified(der, pki, card.sign, b"nonce-%05d-pad" % i)
        assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD


def test_keep_alive_connection_answers_several_requests(served, pki, card):
    host, port = served.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        for i in range(3):
            nonce = b"keep-alive-%02d-p" % i
            connection.request("POST", "/ocsp", ocsp_request(pki.sign_ca.certificate,
                                                             card.sign, nonce))
            answer = connection.getresponse()
            assert answer.status == 200 and answer.getheader("Connection") is None
            verified(answer.read(), pki, card.sign, nonce)
    finally:
        connection.close()
