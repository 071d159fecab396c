"""The CLI: the command list, --version, exit codes."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from mvbench import __version__
from mvbench.cli import app

COMMANDS = ["build", "generate", "eval", "score", "export", "publish", "materialise", "leaderboard", "train", "reward-stats",
            "fixtures", "demo"]


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f" {name} " in result.output, name


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"mvbench {__version__}"


def test_exit_codes_and_record_in_error_messages(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"conversations": [], "video": [], "metadata": {}, "qa_type": "tal", "data_source": "AVOS"}]')
    proc = subprocess.run([sys.executable, "-c", "from mvbench.cli import main; main()", "eval", "--data", str(bad),
                           "--model", "baseline:prior", "--out", str(tmp_path / "o"), "--no-judge"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"{bad} [0]: conversations must be" in " ".join(proc.stderr.split())  # the [record] part survives
    assert "Traceback" not in proc.stderr
    ok = subprocess.run([sys.executable, "-c", "from mvbench.cli import main; main()", "leaderboard", "--with-paper",
                         "--format", "csv"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("#,model")


def test_a_command_exit_code_reaches_the_shell() -> None:
    # `typer.Exit(n)` inside a command (e.g. `build --keep-going` with failures) must give exit status n.
    code = ("import typer, mvbench.cli as c\n"
            "@c.app.command('exit-probe')\n"
            "def probe():\n"
            "    raise typer.Exit(3)\n"
            "c.main()")
    proc = subprocess.run([sys.executable, "-c", code, "exit-probe"], capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
