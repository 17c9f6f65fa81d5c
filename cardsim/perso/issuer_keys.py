"""The issuer's SCP03 master key, kept beside the simulator PKI: the card's ISD keys are
diversified from it at issuance, and the host's card manager derives the same keys."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ...fsutil import atomic_write
from ...gp.scp03 import MASTER_KEY_FILE, SCPError


def load_or_create_master(pki_dir: Path, *, create: bool = True) -> bytes:
    """The issuer's master key (32 bytes, hex, mode 0600) beside the simulator PKI; created
    on first use by issuance, only ever read by the host tools (``create=False``)."""
    path = Path(pki_dir) / MASTER_KEY_FILE
    if not create and not path.exists():
        raise SCPError(f"no issuer master key at {path}: use the --pki the card was issued with")
    if path.exists():
        try:
            key = bytes.fromhex(path.read_text().strip())
        except ValueError:
            raise SCPError(f"{path} is not a hex AES key") from None
        if len(key) not in (16, 32):
            raise SCPError(f"{path} must hold a 128- or 256-bit key")
        return key
    key = secrets.token_bytes(32)
    os.makedirs(path.parent, exist_ok=True)
    atomic_write(path, key.hex().encode(), mode=0o600)
    return key
