"""Moving a device's records to headquarters: a signed bundle, carried as a file (USB, the
西宮 "物理的な運搬" model) or POSTed over HTTP; both carry the same bytes.

Each device signs with its own Ed25519 key (``cryptography``); headquarters trusts a folder of
device public keys (``<device>.pub.pem``), so a bundle proves which device wrote it and that
nothing was changed on the way. A bundle holds only what its device made: the merge
(``RosterStore.merge``) is a union, so bundles can arrive in any order, twice, or through a
relay. Tap links and My Numbers are never in a bundle.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .model import ShelterError
from .store import MergeResult, RosterStore

BUNDLE_FORMAT = "mynacard-shelter-bundle"
BUNDLE_VERSION = 1
MAX_BUNDLE_BYTES = 256 * 1024 * 1024


class BundleError(ShelterError):
    """A bundle is malformed, unsigned, signed by an unknown device, or altered."""


def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def new_device_key(folder: Path, device_id: str) -> Path:
    """Write ``<device>.key.pem`` (private, mode 600) and ``<device>.pub.pem``; answer the
    public key's path (the file headquarters adds to its trust folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private = folder / f"{device_id}.key.pem"
    if private.exists():
        raise ShelterError(f"{private} exists: a device keeps its key")
    private.touch(mode=0o600)
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public = folder / f"{device_id}.pub.pem"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return public


def load_device_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ShelterError(f"cannot load the device key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ShelterError(f"{path} is not an Ed25519 private key")
    return key


def load_trusted_devices(folder: Path) -> dict[str, Ed25519PublicKey]:
    trusted = {}
    for pem in sorted(Path(folder).glob("*.pub.pem")):
        try:
            key = serialization.load_pem_public_key(pem.read_bytes())
        except ValueError as exc:
            raise ShelterError(f"{pem}: not a PEM public key ({exc})") from None
        if isinstance(key, Ed25519PublicKey):
            trusted[pem.name.removesuffix(".pub.pem")] = key
    if not trusted:
        raise ShelterError(f"no device public keys (<device>.pub.pem) in {folder}")
    return trusted


def make_bundle(store: RosterStore, key: Ed25519PrivateKey, created: str) -> bytes:
    payload = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "device": store.device_id,
               "created": created, "records": store.own_records()}
    body = _canonical(payload)
    return json.dumps({"payload": base64.b64encode(body).decode("ascii"),
                       "signature": key.sign(body).hex()}).encode("ascii")


def open_bundle(data: bytes, trusted: dict[str, Ed25519PublicKey]) -> dict[str, Any]:
    """The verified payload, or BundleError naming what is wrong."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError("bundle too large")
    try:
        outer = json.loads(data)
        body = base64.b64decode(outer["payload"], validate=True)
        signature = bytes.fromhex(outer["signature"])
        payload = json.loads(body)
        device = payload["device"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"not a shelter bundle: {exc}") from None
    if payload.get("format") != BUNDLE_FORMAT or payload.get("version") != BUNDLE_VERSION:
        raise BundleError("not a shelter bundle of a known version")
    key = trusted.get(device)
    if key is None:
        raise BundleError(f"bundle from unknown device {device!r}: add its public key first")
    try:
        key.verify(signature, body)
    except InvalidSignature:
        raise BundleError(f"bundle from {device!r} does not verify: altered or not "
                          "signed by that device") from None
    records = payload.get("records")
    if not isinstance(records, dict) or any(
            not isinstance(rows, list) or any(not isinstance(r, dict) for r in rows)
            for rows in records.values()):
        raise BundleError("bundle records are malformed")
    for table in ("shelter_household", "shelter_person", "shelter_shelter"):
        if any(row.get("origin") != device for row in records.get(table, [])):
            raise BundleError(f"bundle from {device!r} carries rows of another device")
    if any(row.get("device_id") != device for row in records.get("shelter_event", [])):
        raise BundleError(f"bundle from {device!r} carries events of another device")
    return payload


def import_bundle(store: RosterStore, data: bytes,
                  trusted: dict[str, Ed25519PublicKey]) -> MergeResult:
    return store.merge(open_bundle(data, trusted)["records"])


def push(url: str, bundle: bytes, timeout: float = 30.0) -> dict[str, Any]:
    """POST a bundle to a headquarters ``…/api/bundle`` endpoint; answers its JSON reply."""
    request = urllib.request.Request(url, data=bundle, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise ShelterError(f"{url} refused the bundle: {exc.code} "
                           f"{exc.read().decode('utf-8', 'replace')[:300]}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ShelterError(f"cannot reach headquarters at {url}: {exc}") from None
