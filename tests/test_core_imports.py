"""Core (``mvbench/`` outside ``mvbench/cli``) imports no wing; the builders never load eval.

Each module is imported in a fresh interpreter, so a wing pulled in lazily at import time (or by
a module that core imports) shows up in ``sys.modules``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WINGS = ("mvbench.builders", "mvbench.eval", "mvbench.training", "mvbench.leaderboard", "mvbench.generation",
         "mvbench.cli")


def _modules(folder: Path, package: str, skip: tuple[str, ...] = ()) -> list[str]:
    names = []
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(folder).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        name = ".".join([package, *parts])
        if not any(name == s or name.startswith(s + ".") for s in skip):
            names.append(name)
    return names


CORE = _modules(REPO / "mvbench", "mvbench", skip=("mvbench.cli",))

_PROBE = """
import importlib, sys
importlib.import_module(sys.argv[1])
loaded = sorted(m for m in sys.modules if any(m == w or m.startswith(w + ".") for w in sys.argv[2].split(",")))
print(",".join(loaded))
"""


def _loaded_wings(module: str, wings: tuple[str, ...]) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", _PROBE, module, ",".join(wings)], capture_output=True, text=True,
                          cwd=REPO, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    return [m for m in out.split(",") if m]


@pytest.mark.parametrize("module", CORE)
def test_core_module_loads_no_wing(module: str) -> None:
    assert _loaded_wings(module, WINGS) == [], f"{module} loads a wing"


@pytest.mark.parametrize("module", ["mvbench.builders", "mvbench.builders.pipeline", "mvbench.builders.export",
                                    "mvbench.builders.balance"])
def test_builders_never_load_eval(module: str) -> None:
    assert _loaded_wings(module, ("mvbench.eval", "mvbench.training", "mvbench.leaderboard",
                                  "mvbench.generation")) == []


def test_no_wing_import_or_import_module_in_core_sources() -> None:
    """The issue's grep: no ``from/import mvbench.<wing>`` and no ``import_module`` in core."""
    pattern = re.compile(r"^\s*(from|import) mvbench\.(builders|eval|training|leaderboard|generation|cli)|import_module")
    hits = [f"{p.relative_to(REPO)}:{i + 1}" for p in (REPO / "mvbench").rglob("*.py")
            if "cli" not in p.relative_to(REPO / "mvbench").parts
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines()) if pattern.search(line)]
    assert hits == []
