"""The free-space (空き領域) card-application area: installed applets and their storage.

The real install protocol is not public (facts §13); this one is ours, in the spirit of
GlobalPlatform, and documented here:

* The ISD (``cardsim.isd``) opens an SCP03-style secure channel (``gp.scp03``, C-MAC) with
  keys diversified per card from the issuer's master key; only through it are
  INSTALL ``84 E6 0C 00``, DELETE ``84 E4 00 00`` and GET STATUS ``84 F2 40 02`` accepted.
* Applet code is not loaded over the wire (that would be code execution): the card carries
  "load files" — the applet classes of ``cardsim.applets.LOAD_FILES`` — and INSTALL makes
  an *instance* with its own AID, memory quota and install parameters.
* An applet is an ``Application`` subclass (files, PINs with retry counters, instruction
  handlers, all from the card OS) whose ``store`` is an ``AppletStore``: a sandbox holding
  only that instance's data. It never receives the card image, so it can reach neither
  another applet's storage nor the JPKI keys nor the 券面 data.
* Capacity: the quotas of all instances fit ``capacity`` bytes (image option
  ``freespace_capacity``, default 16 KiB); an instance's data (names + values) fits its
  quota. Either limit answers ``6A84``.
* Atomicity: every update (an applet's multi-file change, a retry counter, INSTALL,
  DELETE) is one transaction: a sealed journal naming the new content of every touched
  file is written first, then the files, then the journal is removed. Opening the area
  rolls a complete journal forward and drops a torn one, so a power loss anywhere leaves
  the old state or the new. ``inject_power_loss(n)`` tears the n-th physical write.
* The image is untrusted input (anyone can hand over a card directory): the area's files
  have only the names ``AREA_FILE_NAME`` allows, plus the journal. A journal naming
  anything else, or whose content would not load, is refused as a whole before a single
  file is touched; the area is a real directory and its files regular files with one
  link, never followed through a symbolic link, so nothing outside the area is ever read
  or written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..iso7816.sw import SW
from .status import StatusError
from .storage import CardImageError, PowerLoss

DEFAULT_CAPACITY = 16 * 1024
REGISTRY = "registry"
JOURNAL = "journal"
APPLET_FILE_PREFIX = "applet-"
AID_MIN_LENGTH, AID_MAX_LENGTH = 5, 16
"""ISO/IEC 7816-4 application identifiers: 5 to 16 bytes."""
AREA_FILE_NAME = re.compile(
    rf"{REGISTRY}|{APPLET_FILE_PREFIX}(?:[0-9a-f]{{2}}){{{AID_MIN_LENGTH},{AID_MAX_LENGTH}}}")
"""The one definition of the names the area's files may have (``fullmatch``): the registry
and one ``applet-<AID hex>`` per instance. No slash, dot, NUL or upper case can match, so
a name from the image can never reach outside the area."""
NAME_OVERHEAD = 8
"""Bytes charged per stored entry on top of its name and value (the card's allocation unit)."""


def _seal(body: dict[str, Any]) -> bytes:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return json.dumps({"body": body, "sha256": hashlib.sha256(text.encode()).hexdigest()},
                      sort_keys=True).encode()


def _unseal(raw: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(raw)
        body = document["body"]
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        if hashlib.sha256(text.encode()).hexdigest() != document["sha256"]:
            return None
        return body
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


class NVM:
    """The area's non-volatile memory: small files written in place, every write counted.

    Every access checks the name (``AREA_FILE_NAME`` or the journal) and refuses symbolic
    links, non-regular files and hard-linked files: a crafted image must not make the card
    read a FIFO (a hang) or write through a link into a file outside the area."""

    def __init__(self, path: Path, sync: bool) -> None:
        self.path = path
        self.sync = sync
        self.writes = 0
        self.fail_at: int | None = None

    def _count(self) -> bool:
        self.writes += 1
        return self.fail_at is not None and self.writes >= self.fail_at

    def _checked(self, name: str) -> Path:
        if name != JOURNAL and not is_area_file_name(name):
            raise CardImageError(f"free-space area of {self.path.parent}: refusing the file "
                                 f"name {name!r} (not one of the area's own names)")
        return self.path / name

    def _open(self, name: str, flags: int) -> int | None:
        """A descriptor on the regular, singly-linked file ``name``; None if it is absent."""
        path = self._checked(name)
        try:
            fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            return None
        except OSError as exc:  # ELOOP for a symlink, EISDIR, ENXIO for a FIFO, EACCES …
            raise CardImageError(f"free-space file {path} cannot be opened: {exc.strerror}"
                                 ) from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
            os.close(fd)
            raise CardImageError(f"free-space file {path} is not a plain file "
                                 "(a link, directory, FIFO or device); refusing it")
        return fd

    def read(self, name: str) -> bytes | None:
        fd = self._open(name, os.O_RDONLY)
        if fd is None:
            return None
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def write(self, name: str, data: bytes) -> None:
        torn = self._count()
        # Truncate only after the checks of _open: O_TRUNC would empty a foreign file first.
        fd = self._open(name, os.O_WRONLY | os.O_CREAT)
        assert fd is not None  # O_CREAT
        try:
            os.ftruncate(fd, 0)
            os.write(fd, data[:len(data) // 2] if torn else data)
            if self.sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if torn:
            raise PowerLoss(f"power lost while writing {name}")

    def remove(self, name: str) -> None:
        path = self._checked(name)
        if self._count():
            raise PowerLoss(f"power lost before removing {name}")
        try:
            os.unlink(path)  # unlinking a symbolic link removes the link, not its target
        except FileNotFoundError:
            return
        if self.sync:
            dir_fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def is_area_file_name(name: object) -> bool:
    """Whether ``name`` is one the area's own files may have (``AREA_FILE_NAME``)."""
    return isinstance(name, str) and AREA_FILE_NAME.fullmatch(name) is not None


@dataclass(slots=True)
class AppletData:
    """One instance's storage: files, PIN values, retry counters and their limits."""

    files: dict[str, str] = field(default_factory=dict)
    pins: dict[str, str] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    counter_max: dict[str, int] = field(default_factory=dict)

    def size(self) -> int:
        entries = (*self.files.items(), *self.pins.items())
        return sum(NAME_OVERHEAD + len(k) + len(v) // 2 for k, v in entries) \
            + sum(NAME_OVERHEAD + len(k) + 1 for k in self.counters)

    def to_json(self) -> dict[str, Any]:
        return {"files": self.files, "pins": self.pins, "counters": self.counters,
                "counter_max": self.counter_max}

    @classmethod
    def from_json(cls, body: Any) -> AppletData:
        """Parse (and type-check: it comes from the image) one instance's stored data."""
        try:
            files, pins = dict(body["files"]), dict(body["pins"])
            counters, counter_max = dict(body["counters"]), dict(body["counter_max"])
            for entries, kind in ((files, str), (pins, str), (counters, int),
                                  (counter_max, int)):
                for key, value in entries.items():
                    if not isinstance(key, str) or type(value) is not kind:
                        raise TypeError(f"entry {key!r}: {value!r}")
                    if kind is str:
                        bytes.fromhex(value)
        except (KeyError, TypeError, ValueError) as exc:
            raise CardImageError(f"free-space applet data is malformed: {exc}") from None
        return cls(files, pins, counters, counter_max)


@dataclass(frozen=True, slots=True)
class Instance:
    aid: bytes
    load_file: bytes
    quota: int

    @property
    def file_name(self) -> str:
        return f"{APPLET_FILE_PREFIX}{self.aid.hex()}"


def _parse_registry(body: Any) -> dict[bytes, Instance]:
    """The instances a registry file lists; it comes from the image, so everything is checked."""
    instances: dict[bytes, Instance] = {}
    try:
        for entry in body["instances"]:
            aid, load_file = bytes.fromhex(entry["aid"]), bytes.fromhex(entry["load_file"])
            quota = entry["quota"]
            if not AID_MIN_LENGTH <= len(aid) <= AID_MAX_LENGTH or aid in instances \
                    or type(quota) is not int or quota < 0:
                raise ValueError(f"bad instance {entry!r}")
            instances[aid] = Instance(aid, load_file, quota)
    except (KeyError, TypeError, ValueError) as exc:
        raise CardImageError(f"free-space registry is malformed: {exc}") from None
    return instances


class _NoOptions:
    """What ``Application`` reads of ``store.content``: applets have no card options."""

    options: Mapping[str, Any] = {}


class AppletStore:
    """The sandbox an applet instance sees: the ``CardStore`` reading/updating interface the
    card OS uses, over that instance's data only."""

    content = _NoOptions()

    def __init__(self, area: FreeSpace, instance: Instance) -> None:
        self._area = area
        self._instance = instance
        self._staged: AppletData | None = None

    @property
    def _data(self) -> AppletData:
        return self._staged or self._area.data(self._instance)

    def file(self, name: str) -> bytes | None:
        value = self._data.files.get(name)
        return bytes.fromhex(value) if value is not None else None

    def pin(self, name: str) -> bytes:
        return bytes.fromhex(self._data.pins[name])

    def counter(self, name: str) -> int:
        return self._data.counters[name]

    def counter_max(self, name: str) -> int:
        return self._data.counter_max[name]

    def key(self, name: str) -> Any:
        raise StatusError(SW.REFERENCED_DATA_NOT_FOUND)

    def set_counter(self, name: str, value: int, *, durable: bool = True) -> None:
        with self.transaction() as data:
            data.counters[name] = value

    def update_content(self, **changes: dict[str, Any]) -> None:
        with self.transaction() as data:
            for attr, entries in changes.items():
                if attr not in ("files", "pins"):
                    raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
                getattr(data, attr).update({k: bytes(v).hex() for k, v in entries.items()})

    @contextmanager
    def transaction(self) -> Iterator[AppletData]:
        """Stage several changes; they reach the card together or not at all."""
        if self._staged is not None:
            yield self._staged
            return
        current = self._area.data(self._instance)
        self._staged = AppletData.from_json(json.loads(json.dumps(current.to_json())))
        try:
            yield self._staged
            if self._staged.size() > self._instance.quota:
                raise StatusError(SW.NOT_ENOUGH_MEMORY)
            self._area.commit({self._instance.file_name: self._staged})
        finally:
            self._staged = None


class FreeSpace:
    """The installed instances and their data in ``<card image>/freespace/``."""

    def __init__(self, path: Path, capacity: int = DEFAULT_CAPACITY, sync: bool = True) -> None:
        self.capacity = capacity
        _ensure_directory(path)
        self.nvm = NVM(path, sync)
        self._recover()
        registry = self._load(REGISTRY)
        self.instances: dict[bytes, Instance] = \
            _parse_registry(registry) if registry is not None else {}
        self._data = {aid: AppletData.from_json(self._load(i.file_name))
                      for aid, i in self.instances.items()}

    def _load(self, name: str) -> dict[str, Any] | None:
        raw = self.nvm.read(name)
        if raw is None:
            return None
        body = _unseal(raw)
        if body is None:
            raise CardImageError(f"free-space file {name} is corrupt")
        return body

    def _recover(self) -> None:
        raw = self.nvm.read(JOURNAL)
        if raw is None:
            return
        body = _unseal(raw)
        if body is not None:
            # Check the whole journal before applying any of it: a refusal touches nothing.
            updates = _checked_updates(body)
            for name, content in updates.items():
                if content is None:
                    self.nvm.remove(name)
                else:
                    self.nvm.write(name, _seal(content))
        self.nvm.remove(JOURNAL)

    def inject_power_loss(self, at_write: int | None) -> None:
        """Tear the ``at_write``-th physical write from now (1 = the next); None disarms."""
        self.nvm.writes = 0
        self.nvm.fail_at = at_write

    # -- reading ---------------------------------------------------------------------------

    def data(self, instance: Instance) -> AppletData:
        return self._data[instance.aid]

    def used(self) -> int:
        return sum(i.quota for i in self.instances.values())

    def free(self) -> int:
        return self.capacity - self.used()

    # -- updating --------------------------------------------------------------------------

    def commit(self, changes: Mapping[str, AppletData | None],
               instances: Mapping[bytes, Instance] | None = None) -> None:
        """Journal, apply, forget: ``changes`` (file → new data, None to delete) and, if
        given, the new instance registry, all at once."""
        updates: dict[str, Any] = {n: d.to_json() if d is not None else None
                                   for n, d in changes.items()}
        if instances is not None:
            updates[REGISTRY] = {"instances": [
                {"aid": i.aid.hex(), "load_file": i.load_file.hex(), "quota": i.quota}
                for i in instances.values()]}
        self.nvm.write(JOURNAL, _seal({"updates": updates}))
        for name, content in updates.items():
            if content is None:
                self.nvm.remove(name)
            else:
                self.nvm.write(name, _seal(content))
        self.nvm.remove(JOURNAL)
        # Memory follows only once the card has durably committed.
        if instances is not None:
            self.instances = dict(instances)
        by_file = {i.file_name: aid for aid, i in self.instances.items()}
        for name, data in changes.items():
            aid = by_file.get(name)
            if data is None:
                self._data = {a: d for a, d in self._data.items() if a in self.instances}
            elif aid is not None:
                self._data[aid] = data

    def install(self, instance: Instance, data: AppletData) -> None:
        if instance.aid in self.instances:
            raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
        if instance.quota > self.free() or data.size() > instance.quota:
            raise StatusError(SW.NOT_ENOUGH_MEMORY)
        self.commit({instance.file_name: data}, {**self.instances, instance.aid: instance})

    def delete(self, aid: bytes) -> None:
        instance = self.instances.get(aid)
        if instance is None:
            raise StatusError(SW.REFERENCED_DATA_NOT_FOUND)
        self.commit({instance.file_name: None},
                    {a: i for a, i in self.instances.items() if a != aid})


def _ensure_directory(path: Path) -> None:
    """Create the area if absent; refuse anything but a real directory (a symbolic link
    would move every write of the area outside the image)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        try:
            path.mkdir()
        except OSError as exc:
            raise CardImageError(f"free-space area {path} cannot be created: {exc.strerror}"
                                 ) from None
        return
    if not stat.S_ISDIR(info.st_mode):
        raise CardImageError(f"free-space area {path} is not a directory (a link, file, FIFO "
                             "or device); refusing it")


def _checked_updates(body: Any) -> dict[str, Any]:
    """The updates of a sealed journal, all checked; a ``CardImageError`` names the first
    that is not one the card could have written."""
    updates = body.get("updates") if isinstance(body, dict) else None
    if not isinstance(updates, dict):
        raise CardImageError("free-space journal is malformed (no update list); "
                             "refusing to open the image, nothing was changed")
    for name, content in updates.items():
        if not is_area_file_name(name):
            raise CardImageError(f"free-space journal names {name!r}, which is not a file of "
                                 "the area; refusing to open the image, nothing was changed")
        if content is None:
            continue
        try:
            if name == REGISTRY:
                _parse_registry(content)
            else:
                AppletData.from_json(content)
        except CardImageError as exc:
            raise CardImageError(f"free-space journal entry {name!r}: {exc}; refusing to "
                                 "open the image, nothing was changed") from None
    return updates
