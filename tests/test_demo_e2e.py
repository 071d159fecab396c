"""End to end on generated data: fixture trees → build → eval (prior baseline and a tiny random
Qwen2.5-VL in process via the hf backend) → the leaderboard page. This is `mvbench demo` on two sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mvbench.cli.demo import TINY_MAX_TOKENS, TINY_QWEN, run_demo
from mvbench.eval.score import LEADERBOARD_KEYS


@pytest.mark.slow
def test_demo_builds_evaluates_and_ranks(tmp_path: Path) -> None:
    steps: dict[str, list[int | None]] = {}  # description -> [total, advances]

    def progress(description: str, total: int | None):
        steps[description] = [total, 0]

        def advance() -> None:
            steps[description][1] += 1
        return advance

    said: list[str] = []
    board = run_demo(tmp_path, sources=["nurvid", "jigsaws"], limit=2, workers=1, say=said.append, progress=progress)
    assert {e.name for e in board.runs} == {"baseline:prior", TINY_QWEN}
    manifest = json.loads((tmp_path / "dataset" / "manifest.json").read_text())
    assert len(manifest["content_hash"]) == 64 and manifest["failures"] == [] and manifest["fixture"] is True
    for run in ("baseline-prior", TINY_QWEN):
        results = json.loads((tmp_path / "runs" / run / "results.json").read_text())
        assert set(LEADERBOARD_KEYS) <= set(results)
        assert results["counts"]["samples"] > 0
        assert results["counts"]["answered"] == results["counts"]["samples"]  # no request failed
        assert results["tag_miou_0.3"] is not None and results["sa_acc"] is not None
        assert results["judge"] is None and results["judge_skipped_reason"] == "--no-judge"
        assert results["fingerprint"]["dataset"]["fixture"] is True
        assert results["intervals"]["resamples"] == 1000 and set(results["intervals"]["metrics"]) == set(LEADERBOARD_KEYS)
        preds = (tmp_path / "runs" / run / "predictions.jsonl").read_text().splitlines()
        assert len(preds) == results["counts"]["samples"]
    tiny = json.loads((tmp_path / "runs" / TINY_QWEN / "results.json").read_text())
    assert tiny["fingerprint"]["model_spec"]["backend"] == "hf"
    assert tiny["fingerprint"]["generation_params"]["max_tokens"] == TINY_MAX_TOKENS

    # progress in every long step, the tiny model's answers included
    assert steps["fixture trees"] == [2, 2]
    assert steps["videos built"][0] is None and steps["videos built"][1] == manifest["sources"]["nurvid"][
        "videos_built"] + manifest["sources"]["jigsaws"]["videos_built"]
    for model, run in (("baseline:prior", "baseline-prior"), (TINY_QWEN, TINY_QWEN)):
        samples = json.loads((tmp_path / "runs" / run / "results.json").read_text())["counts"]["samples"]
        assert steps[f"{model} answers"] == [samples, samples]
    assert said[-1] == f"[5/5] leaderboard page written: {tmp_path / 'leaderboard.html'}"

    page = (tmp_path / "leaderboard.html").read_text()
    assert 'data-code="fixture"' in page and 'data-code="judge"' in page and 'id="paired"' in page
    board_md = (tmp_path / "leaderboard.md").read_text()
    assert "baseline:prior" in board_md and TINY_QWEN in board_md and "Fixture data" in board_md
    assert len(board.comparisons) == 1
