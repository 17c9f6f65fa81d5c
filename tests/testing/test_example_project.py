"""The outside example project (examples/library-kiosk) runs on the installed plugin alone: its
tests pass, and its planted bug (a kiosk accepting a certificate on hold) is found by the
card-holder state machine and shrunk to the two steps that show it."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "library-kiosk"


def run_example(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Nothing left in the example's folder (cache, bytecode, hypothesis' directory); xdist's
    # settings are ours, not its.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS"))}
    env.update(PYTHONDONTWRITEBYTECODE="1", HYPOTHESIS_STORAGE_DIRECTORY=str(tmp_path))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=600)


def test_the_plugin_is_registered_as_a_pytest11_entry_point():
    entry = [e for e in importlib.metadata.entry_points(group="pytest11") if e.name == "mynacard"]
    assert [e.value for e in entry] == ["mynacard.testing.plugin"]


def test_the_example_has_no_conftest_and_imports_only_the_public_api():
    assert not list(EXAMPLE.rglob("conftest.py"))
    imported = set()
    for source in EXAMPLE.rglob("*.py"):
        imported |= set(re.findall(r"^(?:from|import) (mynacard[.\w]*)", source.read_text(),
                                   re.MULTILINE))
    public = ("mynacard.testing", "mynacard.readers", "mynacard.client")
    assert imported and all(name.startswith(public) for name in imported), imported


def test_the_example_project_passes(tmp_path):
    result = run_example(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b7 passed, 1 deselected\b", result.stdout), result.stdout


def test_the_planted_bug_is_found_and_shrunk(tmp_path):
    result = run_example(tmp_path, "-m", "planted_bug")
    assert result.returncode == 1, result.stdout + result.stderr
    steps = re.findall(r"^E\s+state\.(\w+)\(\)$", result.stdout, re.MULTILINE)
    actions = [s for s in steps if s not in ("card_agrees_with_model", "pki_agrees_with_model")]
    assert actions == ["report_loss", "holder_borrows_a_book", "teardown"], result.stdout
    assert "state = TrustingKioskMachine()" in result.stdout
    assert "the kiosk said 'welcome' to a card whose certificate a relying party finds on-hold" \
        in result.stdout
