"""The plugin's reader through pcscd + vpcd, chosen by option or marker without changing the test.

It runs a pytest session of its own (in a subprocess) that starts and stops its own pcscd, so it
must run before this session's PC/SC harness starts the machine's only pcscd: the file name
sorts it first among the pcscd group, which one xdist worker runs in collection order.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mynacard.readers.pcscd import running_pcscd_pids
from mynacard.testing.pcsc import pcsc_unavailable_reason

from .conftest import pcsc_unavailable

pytestmark = pytest.mark.xdist_group("pcscd")

READER_TEST = """
import pytest
from mynacard.client.jpki import JPKIClient, JPKIKey
from mynacard.readers.pcsc import PcscReader
from mynacard.readers.simulator import SimulatorReader

def test_by_option(mynacard_reader, card_connection):
    assert isinstance(mynacard_reader, PcscReader)
    JPKIClient(card_connection).verify(JPKIKey.AUTH, "1234")

@pytest.mark.mynacard_reader("sim")
def test_marker_wins_over_option(mynacard_reader):
    assert isinstance(mynacard_reader, SimulatorReader)
"""


def test_the_plugin_reader_runs_through_pcscd_when_asked(tmp_path):
    reason = pcsc_unavailable_reason()
    if reason:
        pcsc_unavailable(reason)
    if running_pcscd_pids():
        pcsc_unavailable("a pcscd is already running; this test starts its own")
    (tmp_path / "test_reader.py").write_text(READER_TEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS"))}
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                             "--mynacard-reader=pcsc", "test_reader.py"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    assert not running_pcscd_pids(), "the plugin left its pcscd running"
