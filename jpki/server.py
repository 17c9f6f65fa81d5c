"""``mynacard pki serve``: CRLs, delta CRLs, ARLs and the OCSP responder over HTTP on loopback.

GET /crl/<file>.crl            a DER file from the publication directory (application/pkix-crl)
POST /ocsp                     an OCSP request in the body (RFC 6960 §A.1)
GET /ocsp/<base64 request>     the same, URL-encoded base64 in the path

Binding anything but a loopback address is refused: the simulator's revocation service is for
tests on this machine.
"""

from __future__ import annotations

import base64
import ipaddress
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..errors import MynacardError
from .ocsp import OCSPResponder

MAX_REQUEST = 64 * 1024


class LoopbackOnly(MynacardError, ValueError):
    """The server may only listen on a loopback address."""


def check_loopback(host: str) -> None:
    """Raise ``LoopbackOnly`` unless ``host`` is a loopback address."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise LoopbackOnly(f"refusing to listen on {host}: loopback addresses only")


class _Handler(BaseHTTPRequestHandler):
    server: RevocationServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _ocsp(self, request: bytes) -> None:
        self._send(200, self.server.responder.respond(request), "application/ocsp-response")

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
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
            self._send(404, b"not found\n", "text/plain")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_REQUEST:
            self._send(413 if length else 400, b"bad request size\n", "text/plain")
            return
        self._ocsp(self.rfile.read(length))


class RevocationServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, crl_dir: Path, responder: OCSPResponder,
                 verbose: bool = False) -> None:
        check_loopback(host)
        self.crl_dir = Path(crl_dir)
        self.responder = responder
        self.verbose = verbose
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        return thread
