"""``mynacard pki serve``: CRLs, delta CRLs, ARLs and the OCSP responder over HTTP on loopback.

GET /crl/<file>.crl            a DER file from the publication directory (application/pkix-crl)
POST /ocsp                     an OCSP request in the body (RFC 6960 §A.1)
GET /ocsp/<base64 request>     the same, URL-encoded base64 in the path

Binding anything but a loopback address is refused: the simulator's revocation service is for
tests on this machine.

Hostile or slow clients: each connection has its own thread, and each request (request line,
headers and body) must arrive within ``request_timeout`` seconds in total, else the connection is
dropped — a client trickling one byte at a time cannot hold a thread longer than that. Connections
are kept alive (HTTP/1.1) between requests for at most the same time. Bad requests get a status,
never a traceback: a path over ``MAX_PATH`` bytes, a missing, non-numeric, negative or repeated
Content-Length, or a chunked body answer 400; a body over ``MAX_REQUEST`` answers 413; a request
line over 64 KiB answers 414 (the standard library's own limit, checked before ours).
"""

from __future__ import annotations

import base64
import io
import re
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from ..loopback import LoopbackHTTPServer
from .ocsp import OCSPResponder

MAX_REQUEST = 64 * 1024
MAX_PATH = 8 * 1024
REQUEST_TIMEOUT = 10.0
# Far above the standard library's 5, so a burst of clients waits in the kernel queue instead of
# being refused (the kernel caps it at net.core.somaxconn).
LISTEN_BACKLOG = 1024
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


class _DeadlineReader(io.RawIOBase):
    """Socket reads that share one deadline per request, not a fresh timeout per ``recv``."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        super().__init__()
        self._sock = sock
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds

    def restart(self) -> None:
        self._deadline = time.monotonic() + self._seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request not received in time")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    server: RevocationServer
    protocol_version = "HTTP/1.1"  # keep-alive: OCSP clients often send several requests
    # Not HTTP/0.9 (the stdlib default), so even an unparseable request line gets a status line.
    default_request_version = "HTTP/1.0"
    # Headers and body leave in two writes; with Nagle on, a keep-alive client waits for the
    # delayed ACK (40 ms) on every answer.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        # Writes get the plain timeout; reads go through the per-request deadline.
        self.connection.settimeout(self.server.request_timeout)
        self._reader = _DeadlineReader(self.connection, self.server.request_timeout)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        self._reader.restart()
        super().handle_one_request()

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if len(self.path) > MAX_PATH:
            self._refuse(400, b"path too long\n")
            return False
        return True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        if self.server.verbose:
            super().log_message(format, *args)

    def _refuse(self, status: int, body: bytes) -> None:
        # The rest of the request was not read: the connection cannot carry another one.
        self.close_connection = True
        self._send(status, body, "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _ocsp(self, request: bytes) -> None:
        self._send(200, self.server.responder.respond(request), "application/ocsp-response")

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if "Content-Length" in self.headers or "Transfer-Encoding" in self.headers:
            # A body we do not read would be taken for the next request.
            self.close_connection = True
        path = urllib.parse.unquote(self.path)
        if path.startswith("/crl/"):
            name = path[len("/crl/"):]
            target = self.server.crl_dir / name
            if "/" in name or not name.endswith(".crl") or not target.is_file():
                self._send(404, b"no such CRL\n", "text/plain")
                return
            self._send(200, target.read_bytes(), "application/pkix-crl")
        elif path.startswith("/ocsp/"):
            try:
                request = base64.b64decode(path[len("/ocsp/"):], validate=True)
            except ValueError:
                self._send(400, b"bad base64\n", "text/plain")
                return
            self._ocsp(request)
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        if self.path.rstrip("/") != "/ocsp":
            self._refuse(404, b"not found\n")
            return
        if self.headers.get("Transfer-Encoding") is not None:
            self._refuse(400, b"send the request with a Content-Length, not chunked\n")
            return
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) != 1 or not _DIGITS.fullmatch(lengths[0].strip()):
            self._refuse(400, b"one decimal Content-Length is required\n")
            return
        text = lengths[0].strip().lstrip("0") or "0"
        # Too many digits is too large, and int() of thousands of digits would raise.
        length = int(text) if len(text) <= len(str(MAX_REQUEST)) else MAX_REQUEST + 1
        if length == 0:
            self._refuse(400, b"empty OCSP request\n")
            return
        if length > MAX_REQUEST:
            self._refuse(413, b"OCSP request too large\n")
            return
        body = self.rfile.read(length)
        if len(body) < length:  # the client closed before sending the whole body
            self.close_connection = True
            return
        self._ocsp(body)


class RevocationServer(LoopbackHTTPServer):
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, host: str, port: int, crl_dir: Path, responder: OCSPResponder,
                 verbose: bool = False, request_timeout: float = REQUEST_TIMEOUT) -> None:
        self.crl_dir = Path(crl_dir)
        self.responder = responder
        self.verbose = verbose
        self.request_timeout = request_timeout
        super().__init__(host, port, _Handler)

    def start_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        return thread
