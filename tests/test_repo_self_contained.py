"""The repository is self-contained: no test, fixture, conftest or test runner reads data from outside it.

Tests read the real data shipped under ``tests/data`` (see ``tests/conftest.py``); a fresh clone
with nothing beside it must pass the suite.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_S = "sha" + "red"  # spelled in pieces so this file does not match itself
FORBIDDEN = re.compile("|".join([r"\.\./" + _S, "/work/" + _S, "MVBENCH_" + _S.upper(), _S + "/data",
                                 "[\"']" + _S + "[\"']"]))
TEXT_SUFFIXES = {".py", ".toml", ".cfg", ".ini", ".json", ".md", ".txt", ".sh", ".yaml", ".yml", ""}


def _files() -> list[Path]:
    files = [p for p in (REPO / "tests").rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES]
    files += list((REPO / "builders" / "fixtures").rglob("*.py"))   # fixture tree writers
    files += list((REPO / "mvbench" / "testing").rglob("*.py"))     # test helpers in the package
    files += [REPO / name for name in ("pyproject.toml", "setup.py", "Makefile", ".ci/run")]
    return [f for f in files if "__pycache__" not in f.parts and f.is_file()]


def test_no_test_or_fixture_refers_to_data_outside_the_repository() -> None:
    hits = []
    for path in _files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), 1):
            if FORBIDDEN.search(line):
                hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not hits, "tests must use tests/data, not data beside the checkout:\n" + "\n".join(hits)


def test_the_guard_catches_each_spelling(tmp_path: Path) -> None:
    for line in (f'ROOT = REPO.parent / "{_S}" / "data"', f'Path("/work/{_S}/data/nurvid")',
                 f'os.environ["MVBENCH_{_S.upper()}"]', f'open("../{_S}/x")', f"{_S}/data/nurvid"):
        assert FORBIDDEN.search(line), line


def test_shipped_data_sets_carry_their_licence_and_attribution() -> None:
    for name in ("nurvid", "medvidbench-samples"):
        folder = REPO / "tests" / "data" / name
        assert (folder / "README.md").is_file() and (folder / "LICENSE.md").is_file(), folder
        text = (folder / "LICENSE.md").read_text(encoding="utf-8")
        assert "creativecommons.org/licenses/" in text, folder
        assert "Authors / citation" in text or "Benchmark:" in text, folder  # the attribution


def test_the_suite_fails_on_resource_warnings(request) -> None:
    filters = request.config.getini("filterwarnings")
    assert "error::ResourceWarning" in filters
    assert "error::pytest.PytestUnraisableExceptionWarning" in filters  # those raised in __del__
