"""The card image on disk: a directory holding the card's non-volatile memory.

* ``card.json`` — everything that changes rarely (file contents, keys, PIN values,
  options), rewritten atomically (temp file, fsync, rename) and sealed by a SHA-256.
* ``counters.bin`` — the PIN retry counters, each a byte and its complement at a
  fixed offset, updated in place with a single small write. That write reaches the
  kernel before the PIN comparison, so a kill of the simulator at any moment (the
  simulated card's tear) never gains a try; with ``sync`` it also reaches the disk
  before the comparison and survives a power loss of the host, at one fdatasync per
  VERIFY. A torn or corrupted slot is detected on load, never silently repaired.
* ``lock`` — an advisory lock so that two processes never drive one card at once.

Loading anything malformed raises ``CardImageError``; it never yields a fresh card.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import MynacardError
from ..fsutil import atomic_write

IMAGE_FORMAT = "mynacard-card-image"
IMAGE_VERSION = 1
COUNTERS_MAGIC = b"MYNACTR1"
SYNC_ENV = "MYNACARD_SYNC"


def image_key(app: str, ref: int | str) -> str:
    """The one spelling of a card-image entry: ``"<app>/<FID as 4 hex digits>"`` for a file,
    key or PIN, ``"<app>/<name>"`` for a named item (``isd/scp-keys``)."""
    return f"{app}/{ref:04X}" if isinstance(ref, int) else f"{app}/{ref}"


def default_sync() -> bool:
    """Whether counter updates wait for the disk: off unless ``MYNACARD_SYNC=1``."""
    return os.environ.get(SYNC_ENV, "") == "1"


class CardImageError(MynacardError):
    """The card image is missing, corrupt, truncated, or of an unknown format."""


class PowerLoss(BaseException):  # noqa: N818 - an event, not an error: it must not be handled
    """Injected power loss: the card stops mid-write. Not an ``Exception``, so nothing on the
    card answers it with a status word; only the test harness (or the reader) catches it."""


class CardImageInUseError(CardImageError):
    """Another process holds the card image."""


@dataclass(slots=True)
class ImageContent:
    """The slowly-changing part of a card's memory, keyed ``"<application>/<fid hex>"``."""

    atr: str
    files: dict[str, bytes]
    keys: dict[str, bytes]
    """PKCS#8 DER private keys."""
    pins: dict[str, bytes]
    counter_max: dict[str, int]
    """Retry limit per PIN key reference; the live counters are in ``counters.bin``."""
    options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    """Issuance facts shown by ``mynacard card show``; never read by the card itself."""

    def to_json(self) -> dict[str, Any]:
        b64 = _b64encode
        return {
            "atr": self.atr,
            "files": {k: b64(v) for k, v in sorted(self.files.items())},
            "keys": {k: b64(v) for k, v in sorted(self.keys.items())},
            "pins": {k: b64(v) for k, v in sorted(self.pins.items())},
            "counter_max": dict(sorted(self.counter_max.items())),
            "options": self.options,
            "metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ImageContent:
        try:
            b64 = _b64decode
            return cls(
                atr=str(body["atr"]),
                files={str(k): b64(v) for k, v in body["files"].items()},
                keys={str(k): b64(v) for k, v in body["keys"].items()},
                pins={str(k): b64(v) for k, v in body["pins"].items()},
                counter_max={str(k): int(v) for k, v in body["counter_max"].items()},
                options=dict(body.get("options", {})),
                metadata=dict(body.get("metadata", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CardImageError(f"card.json is malformed: {exc!r}") from None


def _open_plain(path: Path, flags: int) -> int:
    """A descriptor on the regular file ``path`` of the image. A symbolic link is refused
    (``lock`` pointing elsewhere would create or lock a file outside the image) and so is a
    FIFO, directory or device (an open or read that hangs, or fails with a traceback)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise CardImageError(f"{path} cannot be opened: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CardImageError(f"{path} is not a plain file (a directory, FIFO or device)")
    return fd


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _seal(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class CardStore:
    """Read and update a card image. Open one with ``CardStore.open``; close it when done."""

    def __init__(self, path: Path, content: ImageContent, lock_fd: int, counters_fd: int,
                 slots: dict[str, int], counters: dict[str, int], sync: bool) -> None:
        self.path = path
        self.content = content
        self._lock_fd = lock_fd
        self._counters_fd = counters_fd
        self._slots = slots
        self._counters = counters
        self._sync = sync
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self._writes_until_power_loss: int | None = None
        self._torn_write_lands = False

    # -- creation and loading ------------------------------------------------------------

    @staticmethod
    def create(path: Path, content: ImageContent) -> None:
        """Write a new image into ``path``, which must not already hold one.

        The image is assembled in a sibling temporary directory and renamed into place,
        so a failure leaves no half-written card behind.
        """
        path = Path(path)
        CardStore.check_target(path)
        staging = path.with_name(f".{path.name}.staging")
        if staging.exists():
            for child in staging.iterdir():
                child.unlink()
        try:
            staging.mkdir(parents=True, exist_ok=True)
            body = content.to_json()
            document = {"format": IMAGE_FORMAT, "version": IMAGE_VERSION, "body": body,
                        "sha256": _seal(body)}
            atomic_write(staging / "card.json", json.dumps(document, ensure_ascii=False,
                                                           indent=1).encode(), mode=0o600)
            slots = sorted(content.counter_max)
            counters = COUNTERS_MAGIC + bytes((len(slots),)) + b"".join(
                bytes((content.counter_max[name], content.counter_max[name] ^ 0xFF))
                for name in slots)
            atomic_write(staging / "counters.bin", counters, mode=0o600)
            if path.exists():
                path.rmdir()
            os.replace(staging, path)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise CardImageError(f"cannot write the card image {path}: {exc.strerror}") from None

    @staticmethod
    def check_target(path: Path) -> None:
        """Refuse a place a new image cannot go: anything but an absent or empty directory."""
        path = Path(path)
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            raise CardImageError(f"{path} exists and is not a directory")
        if path.exists() and any(path.iterdir()):
            raise CardImageError(f"{path} exists and is not empty; refusing to overwrite it")

    @classmethod
    def open(cls, path: Path, *, sync: bool | None = None) -> CardStore:
        """Load and lock an image. ``sync`` (default: ``default_sync()``) makes counter
        updates wait for the disk; without it they survive a kill of this process (the
        kernel holds the write) but not a power loss of the host."""
        path = Path(path)
        if not (path / "card.json").is_file():
            raise CardImageError(f"{path} is not a card image (no card.json)")
        lock_fd = _open_plain(path / "lock", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise CardImageInUseError(f"card image {path} is in use by another process") from None
        counters_fd = -1
        try:
            content = cls._load_content(path)
            slots = {name: i for i, name in enumerate(sorted(content.counter_max))}
            counters_fd = _open_plain(path / "counters.bin", os.O_RDWR)
            counters = cls._load_counters(counters_fd, slots, content.counter_max)
        except BaseException:
            if counters_fd >= 0:
                os.close(counters_fd)
            os.close(lock_fd)
            raise
        return cls(path, content, lock_fd, counters_fd, slots, counters,
                   default_sync() if sync is None else sync)

    @staticmethod
    def _load_content(path: Path) -> ImageContent:
        try:
            document = json.loads((path / "card.json").read_bytes())
        except RecursionError:  # nesting no card writes: json gives up on the stack
            raise CardImageError(f"{path}/card.json is nested too deeply to be a card image"
                                 ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CardImageError(f"{path}/card.json is unreadable or truncated: {exc}") from None
        if not isinstance(document, dict) or document.get("format") != IMAGE_FORMAT:
            raise CardImageError(f"{path}/card.json is not a {IMAGE_FORMAT}")
        if document.get("version") != IMAGE_VERSION:
            raise CardImageError(f"card image version {document.get('version')!r} is not "
                                 f"supported (expected {IMAGE_VERSION})")
        body = document.get("body")
        if not isinstance(body, dict) or document.get("sha256") != _seal(body):
            raise CardImageError(f"{path}/card.json fails its integrity check (corrupted)")
        return ImageContent.from_json(body)

    @staticmethod
    def _load_counters(fd: int, slots: dict[str, int], limits: dict[str, int]) -> dict[str, int]:
        raw = os.pread(fd, 1 + len(COUNTERS_MAGIC) + 2 * len(slots) + 1, 0)
        header = len(COUNTERS_MAGIC) + 1
        if raw[:len(COUNTERS_MAGIC)] != COUNTERS_MAGIC or len(raw) != header + 2 * len(slots) \
                or raw[len(COUNTERS_MAGIC)] != len(slots):
            raise CardImageError("counters.bin is truncated or does not match card.json")
        counters = {}
        for name, i in slots.items():
            value, check = raw[header + 2 * i], raw[header + 2 * i + 1]
            if value ^ check != 0xFF or value > limits[name]:
                raise CardImageError(f"retry counter of {name} is corrupted")
            counters[name] = value
        return counters

    @property
    def sync(self) -> bool:
        return self._sync

    # -- reading -------------------------------------------------------------------------

    def file(self, name: str) -> bytes | None:
        return self.content.files.get(name)

    def key(self, name: str) -> rsa.RSAPrivateKey:
        key = self._keys.get(name)
        if key is None:
            loaded = serialization.load_der_private_key(self.content.keys[name], None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise CardImageError(f"key {name} is not an RSA key")
            key = self._keys[name] = loaded
        return key

    def pin(self, name: str) -> bytes:
        return self.content.pins[name]

    def counter(self, name: str) -> int:
        return self._counters[name]

    def counter_max(self, name: str) -> int:
        return self.content.counter_max[name]

    # -- updating ------------------------------------------------------------------------

    def inject_power_loss(self, at_write: int | None, *, lands: bool = False) -> None:
        """Lose power at the ``at_write``-th write of the image from now (1 = the next);
        None disarms. The image's writes are atomic (old or new, never a mix), so a write torn
        by the power loss either ``lands`` whole or leaves storage as it was; either way the
        command never answers and ``PowerLoss`` is raised."""
        self._writes_until_power_loss = at_write
        self._torn_write_lands = lands

    def _power_fails_now(self) -> bool:
        if self._writes_until_power_loss is None:
            return False
        self._writes_until_power_loss -= 1
        return self._writes_until_power_loss <= 0

    def set_counter(self, name: str, value: int, *, durable: bool = True) -> None:
        """Write one retry counter in place; ``durable`` also waits for the disk (if syncing)."""
        torn = self._power_fails_now()
        if torn and not self._torn_write_lands:
            raise PowerLoss(f"power lost before retry counter {name} was written")
        offset = len(COUNTERS_MAGIC) + 1 + 2 * self._slots[name]
        os.pwrite(self._counters_fd, bytes((value, value ^ 0xFF)), offset)
        if torn:
            raise PowerLoss(f"power lost right after retry counter {name} was written")
        if durable and self._sync:
            os.fdatasync(self._counters_fd)
        self._counters[name] = value

    def update_content(self, **changes: dict[str, Any]) -> None:
        """Merge ``files=``/``pins=``/``keys=``/``options=``/``metadata=`` entries and
        rewrite card.json atomically (all or nothing)."""
        merged = ImageContent(**{k: getattr(self.content, k) for k in ImageContent.__slots__})
        for attr, entries in changes.items():
            setattr(merged, attr, {**getattr(merged, attr), **entries})
        body = merged.to_json()
        document = {"format": IMAGE_FORMAT, "version": IMAGE_VERSION, "body": body,
                    "sha256": _seal(body)}
        encoded = json.dumps(document, ensure_ascii=False, indent=1).encode()
        torn = self._power_fails_now()
        if torn and not self._torn_write_lands:
            # What a cut leaves of an atomic write that never landed: half a temp file.
            (self.path / ".card.json.tmp").write_bytes(encoded[:len(encoded) // 2])
            raise PowerLoss("power lost while card.json was being rewritten")
        atomic_write(self.path / "card.json", encoded, mode=0o600)
        if torn:
            raise PowerLoss("power lost right after card.json was rewritten")
        self.content = merged
        self._keys = {k: v for k, v in self._keys.items() if k not in changes.get("keys", {})}

    def close(self) -> None:
        if self._counters_fd >= 0:
            os.close(self._counters_fd)
            os.close(self._lock_fd)
            self._counters_fd = self._lock_fd = -1
