"""``mynacard app taxi``: city keys, terminal provisioning, deny list, a ride, the queue."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from conftest import NOW

from mynacard.apps.taxi.keys import CityKeys
from mynacard.cli import main
from mynacard.clock import VirtualClock


def test_provision_deny_ride_queue(tmp_path: Path, enrolled) -> None:
    runner = CliRunner()
    keys, config, db = tmp_path / "city", tmp_path / "t.json", tmp_path / "t.db"
    assert runner.invoke(main, ["app", "taxi", "city-keys", "--out", str(keys)]).exit_code == 0
    city = CityKeys.load(keys)
    done = runner.invoke(main, ["app", "taxi", "provision", "--keys", str(keys),
                                "--terminal-id", "TAXI0007", "--company", "前橋タクシー",
                                "--municipality", "10201", "--out", str(config)])
    assert done.exit_code == 0, done.output
    clock = VirtualClock(NOW)
    obj = {"taxi_clock": clock}
    base = ["--config", str(config), "--db", str(db)]
    alone, stopped = enrolled(b"R0000001", keys=city), enrolled(b"R0000002", keys=city)

    no_list = runner.invoke(main, ["app", "taxi", "ride", *base, "--fare", "3000",
                                   "--riders", f"sim:{alone}"], obj=obj)
    assert no_list.exit_code == 1 and "停止リストが古い" in no_list.output
    assert runner.invoke(main, ["app", "taxi", "deny-list", *base, "--rider",
                                b"R0000002".hex()], obj=obj).exit_code == 0

    rode = runner.invoke(main, ["app", "taxi", "ride", *base, "--fare", "3000", "--json",
                                "--riders", f"sim:{alone}", "--riders", f"sim:{stopped}"],
                         obj=obj)
    assert rode.exit_code == 0, rode.output
    answer = json.loads(rode.output)
    assert (answer["subsidy"], answer["to_pay"]) == (1000, 2000)
    assert [c["refused"] for c in answer["cards"]] == ["stopped", None]

    refused = runner.invoke(main, ["app", "taxi", "ride", *base, "--fare", "3000",
                                   "--riders", f"sim:{stopped}"], obj=obj)
    assert refused.exit_code == 1
    assert "登録が停止されています" in refused.output and "Traceback" not in refused.output

    queued = json.loads(runner.invoke(main, ["app", "taxi", "queue", *base, "--json"],
                                      obj=obj).output)["rides"]
    assert [(r["rider"], r["sequence"], r["subsidy"]) for r in queued] == [
        (b"R0000001".hex(), 1, 1000)]

    bad = runner.invoke(main, ["app", "taxi", "provision", "--keys", str(keys),
                               "--terminal-id", "TOO-LONG-ID", "--company", "x",
                               "--municipality", "10201", "--out", str(config)])
    assert bad.exit_code == 2 and "8 printable ASCII" in bad.output
