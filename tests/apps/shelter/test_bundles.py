"""Signed bundles: a device's records travel as a file or over HTTP; headquarters accepts
only bundles its trusted device keys verify, and merging them twice changes nothing."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest

from mynacard.apps.shelter.model import Facts, Source
from mynacard.apps.shelter.store import RosterStore
from mynacard.apps.shelter.sync import (
    BundleError,
    import_bundle,
    load_device_key,
    load_trusted_devices,
    make_bundle,
    new_device_key,
)

NOW = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)


def test_a_bundle_moves_a_devices_roster_and_refuses_tampering(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    new_device_key(keys, "dev-a")
    new_device_key(tmp_path / "other", "dev-a")   # same name, another key: not trusted
    device = RosterStore(tmp_path / "a.db", "dev-a")
    device.add_shelter("S1", "第一小学校", NOW)
    person = device.register(Facts("黒桐　幹也", "清瀬市", dt.date(1980, 2, 17), "1",
                                   Source.CARD_B, True), "S1", NOW)
    device.check_in(person.id, "S1", NOW)
    bundle = make_bundle(device, load_device_key(keys / "dev-a.key.pem"), NOW.isoformat())
    trusted = load_trusted_devices(keys)
    hq = RosterStore(tmp_path / "hq.db", "hq")
    assert import_bundle(hq, bundle, trusted).events_added == 1
    assert import_bundle(hq, bundle, trusted).events_added == 0
    assert hq.roster()[0].person.name == "黒桐　幹也"

    outer = json.loads(bundle)
    body = base64.b64decode(outer["payload"]).replace("黒桐".encode(), "白桐".encode())
    forged = json.dumps({**outer, "payload": base64.b64encode(body).decode()}).encode()
    with pytest.raises(BundleError, match="does not verify"):
        import_bundle(hq, forged, trusted)
    impostor = make_bundle(device, load_device_key(tmp_path / "other" / "dev-a.key.pem"),
                           NOW.isoformat())
    with pytest.raises(BundleError, match="does not verify"):
        import_bundle(hq, impostor, trusted)
    with pytest.raises(BundleError, match="unknown device"):
        import_bundle(hq, bundle, load_trusted_devices(_only(tmp_path, "dev-b")))
    with pytest.raises(BundleError, match="not a shelter bundle"):
        import_bundle(hq, b"{}", trusted)
    for store in (device, hq):
        store.close()


def _only(tmp_path: Path, device: str) -> Path:
    folder = tmp_path / f"only-{device}"
    new_device_key(folder, device)
    return folder
