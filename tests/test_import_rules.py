"""Import rules that lint-imports cannot see: nothing imports the package's folders by their
bare names. From a checkout ``import cardsim`` works (pytest puts the root on sys.path) and
would pass every test, then break in a wheel, where only ``mynacard.cardsim`` exists. Ruff's
banned-import rule cannot tell, since it resolves relative imports from the folder itself."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OWN_NAMES = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()} | {
    p.stem for p in ROOT.glob("*.py")}
SKIP = {".venv", ".git", "build", ".hypothesis"}


def bare_imports(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names
                      if a.name.split(".")[0] in OWN_NAMES]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] in OWN_NAMES:
            found.append((node.lineno, node.module))
    return found


def test_own_names_cover_the_layout() -> None:
    assert {"cardsim", "jpki", "client", "readers", "facts", "cli", "errors"} <= OWN_NAMES


def test_nothing_imports_a_bare_package_name() -> None:
    offenders = []
    for path in ROOT.rglob("*.py"):
        if SKIP & set(path.relative_to(ROOT).parts):
            continue
        for line, name in bare_imports(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert offenders == []


def test_a_planted_bare_import_is_caught() -> None:
    assert bare_imports("import cardsim.card\nfrom jpki import ca\nfrom .facts import x\n") \
        == [(1, "cardsim.card"), (2, "jpki")]
