"""End to end on generated data: fixture trees → build → eval (prior baseline and a tiny random
Qwen2.5-VL in process via the hf backend) → leaderboard. This is `mvbench demo` on two sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mvbench.cli.demo import TINY_QWEN, run_demo
from mvbench.eval.score import LEADERBOARD_KEYS


@pytest.mark.slow
def test_demo_builds_evaluates_and_ranks(tmp_path: Path) -> None:
    ranked = run_demo(tmp_path, sources=["nurvid", "jigsaws"], limit=2, workers=1, say=lambda _: None)
    assert [e.name for e in ranked] and {e.name for e in ranked} == {"baseline:prior", TINY_QWEN}
    manifest = json.loads((tmp_path / "dataset" / "manifest.json").read_text())
    assert len(manifest["content_hash"]) == 64 and manifest["failures"] == []
    for run in ("baseline-prior", TINY_QWEN):
        results = json.loads((tmp_path / "runs" / run / "results.json").read_text())
        assert set(LEADERBOARD_KEYS) <= set(results)
        assert results["counts"]["samples"] > 0
        assert results["counts"]["answered"] == results["counts"]["samples"]  # no request failed
        assert results["tag_miou_0.3"] is not None and results["sa_acc"] is not None
        assert results["judge"] is None and results["judge_skipped_reason"] == "--no-judge"
        preds = (tmp_path / "runs" / run / "predictions.jsonl").read_text().splitlines()
        assert len(preds) == results["counts"]["samples"]
    tiny = json.loads((tmp_path / "runs" / TINY_QWEN / "results.json").read_text())
    assert tiny["fingerprint"]["model_spec"]["backend"] == "hf"
    board = (tmp_path / "leaderboard.md").read_text()
    assert "baseline:prior" in board and TINY_QWEN in board
