"""The CLI: the command list, --version, and commands that have not landed saying so."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from mvbench import __version__
from mvbench.cli import app

COMMANDS = ["build", "eval", "score", "export", "publish", "leaderboard", "train", "reward-stats",
            "fixtures", "demo"]


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f" {name} " in result.output, name


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"mvbench {__version__}"


def test_pending_command_says_so_and_fails() -> None:
    proc = subprocess.run([sys.executable, "-c", "from mvbench.cli import main; main()", "train", "--x"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "has not landed yet" in proc.stderr
