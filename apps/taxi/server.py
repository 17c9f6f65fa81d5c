"""The ledger over HTTP on loopback (``mynacard app taxi serve``) and the terminal's side of a
sync (``mynacard app taxi sync``).

POST /online-ride — the online variant: body JSON ``{"terminal": …, "company": …, "fare":
yen, "riders": [link key, …]}``, the same MAC header; answer ``{"outcomes": [[link key,
rider, sequence, subsidy, refusal], …]}`` (``Ledger.online_ride``).

POST /sync — body: JSON ``{"terminal": "TAXI0001", "company": "…", "rides": [[rider hex,
receipt hex], …]}``; header ``X-Mynataxi-MAC``: hex HMAC-SHA-256 of the body under the
terminal's own key (the ledger rederives it from the terminal id), so only a provisioned
terminal uploads as itself. Answer: JSON with the accepted, duplicate, rejected and flagged
rides and the deny list (every stopped rider) dated by the ledger's clock, which the terminal
installs. A terminal marks as synced every ride the ledger answered for (accepted, duplicate or
rejected: a rejection is final), so a sync interrupted anywhere is simply run again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from ...clock import Clock, system_clock
from ...errors import MynacardError
from ...loopback import LoopbackHTTPServer
from .ledger import Ledger, LedgerError, OnlineOutcome, OnlineRefusal
from .terminal import Terminal, TerminalConfig

MAX_BODY = 16 * 1024 * 1024
"""A day of rides of one taxi is a few kilobytes; 1,000 rides are about 130 KB."""
MAC_HEADER = "X-Mynataxi-MAC"
TIMEOUT = 60.0


class SyncError(MynacardError):
    """The ledger could not be reached or refused the upload."""


def sync_mac(key: bytes, body: bytes) -> str:
    return hmac.new(key, b"mynataxi-sync" + body, hashlib.sha256).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    server: LedgerServer
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, answer: dict[str, Any]) -> None:
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, status: int, message: str) -> None:
        # The body may be unread: this connection cannot carry another request.
        self.close_connection = True
        self._send(status, {"error": message})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        if self.path not in ("/sync", "/online-ride"):
            self._refuse(404, "not found")
            return
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or not 0 < int(length) <= MAX_BODY:
            self._refuse(413 if length.isdigit() else 400, "one Content-Length up to 16 MiB")
            return
        body = self.rfile.read(int(length))
        if self.path == "/online-ride":
            self._online_ride(body)
            return
        try:
            request = json.loads(body)
            terminal_id = request["terminal"].encode("ascii")
            company = str(request["company"])
            rides = [(str(rider), bytes.fromhex(receipt)) for rider, receipt in request["rides"]]
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeError):
            self._refuse(400, "malformed sync request")
            return
        ledger = self.server.ledger
        expected = sync_mac(ledger.keys.terminal_key(terminal_id), body)
        if not hmac.compare_digest(expected, self.headers.get(MAC_HEADER, "")):
            self._refuse(403, "the upload is not authenticated by this terminal's key")
            return
        now = self.server.clock()
        try:
            outcome = ledger.sync(terminal_id, company, rides, now)
            deny = ledger.deny_list()
        except MynacardError as exc:
            self._send(503, {"error": str(exc)})
            return
        self._send(200, {
            "accepted": outcome.accepted, "duplicates": outcome.duplicates,
            "rejected": [[r, s, why.value] for r, s, why in outcome.rejected],
            "flagged": [[r, s, why.value] for r, s, why in outcome.flagged],
            "deny": deny, "deny_issued_at": now.isoformat()})

    def _online_ride(self, body: bytes) -> None:
        try:
            request = json.loads(body)
            terminal_id = request["terminal"].encode("ascii")
            company, fare = str(request["company"]), int(request["fare"])
            link_keys = [str(k) for k in request["riders"]]
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeError):
            self._refuse(400, "malformed online-ride request")
            return
        ledger = self.server.ledger
        if not hmac.compare_digest(sync_mac(ledger.keys.terminal_key(terminal_id), body),
                                   self.headers.get(MAC_HEADER, "")):
            self._refuse(403, "the request is not authenticated by this terminal's key")
            return
        try:
            outcomes = ledger.online_ride(terminal_id, company, link_keys, fare,
                                          self.server.clock())
        except MynacardError as exc:
            self._send(400 if isinstance(exc, LedgerError) else 503, {"error": str(exc)})
            return
        self._send(200, {"outcomes": [
            [o.link_key, o.rider, o.sequence, o.subsidy, o.refusal.value if o.refusal else None]
            for o in outcomes]})

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path == "/deny-list":
            self._send(200, {"deny": self.server.ledger.deny_list(),
                             "deny_issued_at": self.server.clock().isoformat()})
        else:
            self._send(404, {"error": "not found"})


class LedgerServer(LoopbackHTTPServer):
    request_queue_size = 1024  # 80 taxis back at the depot at once wait in the kernel queue

    def __init__(self, host: str, port: int, ledger: Ledger, *, clock: Clock = system_clock,
                 verbose: bool = False) -> None:
        self.ledger = ledger
        self.clock = clock
        self.verbose = verbose
        super().__init__(host, port, _Handler)


@dataclass(frozen=True)
class SyncReport:
    uploaded: int
    accepted: int
    duplicates: int
    rejected: list[tuple[str, int, str]]
    flagged: list[tuple[str, int, str]]
    deny: int


def sync_terminal(terminal: Terminal, url: str, *, timeout: float = TIMEOUT) -> SyncReport:
    """Upload the terminal's unsynced rides, mark the answered ones, install the deny list."""
    queued = terminal.queued(unsynced_only=True)
    config = terminal.config
    body = json.dumps({"terminal": config.terminal_id.decode(), "company": config.company,
                       "rides": [[rider, r.encode().hex()] for rider, r in queued]}).encode()
    request = urllib.request.Request(
        url.rstrip("/") + "/sync", data=body, method="POST",
        headers={"Content-Type": "application/json",
                 MAC_HEADER: sync_mac(config.terminal_key, body)})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:200]
        raise SyncError(f"the ledger refused the sync ({exc.code}): {detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SyncError(f"cannot reach the ledger at {url}: {exc}") from None
    answered = [(r, s) for r, s in answer["accepted"] + answer["duplicates"]]
    answered += [(r, s) for r, s, _ in answer["rejected"] if s >= 0]
    terminal.mark_synced(answered)
    terminal.install_deny_list(answer["deny"], dt.datetime.fromisoformat(answer["deny_issued_at"]))
    return SyncReport(len(queued), len(answer["accepted"]), len(answer["duplicates"]),
                      [tuple(x) for x in answer["rejected"]],
                      [tuple(x) for x in answer["flagged"]], len(answer["deny"]))


def ask_online_ride(config: TerminalConfig, url: str, link_keys: list[str], fare: int, *,
                    timeout: float = TIMEOUT) -> list[OnlineOutcome]:
    """The online terminal's question to the ledger: count these tapped riders on this fare."""
    body = json.dumps({"terminal": config.terminal_id.decode(), "company": config.company,
                       "fare": fare, "riders": link_keys}).encode()
    request = urllib.request.Request(
        url.rstrip("/") + "/online-ride", data=body, method="POST",
        headers={"Content-Type": "application/json",
                 MAC_HEADER: sync_mac(config.terminal_key, body)})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
        return [OnlineOutcome(k, r, s, subsidy, OnlineRefusal(why) if why else None)
                for k, r, s, subsidy, why in answer["outcomes"]]
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:200]
        raise SyncError(f"the ledger refused the ride ({exc.code}): {detail}") from None
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as exc:
        raise SyncError(f"cannot reach the ledger at {url}: {exc}") from None
