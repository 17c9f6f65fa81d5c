"""What a user gets from ``pip install mynacard`` (not the editable checkout): one top-level
name, the personas and the compiled CRL scanner inside it, and a working ``mynacard demo``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy: pip builds in the source tree and would leave build/ behind.
    source = out / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.so", "__pycache__", ".hypothesis", ".pytest_cache",
        "*.egg-info", "demo-out"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
                    str(source)],
                   check=True, capture_output=True, timeout=300)
    (built,) = out.glob("mynacard-*.whl")
    return built


def test_the_wheel_holds_only_the_mynacard_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"mynacard", next(t for t in top if t.endswith(".dist-info"))}
    assert "mynacard/vectors/personas/kokutou-mikiya.yaml" in names
    assert "mynacard/vectors/keys.json" in names
    assert "mynacard/cli.py" in names and "mynacard/__main__.py" in names
    assert not any(n.startswith("mynacard/tests/") or n == "mynacard/setup.py" for n in names)


def test_demo_runs_from_a_plain_install(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    # The project's own dependencies are already installed here; the new environment sees
    # them, so the install needs no network and tests exactly the wheel's contents.
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run([sys.executable, "-c", "import cryptography, sys; "
                           "print(cryptography.__file__.rsplit('/cryptography/', 1)[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    target = subprocess.run([str(python), "-c", "import sysconfig; "
                             "print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    Path(target, "deps.pth").write_text(site + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--target", target, str(wheel)], check=True, capture_output=True,
                   timeout=300)
    result = subprocess.run([str(python), "-m", "mynacard", "demo", "--out",
                             str(tmp_path / "demo")], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "9 steps passed" in result.stdout
    located = subprocess.run([str(python), "-c", "import mynacard.cli, mynacard.jpki.crlindex "
                              "as c; print(mynacard.cli.__file__, c._crlscan is not None)"],
                             capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert located.startswith(target) and located.strip().endswith("True")
