"""The CLI's edges: usage errors, Ctrl-C and SIGTERM as one line each, quiet HTTP loggers, tidy --help."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mvbench.cli import QUIET_LOGGERS, app

MAIN = "from mvbench.cli import main; main()"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", MAIN, *args], capture_output=True, text=True)


@pytest.mark.parametrize("args, message", [
    (["eval"], "Missing option '--model'"),
    (["nosuchcmd"], "No such command 'nosuchcmd'"),
    (["eval", "--data", "d", "--model", "m", "--out", "o", "--limit", "abc"], "Invalid value for '--limit'"),
    (["leaderboard", "--format", "xx"], "Invalid value for '--format'"),
])
def test_usage_errors_are_one_line_with_exit_code_2(args: list[str], message: str) -> None:
    proc = _run(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "--help" in lines[0]  # says where to look


def _probe(body: str) -> str:
    """Python source that adds a `probe` command running ``body`` and starts the CLI."""
    indented = "\n".join("    " + line for line in body.splitlines())
    return f"import time, typer, mvbench.cli as c\n@c.app.command('probe')\ndef probe():\n{indented}\nc.main()"


def test_ctrl_c_prints_one_line_and_exits_130() -> None:
    proc = subprocess.run([sys.executable, "-c", _probe("raise KeyboardInterrupt"), "probe"],
                          capture_output=True, text=True)
    assert proc.returncode == 130
    assert proc.stderr.strip() == "interrupted: answers so far are saved; rerun the same command to resume"


def test_sigterm_runs_finally_blocks_and_exits_143(tmp_path: Path) -> None:
    ready, cleaned = tmp_path / "ready", tmp_path / "cleaned"
    body = (f"try:\n    open({str(ready)!r}, 'w').close()\n    time.sleep(60)\n"
            f"finally:\n    open({str(cleaned)!r}, 'w').close()")
    # (the context manager closes the pipes whatever happens)
    with subprocess.Popen([sys.executable, "-c", _probe(body), "probe"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            deadline = time.monotonic() + 30
            while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert ready.exists(), proc.stderr.read() if proc.poll() is not None else "probe did not start"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 143
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert cleaned.exists()  # the finally block ran (a launched vLLM server would be stopped)


def test_http_loggers_are_quiet_unless_verbose() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["sources"]).exit_code == 0
    assert all(logging.getLogger(n).getEffectiveLevel() == logging.WARNING for n in QUIET_LOGGERS)
    assert runner.invoke(app, ["-v", "sources"]).exit_code == 0
    assert all(logging.getLogger(n).getEffectiveLevel() == logging.DEBUG for n in QUIET_LOGGERS)


@pytest.mark.parametrize("command", [[], ["build"], ["generate"], ["eval"], ["score"], ["export"], ["leaderboard"], ["demo"],
                                     ["fixtures", "make"], ["balance"], ["sources"]])
def test_help_shows_flags_without_a_value_and_arguments_by_name(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "--help " in result.output
    if command == ["leaderboard"]:
        assert "RESULTS..." in result.output and "<list[Path]>" not in result.output
    if command == ["export"]:
        assert "IN_DIR" in result.output and "OUT_DIR" in result.output and "<path>  A built" not in result.output


def test_an_unexpected_key_error_is_one_line_that_says_how_to_see_more() -> None:
    proc = subprocess.run([sys.executable, "-c", _probe("raise KeyError('frame')"), "probe"], capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "internal error" in proc.stderr and "MVBENCH_DEBUG" in proc.stderr
    proc = subprocess.run([sys.executable, "-c", _probe("from mvbench.tasks import TASKS\nTASKS.get('TGA')"), "probe"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "unknown task 'TGA'" in proc.stderr and "internal" not in proc.stderr


def test_an_rc_record_without_its_box_names_the_record(tmp_path: Path) -> None:
    import json

    rec = json.loads((Path(__file__).parent / "data" / "medvidbench-samples" / "test_rc_gpt_cholectrack20.json")
                     .read_text(encoding="utf-8"))[0]
    del rec["RC_info"]["start_frame_bbox"]
    (tmp_path / "rc.json").write_text(json.dumps([rec]))
    proc = _run("eval", "--data", str(tmp_path / "rc.json"), "--model", "baseline:prior", "--out", str(tmp_path / "o"),
                "--no-judge", "--frames-root", str(tmp_path))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "RC_info needs start_frame" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
