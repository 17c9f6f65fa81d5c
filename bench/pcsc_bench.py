"""PC/SC benchmark: the simulator through pyscard → pcscd → vpcd, beside the in-process figure.

Run alone (``python bench/pcsc_bench.py``) or through ``bench/run.py``. Starts a private
pcscd (refusing to touch one it did not start) and serves the card with ``mynacard serve``
in its own process, as a user would, in vpcd's first slot. An absolute target would measure the
load of this shared machine more than the simulator, so the baseline is measured beside it: a
do-nothing card (``null_vpcd_card.py``, ``9000`` to everything) in the second slot, the two
asked alternately in one loop so load hits both alike. Goal: the simulator's median within
1.1× of that floor.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.perso.issue import issue_card
from mynacard.cardsim.perso.persona import load_persona
from mynacard.facts.atr import ATRS, DEFAULT_ATR
from mynacard.jpki.ca import SimulatorPKI
from mynacard.readers.base import CardConnection
from mynacard.readers.pcscd import (
    ForeignPcscdError,
    Pcscd,
    free_port_pair,
    missing_pcsc_requirements,
    wait_until,
)
from mynacard.readers.simulator import SimulatorReader

Row = tuple[str, str, str]
PROJECT = Path(__file__).resolve().parent.parent
PERSONA = PROJECT / "vectors" / "personas" / "kokutou-mikiya.yaml"
APDUS = 2000
WARM_UP = 200
DUMP_RUNS = 5
FLOOR_RATIO_GOAL = 1.1
NULL_CARD = Path(__file__).resolve().parent / "null_vpcd_card.py"

SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
SELECT_AUTH_CERT = bytes.fromhex("00A4020C02000A")
READ_4 = bytes.fromhex("00B0000004")


def _select_auth_cert(connection: CardConnection) -> None:
    for command in (SELECT_JPKI, SELECT_AUTH_CERT):
        if connection.transmit_raw(command)[-2:] != b"\x90\x00":
            raise RuntimeError(f"{command.hex()} failed: the card is not ready to benchmark")


def round_trips_us(connection: CardConnection) -> list[float]:
    """Per-APDU wall times (µs) of READ BINARY 4 bytes, after a warm-up."""
    _select_auth_cert(connection)
    for _ in range(WARM_UP):
        connection.transmit_raw(READ_4)
    times = []
    clock = time.perf_counter_ns
    for _ in range(APDUS):
        start = clock()
        connection.transmit_raw(READ_4)
        times.append((clock() - start) / 1000)
    return times


def alternating_round_trips_us(card: CardConnection,
                               floor: CardConnection) -> tuple[list[float], list[float]]:
    """Per-APDU wall times (µs) of the same READ BINARY on ``card`` and ``floor``, in turns."""
    _select_auth_cert(card)
    for _ in range(WARM_UP):
        card.transmit_raw(READ_4)
        floor.transmit_raw(READ_4)
    times: dict[int, list[float]] = {id(card): [], id(floor): []}
    clock = time.perf_counter_ns
    for i in range(APDUS):
        # Who goes first swaps every turn, so neither always follows the other's wake-up.
        for connection in (card, floor) if i % 2 else (floor, card):
            start = clock()
            connection.transmit_raw(READ_4)
            times[id(connection)].append((clock() - start) / 1000)
    return times[id(card)], times[id(floor)]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _pcsc_rows(work: Path, image: Path, in_process: list[float]) -> list[Row]:
    from mynacard.readers.pcsc import PcscReader

    pcscd = Pcscd(work / "pcscd", free_port_pair())
    (work / "pcscd").mkdir()
    pcscd.start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "mynacard", "serve", str(image), "--port", str(pcscd.vpcd_port)],
            cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        processes.append(subprocess.Popen(
            [sys.executable, str(NULL_CARD), str(pcscd.vpcd_port + 1), ATRS[DEFAULT_ATR].hex()],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        reader, floor_reader = (PcscReader(name) for name in pcscd.reader_names)
        for slot in (reader, floor_reader):
            wait_until(lambda slot=slot: slot.wait_for_card(present=True, timeout=0.5), 15.0,
                       "the served cards appearing in pcscd")
        with reader.connect() as connection, floor_reader.connect() as floor_connection:
            pcsc, floor = alternating_round_trips_us(connection, floor_connection)
        home = work / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSC_")}
        env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))

        def dump() -> None:
            subprocess.run(["pkcs15-tool", "--reader", "0", "--dump"], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        dumps = [timed(dump) for _ in range(DUMP_RUNS)]
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
        pcscd.stop()
    median, p99 = statistics.median(pcsc), percentile(pcsc, 0.99)
    floor_median, floor_p99 = statistics.median(floor), percentile(floor, 0.99)
    ratio = median / floor_median
    local_median, local_p99 = statistics.median(in_process), percentile(in_process, 0.99)
    return [
        (f"APDU round trip pyscard→pcscd→vpcd→simulator (n={APDUS})",
         f"median {median:,.0f} µs", f"{ratio:.2f}× the do-nothing card's median; goal ≤ "
         f"{FLOOR_RATIO_GOAL}×: {'met' if ratio <= FLOOR_RATIO_GOAL else 'MISSED'}; "
         f"p99 {p99:,.0f} µs"),
        (f"APDU round trip pyscard→pcscd→vpcd→do-nothing card, alternated (n={APDUS})",
         f"median {floor_median:,.0f} µs", f"p99 {floor_p99:,.0f} µs; the floor of this path "
         "under the load of this run"),
        (f"APDU round trip in process, same APDU (n={APDUS})",
         f"median {local_median:,.1f} µs", f"p99 {local_p99:,.1f} µs; PC/SC path costs "
         f"{median / local_median:,.0f}× the in-process median"),
        ("pkcs15-tool --dump through pcscd (full OpenSC read)",
         f"{statistics.median(dumps) * 1000:,.0f} ms",
         f"median of {DUMP_RUNS} runs (min {min(dumps) * 1000:,.0f} ms), no OpenSC file cache"),
    ]


def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        image = work / "card"
        issue_card(load_persona(PERSONA), image, SimulatorPKI.create())
        in_process_image = work / "card-in-process"
        issue_card(load_persona(PERSONA), in_process_image, SimulatorPKI.create())
        card = VirtualCard.open(in_process_image)
        try:
            with SimulatorReader(card=card).connect() as connection:
                card.power_on()
                in_process = round_trips_us(connection)
        finally:
            card.close()
        missing = missing_pcsc_requirements()
        if missing:
            return [("PC/SC benchmark", "skipped", missing)]
        try:
            return _pcsc_rows(work, image, in_process)
        except ForeignPcscdError as exc:
            return [("PC/SC benchmark", "skipped", str(exc))]


if __name__ == "__main__":
    rows = run()
    width = max(len(row[0]) for row in rows)
    for name, figure, note in rows:
        print(f"{name:<{width}}  {figure:>16}  {note}")
