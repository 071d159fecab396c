"""Every command, fed bad values, fails with one line on stderr, a non-zero exit and no traceback.

The table covers each command ``mvbench --help`` lists (a test checks that none is missing) with a
missing path, a directory where a file is expected (and a file where a folder is), an empty file,
invalid JSON, JSON of the wrong shape, zero / negative / non-finite numbers and garbage strings.
Commands run in-process through :func:`mvbench.cli.main` (its error handling included); any
exception escaping it is a traceback the user would have seen.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

import pytest

from mvbench.cli import app, main

EMPTY = "EMPTY"          # an empty file
BADJSON = "BADJSON"      # a file that is not JSON
SHAPE = "SHAPE"          # valid JSON of the wrong shape (a number)
DIR = "DIR"              # an existing folder, where a file is expected
FILE = "FILE"            # an existing (non-empty, non-JSON) file, where a folder is expected
MISSING = "MISSING"      # a path that does not exist
OUT = "OUT"              # a fresh output folder

NUMBERS = ["0", "-1", "abc", "nan", "inf", "1e999"]

CASES: dict[str, list[list[str]]] = {
    "sources": [["sources", "extra"]],
    "build": (
        [["build", "--source", "nurvid", "--root", r, "--out", OUT, "--plan-only"] for r in (MISSING, FILE, DIR)]
        + [["build", "--source", "nurvid", "--root", DIR, "--out", FILE, "--plan-only"]]
        + [["build", "--source", "nosuchsource", "--root", DIR, "--out", OUT]]
        + [["build", "--source", "nurvid", "--root", DIR, "--out", OUT, flag, v]
           for flag in ("--workers", "--max-frames", "--shard-size") for v in NUMBERS]
        + [["build", "--source", "nurvid", "--root", DIR, "--out", OUT, "--executor", "garbage"],
           ["build", "--source", "nurvid", "--root", DIR, "--out", OUT, "--tasks", "XYZ"],
           ["build", "--source", "nurvid", "--root", DIR, "--out", OUT, "--option", "garbage"],
           ["build", "--source", "nurvid", "--root", DIR, "--out", OUT, "--option", "nosuchkey=1"],
           ["build", "--source", "nurvid", "--root", DIR, "--out", OUT, "--seed", "abc"]]
        + [["build", "--source", "nurvid", "--root", DIR, "--out", OUT, "--split-file", p]
           for p in (MISSING, DIR, EMPTY, BADJSON, SHAPE)]
        + [["build", "--source", "all", "--root", DIR, "--out", OUT], ["build"]]
    ),
    "balance": (
        [["balance", p, OUT, "--cap", "5"] for p in (MISSING, FILE, DIR)]
        + [["balance", DIR, OUT, "--cap", v] for v in NUMBERS]
        + [["balance", DIR, FILE, "--cap", "5"], ["balance", DIR, OUT, "--cap", "5", "--seed", "abc"]]
    ),
    "eval": (
        [["eval", "--model", "baseline:prior", "--no-judge", "--data", p, "--out", OUT]
         for p in (MISSING, DIR, EMPTY, BADJSON, SHAPE)]
        + [["eval", "--model", "baseline:prior", "--no-judge", "--data", BADJSON, "--out", OUT, flag, v]
           for flag in ("--limit", "--concurrency", "--max-pixels", "--min-pixels", "--max-tokens", "--tp", "--dp")
           for v in NUMBERS]
        + [["eval", "--model", "baseline:prior", "--no-judge", "--data", BADJSON, "--out", OUT, flag, v]
           for flag in ("--timeout", "--max-retries") for v in ("0", "-1", "abc", "nan", "inf")
           if not (flag == "--max-retries" and v == "0")]
        + [["eval", "--model", "baseline:prior", "--no-judge", "--data", BADJSON, "--out", OUT, flag, "garbage"]
           for flag in ("--frames-as", "--video-timing", "--frame-encoding", "--prompt-mode", "--backend")]
        + [["eval", "--model", "nosuchmodel", "--no-judge", "--data", BADJSON, "--out", OUT],
           ["eval", "--model", "baseline:prior", "--no-judge", "--data", BADJSON, "--out", FILE],
           ["eval", "--model", "baseline:prior", "--no-judge", "--data", BADJSON, "--out", OUT, "--cache-dir", FILE],
           ["eval", "--model", "baseline:prior", "--no-judge", "--data", BADJSON, "--out", OUT, "--frames-root", MISSING],
           ["eval", "--model", "baseline:prior", "--no-judge", "--judge", "x"], ["eval"]]
    ),
    "score": (
        [["score", p, "--no-judge"] for p in (MISSING, DIR, EMPTY, BADJSON, SHAPE)]
        + [["score", "SUBMISSION", "--no-judge", "--ground-truth", p] for p in (MISSING, DIR, EMPTY, BADJSON, SHAPE)]
        + [["score", DIR], ["score", "SUBMISSION", "--no-judge"], ["score", "MERGED", "--no-judge", "--output", DIR],
           ["score", "MERGED", "--no-judge", "--mode", "garbage"], ["score"]]
    ),
    "export": (
        [["export", p, OUT] for p in (MISSING, FILE, DIR)]
        + [["export", DIR, FILE], ["export", DIR, OUT, "--split", "garbage"], ["export", DIR, OUT, "--format", "x"]]
    ),
    "leaderboard": (
        [["leaderboard", p] for p in (MISSING, DIR, EMPTY, BADJSON, SHAPE)]
        + [["leaderboard", "--format", "garbage"], ["leaderboard"], ["leaderboard", "RESULTS", "--output", DIR],
           ["leaderboard", "RESULTS", "--name", "a", "--name", "b"]]
    ),
    "demo": (
        [["demo", "--out", OUT, flag, v] for flag in ("--limit", "--workers") for v in NUMBERS]
        + [["demo", "--out", OUT, "--sources", "nosuchsource"], ["demo", "--out", FILE]]
    ),
    "fixtures": [["fixtures", "make", OUT, "--source", "nosuchsource"], ["fixtures", "make", FILE, "--source", "nurvid"],
                 ["fixtures", "make", OUT, "--source", "nurvid", "--seed", "abc"], ["fixtures", "nosuchcmd"],
                 ["fixtures", "list", "extra"]],
    "publish": (
        [["publish", p, "--repo-id", "org/name", "--dry-run", OUT] for p in (MISSING, FILE, DIR)]
        + [["publish", DIR, "--repo-id", "org/name", "--dry-run", FILE],
           ["publish", DIR, "--repo-id", "not a repo id", "--dry-run", OUT],
           ["publish", DIR, "--repo-id", "org/name"], ["publish"]]
        + [["publish", DIR, "--repo-id", "org/name", "--dry-run", OUT, "--frames-shard-mb", v] for v in NUMBERS]
    ),
    "train": (
        [["train", stage, "--config", c] for stage in ("sft", "grpo") for c in (MISSING, DIR, EMPTY, BADJSON, SHAPE)]
        + [["train", "sft", "--config", "nosuchconfig.yaml"], ["train", "sft", "--config", "smoke.yaml", "--set", "garbage"],
           ["train", "sft", "--config", "smoke.yaml", "--set", "no.such.key=1", "--print-config"],
           ["train", "grpo", "--config", "smoke.yaml", "--reward-stats", MISSING],
           ["train", "grpo", "--config", "smoke.yaml", "--reward-stats", BADJSON],
           ["train", "nosuchstage"], ["train", "sft"]]
    ),
    "reward-stats": (
        [["reward-stats", p, "--out", "OUTFILE"] for p in (MISSING, DIR, FILE, EMPTY, BADJSON, SHAPE)]
        + [["reward-stats", DIR, "--out", DIR], ["reward-stats", DIR, "--out", "OUTFILE", "--tasks", "XYZ"],
           ["reward-stats", DIR, "--out", "OUTFILE", "--config", MISSING], ["reward-stats", "--out", "OUTFILE"]]
    ),
    "generate": (
        [["generate", p] for p in (MISSING, FILE, DIR, EMPTY)]
        + [["generate", DIR, "--out", FILE], ["generate", DIR, "--tasks", "XYZ"], ["generate", DIR, "--image-detail", "x"],
           ["generate", DIR, "--prices", MISSING], ["generate", DIR, "--prices", BADJSON], ["generate", DIR, "--raw-root", "x"]]
        + [["generate", DIR, flag, v] for flag in ("--limit", "--concurrency", "--max-tokens", "--frames-per-call",
                                                   "--max-side") for v in NUMBERS]
        + [["generate", DIR, flag, v] for flag in ("--budget-usd", "--timeout", "--poll-interval", "--temperature",
                                                   "--agreement-threshold", "--max-retries")
           for v in ("-1", "abc", "nan", "inf")]
    ),
    "materialise": (
        [["materialise", p, "--out", OUT] for p in (MISSING, FILE, DIR, EMPTY)]
        + [["materialise", DIR, "--out", FILE], ["materialise", DIR, "--out", OUT, "--split", "garbage"],
           ["materialise", "org/name-that-is-not-cached", "--out", OUT], ["materialise", "--out", OUT]]
    ),
}


def test_the_table_covers_every_command() -> None:
    import typer.main

    listed = set(typer.main.get_command(app).commands)
    assert listed == set(CASES), f"commands without bad-value cases: {sorted(listed - set(CASES))}"


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bad")
    (base / "empty.json").write_text("")
    (base / "bad.json").write_text("{not json")
    (base / "shape.json").write_text("3")
    (base / "folder").mkdir()
    (base / "file.txt").write_text("just text\n")
    (base / "submission.json").write_text(json.dumps([{"id": "x", "qa_type": "tal", "prediction": "1-2"}]))
    (base / "merged.json").write_text(json.dumps({"0": {
        "metadata": {"fps": "1.0"}, "qa_type": "tal", "struc_info": [{"spans": [{"start": 1, "end": 2}]}],
        "question": "q", "gnd": "1.0-2.0 seconds.", "answer": "1.0-2.0 seconds.", "data_source": "AVOS"}}))
    (base / "results.json").write_text(json.dumps({"tag_miou_0.3": 0.5}))
    return {EMPTY: base / "empty.json", BADJSON: base / "bad.json", SHAPE: base / "shape.json",
            DIR: base / "folder", FILE: base / "file.txt", MISSING: base / "missing" / "nothing.json",
            "SUBMISSION": base / "submission.json", "MERGED": base / "merged.json", "RESULTS": base / "results.json",
            OUT: base / "out", "OUTFILE": base / "out" / "stats.json"}


def run_cli(args: list[str]) -> tuple[int, str, str, BaseException | None]:
    """Run ``mvbench ARGS`` in-process; (exit code, stdout, stderr, exception that escaped main)."""
    out, err = io.StringIO(), io.StringIO()
    code, escaped = 0, None
    argv = sys.argv
    sys.argv = ["mvbench", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException as e:  # noqa: BLE001 - a traceback the user would see
        escaped, code = e, -1
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue(), escaped


ALL = [(command, args) for command, table in CASES.items() for args in table]


@pytest.mark.parametrize("command, args", ALL, ids=[" ".join(a) for _, a in ALL])
def test_bad_values_fail_in_one_line_without_a_traceback(command, args, paths, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MVBENCH_DEBUG", raising=False)
    monkeypatch.setenv("MVBENCH_CACHE", str(paths[OUT].parent / "cache"))
    real = [str(paths[a]) if a in paths else a for a in args]
    code, stdout, stderr, escaped = run_cli(real)
    assert escaped is None, f"traceback: {type(escaped).__name__}: {escaped}"
    assert code != 0, f"exit 0 on bad input; stderr: {stderr!r}"
    assert "Traceback" not in stderr + stdout
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    assert lines[0].startswith("error:") or "not available" in lines[0] or lines[0].startswith("Usage"), lines[0]
    assert not os.path.exists(paths[OUT] / "results.json")


@pytest.mark.parametrize("args, message", [
    (["score", DIR], "is a folder; expected a JSON file"),
    (["balance", DIR, OUT, "--cap", "0"], "Invalid value for '--cap'"),
    (["build", "--source", "nurvid", "--root", DIR, "--out", OUT, "--workers", "0"], "workers must be >= 1"),
])
def test_the_reported_cases_in_a_real_process(args, message, paths) -> None:
    import subprocess

    real = [str(paths[a]) if a in paths else a for a in args]
    proc = subprocess.run([sys.executable, "-c", "from mvbench.cli import main; main()", *real],
                          capture_output=True, text=True, env={**os.environ, "OPENAI_API_KEY": ""})
    assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
