"""mynacard benchmarks, one command: ``make bench`` (or ``python bench/run.py``).

Every figure is measured in this run, side by side with its baseline, and printed with
the ratio. Other benchmark modules in this folder (``*_bench.py`` with a ``run()``
returning rows) are run too when present.
"""

from __future__ import annotations

import datetime as dt
import importlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.perso.issue import issue_card
from mynacard.cardsim.perso.persona import load_persona
from mynacard.client.jpki import JPKIClient, JPKIKey
from mynacard.jpki.ca import SimulatorPKI
from mynacard.readers.simulator import SimulatorReader

Row = tuple[str, str, str]
PERSONA = Path(__file__).resolve().parent.parent / "vectors" / "personas" / "kokutou-mikiya.yaml"


def best_rate(operation: Callable[[], None], count: int, rounds: int = 5) -> float:
    """Operations per second, best of ``rounds`` (the least disturbed run)."""
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(count):
            operation()
        rates.append(count / (time.perf_counter() - start))
    return max(rates)


def apdu_rows(card: VirtualCard) -> list[Row]:
    connection = SimulatorReader(card=card).connect()
    connection.transmit_raw(bytes.fromhex("00A4040C0AD392F000260100000001"))
    select = bytes.fromhex("00A4020C02000A")
    read = bytes.fromhex("00B0000000")

    def through_reader() -> None:
        connection.transmit_raw(select)
        connection.transmit_raw(read)

    def direct() -> None:
        card.transmit(select)
        card.transmit(read)

    reader_rate = 2 * best_rate(through_reader, 20000)
    direct_rate = 2 * best_rate(direct, 20000)
    return [
        ("in-process SELECT+READ BINARY (reader interface)", f"{reader_rate:,.0f} APDU/s",
         f"{reader_rate / 50000:.1f}× the 50,000/s target"),
        ("in-process SELECT+READ BINARY (card.transmit)", f"{direct_rate:,.0f} APDU/s",
         f"reader layer costs {(1 - reader_rate / direct_rate) * 100:.0f}%"),
    ]


def signing_rows(card: VirtualCard, mode: str) -> list[Row]:
    connection = SimulatorReader(card=card).connect()
    client = JPKIClient(connection)
    key = card.store.key("jpki/0017")
    message = b"benchmark message" * 8

    def raw() -> None:
        key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def full() -> None:
        client.sign(JPKIKey.AUTH, message, "1234")

    raw_rates, full_rates = [], []
    for _ in range(6):  # interleaved, so drift hits both alike
        raw_rates.append(best_rate(raw, 60, rounds=1))
        full_rates.append(best_rate(full, 60, rounds=1))
    raw_us = 1e6 / statistics.median(raw_rates)
    full_us = 1e6 / statistics.median(full_rates)
    return [(f"VERIFY+SIGN via reader ({mode})", f"{full_us:,.0f} µs/signature",
             f"ratio raw/full = {raw_us / full_us:.2f} (target ≥ 0.9; raw sign {raw_us:,.0f} µs)")]


def other_benchmarks() -> list[Row]:
    rows: list[Row] = []
    for path in sorted(Path(__file__).resolve().parent.glob("*_bench.py")):
        module = importlib.import_module(path.stem)
        rows.extend(module.run())
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        card_dir = Path(work) / "card"
        persona = load_persona(PERSONA)
        issue_card(persona, card_dir, SimulatorPKI.create(dt.datetime.now(dt.UTC)))
        rows: list[Row] = []
        for sync in (False, True):
            card = VirtualCard.open(card_dir, sync=sync)
            card.power_on()
            if not sync:
                rows += apdu_rows(card)
            rows += signing_rows(card, "counter fdatasync per VERIFY" if sync
                                 else "counters durable against a kill")
            card.close()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    rows += other_benchmarks()
    width = max(len(r[0]) for r in rows)
    for name, figure, ratio in rows:
        print(f"{name:<{width}}  {figure:>22}  {ratio}")


if __name__ == "__main__":
    main()
