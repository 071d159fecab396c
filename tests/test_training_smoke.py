"""The CPU smoke runs: 2 SFT steps and 2 GRPO steps of the tiny random Qwen2.5-VL on a fixture-built
dataset through the code path of the GPU recipes (HF generate instead of vLLM), each checkpoint
reloadable by ``mvbench eval --backend hf``; a rerun resumes from the last checkpoint."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import pytest
import yaml
from PIL import Image

from mvbench.eval.harness import EvalConfig, run_eval
from mvbench.training.config import load_config
from mvbench.training.runner import run_stage
from tests.training_helpers import assert_stock_processor_layout


def _finite(values) -> bool:
    return all(isinstance(v, float) and math.isfinite(v) for v in values)


@pytest.mark.slow
def test_smoke_sft_then_grpo_on_cpu_and_the_checkpoints_evaluate(tmp_path: Path, caplog) -> None:
    cfg = load_config("smoke.yaml", out=str(tmp_path / "{stage}"))
    with caplog.at_level(logging.INFO, logger="mvbench.training"):
        sft = run_stage("sft", cfg)
        grpo = run_stage("grpo", cfg)
    assert "step 2/2 | loss" in caplog.text

    for stage, summary in (("sft", sft), ("grpo", grpo)):
        out = tmp_path / stage
        assert summary["global_step"] == 2 and summary["final_checkpoint"] == str(out / "final")
        assert _finite([summary["train_metrics"]["train_loss"]])
        checkpoint = out / "checkpoint-2"
        resolved = yaml.safe_load((checkpoint / "mvbench_train_config.yaml").read_text())  # beside the checkpoint
        assert resolved["stage"] == stage and resolved["config"]["model"].endswith("smoke-model")
        assert resolved["data"]["sha256"] == summary["data"]["sha256"]
        with Image.open(checkpoint / "reward_curves.png") as img:
            assert img.size[0] > 500
        for folder in (checkpoint, out / "final"):  # what vLLM and AutoProcessor load (mvbench eval's default)
            assert_stock_processor_layout(folder)
    sft_losses = [v for _, v in json.loads((tmp_path / "sft" / "curves.json").read_text())["loss"]]
    assert len(sft_losses) == 2 and _finite(sft_losses)

    # GRPO logged raw and normalised rewards and zero-variance groups per (data_source, task).
    curves = json.loads((tmp_path / "grpo" / "curves.json").read_text())
    pairs = {k.rsplit("/", 1)[0] for k in curves if k.startswith("pairs/")}
    assert pairs and all(p.split("/")[2] in ("TAG", "STG", "VS", "RC") for p in pairs)
    for pair in pairs:
        assert {f"{pair}/raw", f"{pair}/normalised", f"{pair}/zero_std_frac"} <= set(curves)
        assert all(0.0 < v < 1.0 for _, v in curves[f"{pair}/normalised"])  # logistic, times the penalty
    assert _finite([v for _, v in curves["loss"]])
    # The normalisation statistics came from the tiny model's own rollouts, with their provenance.
    stats = grpo["reward_stats"]
    assert stats["runs"][0]["data"]["split"] == "train" and stats["runs"][0]["model"].endswith("smoke-model")
    assert grpo["reward_normalisation"]

    # Every checkpoint is what `mvbench eval --backend hf` evaluates.
    data = Path(yaml.safe_load((tmp_path / "sft" / "final" / "mvbench_train_config.yaml").read_text())["config"]["data"])
    for stage in ("sft", "grpo"):
        results = run_eval(EvalConfig(data=str(data), model=str(tmp_path / stage / "final"), backend="hf",
                                      out_dir=tmp_path / f"eval-{stage}", tasks=["TAG"], limit=1, no_judge=True,
                                      cache_dir=None, max_tokens=4, concurrency=1))
        assert results["complete"] and results["counts"]["answered"] == 1

    # A rerun resumes from the last checkpoint with its weights (transformers 5.25 alone would restart
    # from the initial weights, see training/resume.py): the resumed step 2 is the uninterrupted one.
    shutil.rmtree(tmp_path / "sft" / "checkpoint-2")
    resumed = run_stage("sft", cfg)
    assert resumed["resumed_from"].endswith("checkpoint-1") and resumed["global_step"] == 2
    state = json.loads((tmp_path / "sft" / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["log_history"][1]["loss"] == pytest.approx(sft_losses[1], rel=1e-6)
    finished = run_stage("sft", cfg)  # nothing left: no extra step
    assert finished["resumed_from"].endswith("checkpoint-2") and finished["global_step"] == 2
