"""Packaging: a non-editable install in a fresh venv exposes the whole mvbench.* namespace."""

from __future__ import annotations

import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_non_editable_install_in_fresh_venv(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # Dependencies come from this test's environment through a plain path line: a path in a .pth file
    # is added to sys.path without running that folder's own .pth hooks, so the editable install of
    # the checkout stays invisible and mvbench must come from the fresh non-editable install.
    fresh_site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                check=True, capture_output=True, text=True).stdout.strip()
    Path(fresh_site, "deps-from-test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --no-deps: this checks the folder -> namespace mapping and package data, not dependency resolution.
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", str(REPO)], check=True,
                   cwd=tmp_path)
    code = ("import mvbench.builders, mvbench.eval, mvbench.training, mvbench.leaderboard, mvbench.prompts;"
            "from mvbench.prompts import load; print(load('tasks/tag')['version']);"
            "import mvbench.builders.base, mvbench.eval.backends.base; print(mvbench.builders.__file__)")
    out = subprocess.run([str(py), "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.splitlines()[0] == "1"
    assert out.stdout.splitlines()[1].startswith(fresh_site) and str(REPO) not in out.stdout
    data = subprocess.run([str(py), "-c", "from mvbench.tasks import nap; print(len(nap.nurvid_procedures()))"],
                          check=True, capture_output=True, text=True, cwd=tmp_path)
    assert data.stdout.strip() == "49"  # package data (mvbench/tasks/data/nap_classes.json) is installed


# What setuptools used to print on every install (about 300 lines): the deprecated license table and
# one "Package would be ignored" block per data folder. Any BuildBackendWarning but the editable
# notice below is a regression too.
PACKAGING_WARNINGS = ("deprecated", "absent from the `packages` configuration", "Package would be ignored")
EDITABLE_NOTICE = "BuildBackendWarning: Editable installation."  # setuptools' notice for any mapped layout


def _install_output(tmp_path: Path, *args: str) -> str:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    # -v: pip shows the build backend's output (newer pips show its warnings even without it)
    proc = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-v", "--no-deps", *args],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("editable", [False, True], ids=["pip install .", "pip install -e ."])
def test_install_prints_no_packaging_warnings(tmp_path: Path, editable: bool) -> None:
    out = _install_output(tmp_path, *(["-e", str(REPO)] if editable else [str(REPO)]))
    assert not [w for w in PACKAGING_WARNINGS if w in out], out
    warnings = [line for line in out.splitlines() if "Warning:" in line and EDITABLE_NOTICE not in line]
    assert not warnings, out
