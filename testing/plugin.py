"""The mynacard pytest plugin, registered through the ``pytest11`` entry point: installing
mynacard is enough to have these fixtures.

Fixtures (generic names carry a ``mynacard_`` prefix so they do not collide with yours):

* ``mynacard_harness`` (session): the ``Harness`` itself.
* ``mynacard_pki`` (session): the simulator PKI (``SimulatorPKI``) in a temporary directory.
* ``mynacard_clock``: the ``VirtualClock`` every piece of the harness reads; real time until the
  test freezes it, and back to real time after the test.
* ``card_factory`` (session): ``card_factory(persona, **overrides)`` → a new card image directory.
* ``mynacard_card``: the card image the reader holds (``@pytest.mark.mynacard_card(persona,
  **overrides)`` chooses it; default 黒桐 幹也, auth PIN 1234, signing password ABC123).
* ``mynacard_reader``: a ``Reader`` holding that card; ``card_connection``: a connection to it.
  In-process by default; through pcscd + vpcd with ``--mynacard-reader=pcsc`` or
  ``@pytest.mark.mynacard_reader("pcsc")``.
* ``revocation_server``: the CRL/OCSP server on loopback, its CRLs freshly published.
* ``mynacard_trace``: the path of this test's APDU trace (JSON Lines, secrets redacted; see
  docs/traces.md): asking for it makes ``mynacard_reader`` record every exchange there.
  ``--mynacard-trace-dir DIR`` records every test's exchanges, one file per test.

Faults: ``@pytest.mark.mynacard_faults("remove-after=5,seed=1")`` or
``--mynacard-faults=…`` makes ``mynacard_reader`` misbehave as ``readers.faults`` describes
(docs/faults.md); the wrapped reader's ``events`` says what happened.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the plugin loads in every pytest run: import the simulator only when used
    from ..clock import VirtualClock
    from ..jpki.ca import SimulatorPKI
    from ..jpki.server import RevocationServer
    from ..readers.base import CardConnection, Reader
    from .harness import Harness
    from .pcsc import PcscSlot

READER_KINDS = ("sim", "pcsc")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mynacard", "mynacard: test card applications on a simulated card")
    group.addoption("--mynacard-reader", choices=READER_KINDS, default=None,
                    help="reader the mynacard_reader fixture uses: sim (in-process, the "
                         "default) or pcsc (the simulator served through pcscd + vpcd)")
    group.addoption("--mynacard-faults", default=None, metavar="OPTIONS",
                    help="fault injection for mynacard_reader, e.g. remove-after=5,seed=1 "
                         "(a mynacard_faults marker overrides it)")
    group.addoption("--mynacard-trace-dir", default=None, metavar="DIR",
                    help="record every test's APDUs through mynacard_reader into DIR, one JSON "
                         "Lines file per test, secrets redacted")
    parser.addini("mynacard_ca_generations", "key generations of each simulator CA (default 1)",
                  default="1")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mynacard_reader(kind): run this test's mynacard_reader "
                                       "on 'sim' or 'pcsc' (overrides --mynacard-reader)")
    config.addinivalue_line("markers", "mynacard_card(persona, **overrides): the card "
                                       "mynacard_card and mynacard_reader hold")
    config.addinivalue_line("markers", "mynacard_faults(options): fault injection for this "
                                       "test's mynacard_reader (readers.faults option string)")


RAM_DISK = Path("/dev/shm")


@pytest.fixture(scope="session")
def mynacard_harness(tmp_path_factory: pytest.TempPathFactory,
                     pytestconfig: pytest.Config) -> Iterator[Harness]:
    from .harness import Harness

    generations = int(pytestconfig.getini("mynacard_ca_generations"))
    # The PKI store and the card images make every write durable (fsync), which costs
    # milliseconds a write on a disk and nothing in RAM: a state machine writes thousands.
    on_ram_disk = RAM_DISK.is_dir() and os.access(RAM_DISK, os.W_OK)
    workdir = (Path(tempfile.mkdtemp(prefix="mynacard-", dir=RAM_DISK)) if on_ram_disk
               else tmp_path_factory.mktemp("mynacard"))
    harness = Harness(workdir, ca_generations=generations)
    yield harness
    harness.close()
    if on_ram_disk:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def mynacard_pki(mynacard_harness: Harness) -> SimulatorPKI:
    return mynacard_harness.pki


@pytest.fixture
def mynacard_clock(mynacard_harness: Harness) -> Iterator[VirtualClock]:
    yield mynacard_harness.clock
    mynacard_harness.clock.unfreeze()


@pytest.fixture(scope="session")
def card_factory(mynacard_harness: Harness) -> Callable[..., Path]:
    """``card_factory(persona="kokutou-mikiya", **overrides)``: persona is a shipped persona's
    name, a YAML file or a mapping; overrides change its fields (``pins={"auth": "9999"}``).
    Every call makes a new card, so the fixture is session-wide: ``@given`` tests may call it
    once per example."""
    def make(persona: Any = "kokutou-mikiya", **overrides: Any) -> Path:
        return mynacard_harness.card(persona, **overrides)

    return make


@pytest.fixture
def mynacard_card(request: pytest.FixtureRequest, card_factory: Callable[..., Path]) -> Path:
    marker = request.node.get_closest_marker("mynacard_card")
    if marker is None:
        return card_factory()
    return card_factory(*marker.args, **marker.kwargs)


def _reader_kind(request: pytest.FixtureRequest) -> str:
    marker = request.node.get_closest_marker("mynacard_reader")
    kind = (marker.args[0] if marker and marker.args
            else request.config.getoption("--mynacard-reader") or "sim")
    if kind not in READER_KINDS:
        raise pytest.UsageError(f"mynacard_reader({kind!r}): use one of {', '.join(READER_KINDS)}")
    return kind


@pytest.fixture(scope="session")
def _mynacard_pcsc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PcscSlot]:
    from .pcsc import ForeignPcscdError, PcscSlot, pcsc_unavailable_reason

    reason = pcsc_unavailable_reason()
    if reason:
        pytest.skip(reason)
    try:
        slot = PcscSlot(tmp_path_factory.mktemp("mynacard-pcscd"))
    except ForeignPcscdError as exc:
        pytest.skip(f"--mynacard-reader=pcsc: {exc}")
    yield slot
    slot.close()


@pytest.fixture
def mynacard_reader(request: pytest.FixtureRequest, mynacard_card: Path) -> Iterator[Reader]:
    """A reader holding ``mynacard_card`` (with faults and a trace when the test asks)."""
    if _reader_kind(request) == "pcsc":
        from ..readers.pcsc import PcscReader

        slot: PcscSlot = request.getfixturevalue("_mynacard_pcsc")
        slot.insert(mynacard_card)
        yield _wrapped(request, PcscReader(slot.reader_name))
        slot.remove()
        return
    from ..cardsim.card import VirtualCard
    from ..readers.simulator import SimulatorReader

    card = VirtualCard.open(mynacard_card)
    # The card object stays in the slot, so reader.remove() and reader.insert(card) work.
    reader = SimulatorReader(f"mynacard simulator ({mynacard_card.name})", card=card)
    yield _wrapped(request, reader)
    reader.remove()
    card.close()


def _wrapped(request: pytest.FixtureRequest, reader: Reader) -> Reader:
    """Faults innermost, the trace outermost: the trace shows what the host saw."""
    marker = request.node.get_closest_marker("mynacard_faults")
    faults = (marker.args[0] if marker and marker.args
              else request.config.getoption("--mynacard-faults"))
    if faults:
        from ..readers.faults import FaultPlan, FaultyReader

        reader = FaultyReader(reader, FaultPlan.parse(faults))
    trace = _trace_path(request)
    if trace is not None:
        from ..readers.trace import TracingReader

        reader = TracingReader(reader, trace)
    return reader


def _trace_path(request: pytest.FixtureRequest) -> Path | None:
    if "mynacard_trace" in request.fixturenames:
        return request.getfixturevalue("mynacard_trace")
    directory = request.config.getoption("--mynacard-trace-dir")
    if directory is None:
        return None
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.nodeid)
    Path(directory).mkdir(parents=True, exist_ok=True)
    return Path(directory) / f"{safe}.jsonl"


@pytest.fixture
def mynacard_trace(tmp_path: Path) -> Path:
    """Where ``mynacard_reader`` records this test's APDUs (secrets redacted)."""
    return tmp_path / "apdu-trace.jsonl"


@pytest.fixture
def card_connection(mynacard_reader: Reader) -> Iterator[CardConnection]:
    connection = mynacard_reader.connect()
    yield connection
    connection.disconnect()


@pytest.fixture
def revocation_server(mynacard_harness: Harness,
                      mynacard_clock: VirtualClock) -> RevocationServer:
    """The CRL/OCSP server on loopback (``.url``), its CRLs just published (dated by the
    clock); the certificates of every card the factory makes point at it.
    ``mynacard_harness.publish()`` publishes again."""
    mynacard_harness.publish()
    return mynacard_harness.server
