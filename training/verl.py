"""MedGRPO rewards in verl's (and EasyR1's) custom reward-function form.

verl's reward managers call a user function per sample (``naive``):
``compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)``, or per
batch (``batch``): ``compute_score_batch(data_sources=..., solution_strs=..., ground_truths=...,
extra_infos=...)``; point ``custom_reward_function.path`` at this file's module
(``python -c "import mvbench.training.verl as m; print(m.__file__)"``) and ``name`` at either.
Use the batch form with the LLM judge: its calls then run concurrently.

``ground_truth`` is the sample's ``gt`` JSON as mvbench writes it (the merged record's
ground-truth side with ``qa_type`` and ``data_source``; :func:`mvbench.training.data.ground_truth_of`),
so each sample is dispatched by its own qa_type. The result is a dict with ``score`` (the reward
verl trains on) plus ``raw`` and ``format_ok``, which verl logs as extra reward info.

Configuration: :func:`configure`, or the environment variable ``MVBENCH_REWARD_CONFIG`` naming a
YAML/JSON file holding a ``rewards`` mapping (the schema of a training config's
``grpo.rewards``). Without either: the paper's tasks, no normalisation, the judge only if
``OPENAI_API_KEY`` is set.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mvbench.training.rewards import RewardConfig, RewardSuite, SampleReward

log = logging.getLogger(__name__)

ENV_CONFIG = "MVBENCH_REWARD_CONFIG"
_SUITE: RewardSuite | None = None
_LOCK = threading.Lock()


def configure(config: RewardConfig | str | Path | None = None) -> RewardSuite:
    """Set (and return) the reward suite ``compute_score`` uses.

    Args:
        config: a :class:`RewardConfig`, a YAML/JSON file with a ``rewards`` mapping, or None for
            ``$MVBENCH_REWARD_CONFIG`` / the defaults.
    """
    global _SUITE
    if config is None and os.environ.get(ENV_CONFIG):
        config = os.environ[ENV_CONFIG]
    if isinstance(config, (str, Path)):
        import yaml

        from mvbench.training.config import from_dict

        data = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
        config = from_dict(RewardConfig, data.get("rewards", data), "rewards")
    if config is None:
        from mvbench.training.judge_reward import JudgeConfig

        config = RewardConfig(judge=JudgeConfig(enabled=bool(os.environ.get("OPENAI_API_KEY"))))
    with _LOCK:
        if _SUITE is not None:
            _SUITE.close()
        _SUITE = RewardSuite(config)
        return _SUITE


def _suite() -> RewardSuite:
    with _LOCK:
        suite = _SUITE
    return suite if suite is not None else configure()


def _result(sample: SampleReward) -> dict[str, float]:
    if sample.value is None:
        log.warning("no MedGRPO reward for a %s/%s sample (task not rewarded or no ground truth): scored 0.0 "
                    "with scored=0", sample.source, sample.task)
    return {"score": 0.0 if sample.value is None else float(sample.value),
            "raw": 0.0 if sample.raw is None else float(sample.raw),
            "format_ok": 1.0 if sample.format_ok in (True, None) else 0.0,
            "scored": 0.0 if sample.value is None else 1.0}


def compute_score(data_source: str, solution_str: str, ground_truth: str | dict, extra_info: dict | None = None,
                  **kwargs: Any) -> dict[str, float]:
    """One sample's reward (verl's ``naive`` reward manager calls this).

    Args:
        data_source: verl's data source column (mvbench normalises by the ground truth's own
            ``data_source``).
        solution_str: the decoded response.
        ground_truth: the sample's ``gt`` JSON (or dict).
        extra_info: unused.

    Returns:
        ``{"score", "raw", "format_ok", "scored"}``.
    """
    return _result(_suite().score([solution_str], [ground_truth])[0])


def compute_score_batch(data_sources: Sequence[str], solution_strs: Sequence[str],
                        ground_truths: Sequence[str | dict], extra_infos: Sequence[dict | None] | None = None,
                        **kwargs: Any) -> list[dict[str, float]]:
    """A batch's rewards, the judge calls concurrent (verl's ``batch`` reward manager calls this)."""
    return [_result(s) for s in _suite().score(list(solution_strs), list(ground_truths))]
