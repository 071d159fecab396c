"""What the CPU smoke config builds for itself when no model or data is given.

- a fixture dataset: raw trees of a few sources in their real on-disk formats
  (:func:`mvbench.builders.fixtures.make_fixture`) built by the real pipeline;
- the tiny randomly initialised Qwen2.5-VL of :mod:`mvbench.testing`;
- for GRPO with ``normalization.stats: auto``, the normalisation statistics the recipe needs, made
  the way the GPU recipe makes them, in miniature: ``mvbench eval`` of the model on the train
  split (the "SFT rollouts", here the tiny model's), then ``mvbench reward-stats``.

Everything lands in ``smoke-assets`` beside the run's output folder (shared by the SFT and GRPO
smoke runs) and is reused by a rerun.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mvbench.inference import GenerationParams

log = logging.getLogger(__name__)

SMOKE_SOURCES = ("copesd", "egosurgery")
AUTO_STATS = "auto"


def smoke_assets(out: Path) -> Path:
    """The folder the smoke model, data and statistics go to: ``smoke-assets`` beside ``out``."""
    return out.parent / "smoke-assets"


def smoke_model(out: Path, seed: int = 0) -> Path:
    """The tiny random Qwen2.5-VL under ``out/smoke-model`` (built once; ``out`` is the assets folder)."""
    directory = out / "smoke-model"
    if not (directory / "config.json").is_file():
        from transformers.utils import logging as hf_logging

        from mvbench.testing.tiny_qwen import build_tiny_qwen2_5_vl

        hf_logging.disable_progress_bar()
        log.info("building the tiny random Qwen2.5-VL in %s", directory)
        build_tiny_qwen2_5_vl(directory, seed=seed)
    return directory


def smoke_data(out: Path, seed: int = 0, sources: tuple[str, ...] = SMOKE_SOURCES) -> Path:
    """A dataset built from fixture sources under ``out/smoke-data/dataset`` (built once)."""
    from mvbench.builders.fixtures import make_fixture
    from mvbench.builders.pipeline import BuildOptions, build

    root = out / "smoke-data"
    dataset = root / "dataset"
    if (dataset / "manifest.json").is_file():
        return dataset
    log.info("building fixture sources %s into %s", ", ".join(sources), dataset)
    roots = [(name, make_fixture(name, root / "raw" / name, seed=seed)) for name in sources]
    build(roots, BuildOptions(out=dataset, workers=1, seed=seed))
    return dataset


def smoke_stats(out: Path, model: Path, data: Path, params: GenerationParams, suite, *, limit: int = 3,
                max_tokens: int = 16) -> Path:
    """Reward statistics from the model's own rollouts on the train split (``out/smoke-stats.json``).

    Args:
        out: the smoke assets folder.
        model / data: the smoke model and dataset.
        params: the video inputs (as training uses them).
        suite: the run's :class:`~mvbench.training.rewards.RewardSuite` (tasks, judge).
        limit: rollouts per task.
        max_tokens: new tokens per rollout.
    """
    from mvbench.eval.harness import EvalConfig, run_eval
    from mvbench.training.reward_stats import compute_reward_stats

    path = out / "smoke-stats.json"
    if path.is_file():
        return path
    runs = out / "smoke-rollouts"
    log.info("SFT-rollout statistics for the smoke run: mvbench eval --backend hf on the train split -> %s", runs)
    run_eval(EvalConfig(data=str(data), model=str(model), out_dir=runs, backend="hf", split="train",
                        tasks=list(suite.config.tasks), limit=limit, concurrency=1, no_judge=True, cache_dir=None,
                        max_tokens=max_tokens, max_pixels=params.max_pixels, min_pixels=params.min_pixels,
                        video_timing=params.video_timing))
    compute_reward_stats([runs], suite).save(path)
    return path
