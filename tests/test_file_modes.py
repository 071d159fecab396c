"""Every file mvbench writes gets the mode ``open()`` gives (0666 minus the umask), not mkstemp's 0600.

Builds, balances, exports, evaluates, scores and ranks under a umask of 022 and of 002 (a group-shared
folder) and checks the mode of every file written: Parquet shards, manifest, frames, work files,
exports, predictions, results, samples, submission, run.json, score files, the leaderboard file, a
publish dry-run (frame shards, Parquet, card) and what materialise unpacks from it.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mvbench.builders.fixtures import make_fixture
from mvbench.cli import app
from mvbench.dataset_io import atomic_write_bytes, atomic_write_json, write_parquet


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode)
            for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def test_atomic_writes_follow_the_umask(tmp_path: Path, umask: int) -> None:
    expected = 0o666 & ~umask
    atomic_write_bytes(tmp_path / "a.bin", b"x")
    atomic_write_json(tmp_path / "b.json", {"x": 1})
    write_parquet(read_parquet_records(), tmp_path / "c.parquet")
    assert _modes(tmp_path) == {"a.bin": expected, "b.json": expected, "c.parquet": expected}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left behind


def read_parquet_records():
    from mvbench.dataset_io import read_official_json

    return read_official_json(Path(__file__).parent / "data" / "medvidbench-samples" / "trainval_4_records.json")


@pytest.mark.slow
def test_every_output_of_build_export_eval_score_and_leaderboard_follows_the_umask(tmp_path: Path, umask: int,
                                                                                 monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    expected = 0o666 & ~umask
    raw = make_fixture("nurvid", tmp_path / "raw" / "nurvid", seed=0)
    runner = CliRunner()

    def cli(*args: str) -> None:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output

    cli("build", "--source", "nurvid", "--root", str(raw), "--out", str(tmp_path / "dataset"), "--workers", "1")
    cli("balance", str(tmp_path / "dataset"), str(tmp_path / "balanced"), "--cap", "3")
    cli("export", str(tmp_path / "dataset"), str(tmp_path / "export"), "--copy", "--with-answers")
    cli("eval", "--data", str(tmp_path / "dataset"), "--model", "baseline:prior", "--out", str(tmp_path / "run"),
        "--limit", "2", "--no-judge", "--cache-dir", str(tmp_path / "cache"))
    export = json.loads((tmp_path / "export" / "medvidbench_test.json").read_text())
    merged = {str(i): {"metadata": r["metadata"], "qa_type": r["qa_type"], "struc_info": r.get("struc_info", []),
                       "question": r["conversations"][0]["value"], "gnd": r["conversations"][-1]["value"],
                       "answer": r["conversations"][-1]["value"], "data_source": r["data_source"]}
              for i, r in enumerate(export)}
    (tmp_path / "score").mkdir()
    (tmp_path / "score" / "merged.json").write_text(json.dumps(merged))
    cli("score", str(tmp_path / "score" / "merged.json"), "--no-judge")
    cli("leaderboard", str(tmp_path / "run"), "--format", "md", "--output", str(tmp_path / "board" / "board.md"))
    cli("publish", str(tmp_path / "dataset"), "--repo-id", "org/name", "--dry-run", str(tmp_path / "hub"))
    cli("materialise", str(tmp_path / "hub"), "--out", str(tmp_path / "materialised"))

    written = {}
    # (not the response cache: a per-user folder whose SQLite file SQLite creates with its own 0644)
    for folder in ("dataset", "balanced", "export", "run", "score", "board", "hub", "materialised"):
        written.update({f"{folder}/{k}": v for k, v in _modes(tmp_path / folder).items()})
    names = {Path(k).name for k in written}
    for must in ("manifest.json", "medvidbench_test.json", "predictions.jsonl", "results.json", "submission.json",
                 "run.json", "merged.scores.json", "merged.scores.samples.jsonl", "board.md"):
        assert must in names, must
    assert any(k.endswith(".parquet") for k in written) and any(k.endswith(".jpg") for k in written)
    assert any(k.startswith("export/frames/") for k in written)  # copied frames
    assert any(k.startswith("hub/") and "frames" in k for k in written)  # packed frame shards
    assert any(k.startswith("materialised/frames/") for k in written)
    assert any(Path(k).name.startswith("samples_") for k in written)
    wrong = {k: oct(v) for k, v in written.items() if v != expected}
    assert not wrong, f"expected {oct(expected)}: {wrong}"
