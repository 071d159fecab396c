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
