"""Fetching CRLs and OCSP responses over HTTP for the validator (``pki verify --fetch``)."""

from __future__ import annotations

import urllib.request

MAX_BODY = 512 * 1024 * 1024


def http_fetch(url: str, body: bytes | None, timeout: float = 10.0) -> bytes:
    """GET ``url``, or POST an OCSP request to it; raises OSError on any failure."""
    if not url.startswith("http://"):
        raise OSError(f"only http:// URLs are fetched, not {url}")
    request = urllib.request.Request(url, data=body, method="GET" if body is None else "POST")
    if body is not None:
        request.add_header("Content-Type", "application/ocsp-request")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http only
        data = response.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise OSError(f"{url}: response larger than {MAX_BODY} bytes")
    return data
