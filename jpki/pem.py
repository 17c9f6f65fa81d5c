"""PEM bundles, read with asn1crypto's armour parser (never a hand-written splitter)."""

from __future__ import annotations

from pathlib import Path

from asn1crypto import pem

from ..errors import MynacardError


class PEMError(MynacardError, ValueError):
    """A file that should hold PEM blocks (or one DER object) cannot be read as such."""


def load_bundle(path: Path, kind: str) -> list[bytes]:
    """DER of every PEM block labelled ``kind`` (e.g. ``CERTIFICATE``, ``X509 CRL``) in the
    file, or the file itself when it is not PEM (one DER object); empty file, empty list."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PEMError(f"{path}: cannot be read ({exc.strerror})") from None
    if not data.strip():
        return []
    if not pem.detect(data):
        return [data]
    try:
        return [der for label, _headers, der in pem.unarmor(data, multiple=True)
                if label == kind]
    except ValueError as exc:
        raise PEMError(f"{path}: not a valid PEM bundle ({exc})") from None
