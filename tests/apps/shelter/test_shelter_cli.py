"""``mynacard app shelter`` end to end: a desk checks a household in by card face and by
hand, sees a repeat, checks out, exports, and carries its signed bundle to headquarters both
as a file (USB) and over HTTP on loopback; importing twice adds nothing."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

from click.testing import CliRunner
from shelter_helpers import DESK_TIME

from mynacard.apps.shelter.service import ShelterDesk
from mynacard.apps.shelter.store import RosterStore
from mynacard.apps.shelter.sync import load_trusted_devices
from mynacard.apps.shelter.web import create_app
from mynacard.cli import main
from mynacard.clock import VirtualClock


def test_a_shelter_session_and_its_sync(tmp_path: Path, card_dir: Path, pki_dir: Path,
                                        anchors: dict) -> None:
    runner = CliRunner()
    clock = VirtualClock()
    clock.freeze(DESK_TIME)
    db = ["--db", str(tmp_path / "desk.db"), "--device", "desk-a"]

    def run(*args: str, ok: bool = True) -> str:
        result = runner.invoke(main, ["app", "shelter", *args], obj={"shelter_clock": clock},
                               env={"PIN": "1234"})
        assert (result.exit_code == 0) is ok, result.output
        return result.output

    run("add-shelter", "S1", "--name", "清瀬第一小学校", *db)
    card = ["--card", str(card_dir), "--cv-trust", str(pki_dir / "cvc"), "--shelter", "S1"]
    first = json.loads(run("check-in", *card, *db, "--face", "昭和", "55", "2", "17", "2035",
                           "2285", "--consent", "name", "--consent", "status", "--json"))
    assert first["verified"] and first["source"] == "card_b" and not first["repeat"]
    child = json.loads(run("check-in", "--shelter", "S1", *db, "--manual", "黒桐 そら",
                           "--birth", "2024-05-05", "--sex", "2", "--household",
                           first["household"], "--need", "infant", "--json"))
    assert child["household"] == first["household"] and not child["verified"]
    clock.advance(dt.timedelta(hours=1))
    again = json.loads(run("check-in", *card, *db, "--code-b", "55021720352285", "--json"))
    assert again["repeat"] and again["already_since"].startswith("2026-11-23T01:00")
    assert "Error: " in run("check-in", *card, *db, "--face", "令和", "1", "4", "30", "2035",
                            "2285", ok=False)
    run("check-out", "--shelter", "S1", child["person"], *db)
    roster = json.loads(run("roster", *db, "--json"))["roster"]
    assert [(r["name"], r["present"]) for r in roster] == [("黒桐\u3000幹也", True),
                                                           ("黒桐 そら", False)]
    counts = json.loads(run("counts", "--shelter", "S1", *db, "--json"))
    assert counts["present"] == 1 and counts["by_age_band"] == {"18-64": 1}
    safety = run("export", "safety", *db)
    assert "黒桐\u3000幹也" in safety and "そら" not in safety

    keys = tmp_path / "keys"
    run("keygen", "--device", "desk-a", "--out", str(keys))
    usb = tmp_path / "usb" / "desk-a.bundle"
    usb.parent.mkdir()
    run("bundle", *db, "--key", str(keys / "desk-a.key.pem"), "--out", str(usb))
    hq = ["--db", str(tmp_path / "hq.db"), "--device", "hq"]
    first_import = json.loads(run("import", str(usb), "--trust", str(keys), *hq, "--json"))
    assert first_import["imported"][0]["events_added"] == 3
    second = json.loads(run("import", str(usb), "--trust", str(keys), *hq, "--json"))
    assert second["imported"][0]["events_added"] == 0

    # The same bundle over HTTP to a headquarters page on loopback.
    from werkzeug.serving import make_server

    store = RosterStore(tmp_path / "hq-http.db", "hq")
    store.add_shelter("HQ", "災害対策本部", DESK_TIME)
    app = create_app(ShelterDesk(store, "HQ", anchors, clock=clock), lambda: None,
                     trusted_devices=load_trusted_devices(keys))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/api/bundle"
        for expected in (3, 0):
            answer = json.loads(run("bundle", *db, "--key", str(keys / "desk-a.key.pem"),
                                    "--to", url, "--json"))
            assert answer["events_added"] == expected
    finally:
        server.shutdown()
        thread.join()
    assert [r.person.name for r in store.roster()] == ["黒桐\u3000幹也", "黒桐 そら"]
    store.close()
