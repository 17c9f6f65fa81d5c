"""PC/SC benchmark: the simulator through pyscard → pcscd → vpcd, beside the in-process figure.

Run alone (``python bench/pcsc_bench.py``) or through ``bench/run.py``. Starts a private
pcscd (refusing to touch one it did not start) and serves the card with ``mynacard serve``
in its own process, as a user would. Targets: median ≤ 150 µs and p99 ≤ 1 ms per APDU.
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
MEDIAN_TARGET_US = 150.0
P99_TARGET_US = 1000.0

SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
SELECT_AUTH_CERT = bytes.fromhex("00A4020C02000A")
READ_4 = bytes.fromhex("00B0000004")


def round_trips_us(connection: CardConnection) -> list[float]:
    """Per-APDU wall times (µs) of READ BINARY 4 bytes, after a warm-up."""
    for command in (SELECT_JPKI, SELECT_AUTH_CERT):
        if connection.transmit_raw(command)[-2:] != b"\x90\x00":
            raise RuntimeError(f"{command.hex()} failed: the card is not ready to benchmark")
    for _ in range(WARM_UP):
        connection.transmit_raw(READ_4)
    times = []
    clock = time.perf_counter_ns
    for _ in range(APDUS):
        start = clock()
        connection.transmit_raw(READ_4)
        times.append((clock() - start) / 1000)
    return times


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
    server: subprocess.Popen[bytes] | None = None
    try:
        server = subprocess.Popen(
            [sys.executable, "-m", "mynacard", "serve", str(image), "--port", str(pcscd.vpcd_port)],
            cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        reader = PcscReader(pcscd.reader_names[0])
        wait_until(lambda: reader.wait_for_card(present=True, timeout=0.5), 15.0,
                   "the served card appearing in pcscd")
        with reader.connect() as connection:
            pcsc = round_trips_us(connection)
        home = work / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSC_")}
        env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))

        def dump() -> None:
            subprocess.run(["pkcs15-tool", "--reader", "0", "--dump"], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        dumps = [timed(dump) for _ in range(DUMP_RUNS)]
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        pcscd.stop()
    median, p99 = statistics.median(pcsc), percentile(pcsc, 0.99)
    local_median, local_p99 = statistics.median(in_process), percentile(in_process, 0.99)
    met = median <= MEDIAN_TARGET_US and p99 <= P99_TARGET_US
    return [
        (f"APDU round trip pyscard→pcscd→vpcd→simulator (n={APDUS})",
         f"median {median:,.0f} µs", f"p99 {p99:,.0f} µs; target median ≤ "
         f"{MEDIAN_TARGET_US:.0f} µs, p99 ≤ {P99_TARGET_US:,.0f} µs: {'met' if met else 'MISSED'}"),
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
