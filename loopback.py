"""HTTP servers that only ever listen on this machine: the PKI's CRL/OCSP server and the apps'
servers (the マイタク ledger) share the loopback rule and the routine parts of a threaded
server."""

from __future__ import annotations

import ipaddress
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .errors import MynacardError


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


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server bound to a loopback address, one daemon thread per connection."""

    daemon_threads = True

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        check_loopback(host)
        super().__init__((host, port), handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up or stalls mid-answer is routine here, not a server fault.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"
