"""Hostile card images: a crafted image must never reach outside itself, destroy itself, hang
or escape as a traceback. Opening one either works or raises a clear ``CardImageError``,
and a refused image is left exactly as it was (issue 9, hardening items 1 and 6)."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.freespace import AREA_FILE_NAME, JOURNAL, REGISTRY, _seal
from mynacard.cardsim.storage import CardImageError, CardStore
from mynacard.cli import main

APPLET = "applet-f06d796e61636f756e7401"
APPLET_DATA = {"files": {"0001": "00000007"}, "pins": {}, "counters": {}, "counter_max": {}}
REGISTRY_DATA = {"instances": [{"aid": APPLET[len("applet-"):], "load_file": "f06d796e61",
                                "quota": 512}]}


def snapshot(root: Path) -> dict[str, Any]:
    """Every entry under ``root`` (the tmp dir holding the image and the victims): kind and
    content, so that "nothing was touched" is one comparison."""
    state: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                state[str(path)] = ("link", os.readlink(path))
            elif path.is_file():
                state[str(path)] = ("file", path.read_bytes())
            else:
                state[str(path)] = ("dir",)
    state.pop(str(root / "card-kokutou-mikiya" / "lock"), None)  # created by any open
    return state


def plant_journal(card_dir: Path, updates: dict[str, Any]) -> None:
    area = card_dir / "freespace"
    area.mkdir(exist_ok=True)
    (area / JOURNAL).write_bytes(_seal({"updates": updates}))


def assert_refused(card_dir: Path, root: Path, match: str) -> None:
    before = snapshot(root)
    with pytest.raises(CardImageError, match=match):
        VirtualCard.open(card_dir, sync=False)
    assert snapshot(root) == before
    CardStore.open(card_dir).close()  # the refusal released the image lock


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text("precious")
    return path


@pytest.mark.parametrize("content", [None, APPLET_DATA], ids=["delete", "overwrite"])
@pytest.mark.parametrize("name", [
    "../../victim.txt",
    "VICTIM_ABSOLUTE",
    "../card.json",
    "../counters.bin",
    f"{APPLET}\x00",
    "applet-\x00f06d796e61636f756e7401",
    f"{APPLET}/../../../victim.txt",
    "registry/",
    "./registry",
    JOURNAL,
    "APPLET-F06D796E61636F756E7401",
    "applet-f06d79",  # an AID shorter than 5 bytes
    "applet-" + "00" * 17,  # longer than 16
    "",
    ".",
    "..",
])
def test_journal_naming_anything_but_an_area_file_is_refused(
        card_dir: Path, tmp_path: Path, victim: Path, name: str, content: Any) -> None:
    name = str(victim) if name == "VICTIM_ABSOLUTE" else name
    # The valid update first: a partial replay would apply it before meeting the bad name.
    plant_journal(card_dir, {REGISTRY: REGISTRY_DATA, APPLET: APPLET_DATA, name: content})
    assert_refused(card_dir, tmp_path, "not a file of the area")
    assert victim.read_text() == "precious"
    assert not (card_dir / "freespace" / REGISTRY).exists()


@pytest.mark.parametrize(("updates", "match"), [
    ({REGISTRY: {"instances": [{"aid": "zz" * 5, "load_file": "00", "quota": 1}]}},
     "registry is malformed"),
    ({REGISTRY: {"instances": "all"}}, "registry is malformed"),
    ({APPLET: {"files": {"0001": "not hex"}, "pins": {}, "counters": {},
               "counter_max": {}}}, "applet data is malformed"),
    ({APPLET: ["a list"]}, "applet data is malformed"),
    ({APPLET: "text"}, "applet data is malformed"),
])
def test_journal_with_content_the_card_could_not_have_written_is_refused(
        card_dir: Path, tmp_path: Path, updates: dict[str, Any], match: str) -> None:
    plant_journal(card_dir, {REGISTRY: REGISTRY_DATA, **updates})
    assert_refused(card_dir, tmp_path, match)


@pytest.mark.parametrize("body", [[], {"updates": []}, {"updates": "x"}, {}])
def test_journal_without_an_update_list_is_refused(card_dir: Path, tmp_path: Path,
                                                   body: Any) -> None:
    area = card_dir / "freespace"
    area.mkdir()
    (area / JOURNAL).write_bytes(_seal(body))
    assert_refused(card_dir, tmp_path, "journal is malformed")


def test_journal_writing_through_a_symlink_is_refused(card_dir: Path, tmp_path: Path,
                                                      victim: Path) -> None:
    plant_journal(card_dir, {APPLET: APPLET_DATA})
    (card_dir / "freespace" / APPLET).symlink_to(victim)
    assert_refused(card_dir, tmp_path, "cannot be opened")
    assert victim.read_text() == "precious"


def test_journal_writing_through_a_hard_link_is_refused(card_dir: Path, tmp_path: Path,
                                                        victim: Path) -> None:
    plant_journal(card_dir, {APPLET: APPLET_DATA})
    os.link(victim, card_dir / "freespace" / APPLET)
    assert_refused(card_dir, tmp_path, "not a plain file")
    assert victim.read_text() == "precious"


def test_area_that_is_a_symlink_elsewhere_is_refused(card_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / JOURNAL).write_bytes(_seal({"updates": {REGISTRY: REGISTRY_DATA}}))
    (card_dir / "freespace").symlink_to(elsewhere)
    assert_refused(card_dir, tmp_path, "is not a directory")


def test_a_legitimate_journal_still_rolls_forward(card_dir: Path) -> None:
    plant_journal(card_dir, {REGISTRY: REGISTRY_DATA, APPLET: APPLET_DATA})
    card = VirtualCard.open(card_dir, sync=False)
    try:
        assert [i.file_name for i in card.freespace.instances.values()] == [APPLET]
        assert not (card_dir / "freespace" / JOURNAL).exists()
    finally:
        card.close()


def test_area_names_are_only_the_registry_and_applet_files() -> None:
    assert AREA_FILE_NAME.fullmatch(REGISTRY) and AREA_FILE_NAME.fullmatch(APPLET)
    assert not AREA_FILE_NAME.fullmatch(f"{APPLET}\n")  # fullmatch: no trailing newline


def test_cli_refuses_a_crafted_image_in_one_line(card_dir: Path, tmp_path: Path,
                                                 victim: Path) -> None:
    plant_journal(card_dir, {"../../victim.txt": None})
    before = snapshot(tmp_path)
    result = CliRunner().invoke(main, ["card", "pin-status", "--card", str(card_dir)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.count("\n") == 1 and "not a file of the area" in result.output
    assert victim.read_text() == "precious" and snapshot(tmp_path) == before



# -- item 6: tampered images give a clear CardImageError, never a traceback or a hang ---------

@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail instead of hanging (a FIFO opened for reading blocks until a writer comes)."""
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _replace(path: Path, kind: str, target: Path | None = None) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    elif kind == "file":
        path.write_bytes(b"not a directory")
    else:
        assert target is not None
        path.symlink_to(target)


def _nested_card_json(card_dir: Path, tmp_path: Path) -> None:
    (card_dir / "card.json").write_text("[" * 100_000 + "]" * 100_000)


def _registry_aid_not_hex(card_dir: Path, tmp_path: Path) -> None:
    (card_dir / "freespace").mkdir(exist_ok=True)
    (card_dir / "freespace" / REGISTRY).write_bytes(_seal(
        {"instances": [{"aid": "not hex at all", "load_file": "f06d796e61", "quota": 1}]}))


def _registry_aid_odd(card_dir: Path, tmp_path: Path) -> None:
    (card_dir / "freespace").mkdir(exist_ok=True)
    (card_dir / "freespace" / REGISTRY).write_bytes(_seal(
        {"instances": [{"aid": "../x", "load_file": "00", "quota": "lots"}]}))


def _kind(name: str, kind: str) -> Callable[[Path, Path], None]:
    def tamper(card_dir: Path, tmp_path: Path) -> None:
        if name.startswith("freespace/"):
            (card_dir / "freespace").mkdir(exist_ok=True)
        outside = tmp_path / "outside"
        outside.mkdir(exist_ok=True)
        _replace(card_dir / name, kind, outside / "new-file")
    tamper.__name__ = f"{name} is a {kind}"
    return tamper


@pytest.mark.parametrize("tamper", [
    _nested_card_json,
    _kind("counters.bin", "fifo"),
    _kind("counters.bin", "dir"),
    _kind("counters.bin", "link"),
    _kind("lock", "fifo"),
    _kind("lock", "dir"),
    _kind("lock", "link"),  # a dangling link: opening it would create a file outside
    _kind("freespace", "fifo"),
    _kind("freespace", "file"),
    _kind("freespace", "link"),
    _kind("freespace/registry", "fifo"),
    _kind("freespace/registry", "dir"),
    _kind("freespace/registry", "link"),
    _kind("freespace/journal", "fifo"),
    _kind("freespace/journal", "dir"),
    _registry_aid_not_hex,
    _registry_aid_odd,
], ids=lambda t: t.__name__)
def test_tampered_image_gives_a_clear_error(card_dir: Path, tmp_path: Path,
                                            tamper: Callable[[Path, Path], None]) -> None:
    tamper(card_dir, tmp_path)
    with deadline(10), pytest.raises(CardImageError):
        VirtualCard.open(card_dir, sync=False)
    assert not (tmp_path / "outside" / "new-file").exists()  # nothing created outside
