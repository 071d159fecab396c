"""MedGRPO rewards: one function per rewarded task, built on each task's own ``Task.reward``.

Every raw reward comes from the task registry (``mvbench.tasks.TASKS[name].reward``), never from
a copy of the metrics. On top of it:

- **Captions (VS, RC)**: the hybrid ``w · judge + (1 − w) · similarity`` with w = 0.5: the LLM
  judge's 1–5 mean rescaled to [0, 1] as (s − 1)/4 (:mod:`mvbench.training.judge_reward`) and the
  task's MiniLM similarity (its ``Task.reward``). Both halves are normalised *before* mixing. A
  failed judgement (every attempt) falls back to the similarity half alone and is logged and
  counted; it is never silently scored 0.
- **Localisation (TAG, STG, DVC)**: a multiplicative format penalty: the reward is multiplied by
  ``format_penalty`` when the completion is not written exactly in the task's answer format
  (``Task.format_ok``).
- **Normalisation** per (data_source, component) (:mod:`mvbench.training.normalization`), applied
  to the raw reward before the penalty.

Each sample is dispatched by its *own* ``qa_type`` (and normalised by its own ``data_source``),
never by the first item of a batch. A sample of a task that is not rewarded gets None (TRL: "not
my task"; with every function None the sample is unscorable and its advantage is 0).

:class:`RewardSuite` scores a whole batch at once (all judge calls of the batch concurrently);
:meth:`RewardSuite.functions` gives the TRL-style reward functions, plain callables over
``completions`` and the dataset columns (``gt``: the ground-truth JSON of each sample), returning
``list[float | None]``. No trainer import: verl/EasyR1 users can call them (see
:mod:`mvbench.training.verl`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from mvbench.errors import InputError
from mvbench.records import normalise_data_source
from mvbench.tasks import TASKS, task_for_qa_type
from mvbench.tasks.captions import pair
from mvbench.training.judge_reward import JudgeConfig, JudgeScorer
from mvbench.training.normalization import NormalizationConfig, Normalizer

log = logging.getLogger(__name__)

PAPER_TASKS = ("TAG", "STG", "VS", "RC")   # the paper's rewarded tasks (medvidbench-format.md §7)
JUDGED_TASKS = ("VS", "RC")                # hybrid judge + similarity reward
EMBEDDING_TASKS = ("VS", "RC", "NAP")      # rewards that need MiniLM (the 'embed' extra)
FORMAT_TASKS = ("TAG", "STG", "DVC")       # multiplicative format penalty
JUDGE = "judge"
SIMILARITY = "similarity"


def component_names(task: str) -> tuple[str, ...]:
    """The reward components of a task, each normalised on its own.

    >>> component_names("VS"), component_names("TAG")
    (('VS.judge', 'VS.similarity'), ('TAG',))
    """
    if task in JUDGED_TASKS:
        return (f"{task}.{JUDGE}", f"{task}.{SIMILARITY}")
    return (task,)


@dataclass(frozen=True)
class RewardConfig:
    """Which tasks are rewarded and how.

    Args:
        tasks: rewarded tasks, each once, case-insensitive (the paper: TAG, STG, VS, RC; CVS/NAP/SA/DVC
            are possible).
        format_penalty: the factor a localisation reward is multiplied by when the completion is not
            in the task's answer format (1.0 disables the penalty).
        judge_weight: the judge's share of the caption reward (the paper: 0.5).
        normalization: the MedGRPO normalisation (``enabled: false`` is ``--no-reward-norm``).
        judge: the caption judge.
    """

    tasks: tuple[str, ...] = PAPER_TASKS
    format_penalty: float = 0.5
    judge_weight: float = 0.5
    normalization: NormalizationConfig = field(default_factory=lambda: NormalizationConfig(enabled=False))
    judge: JudgeConfig = field(default_factory=JudgeConfig)

    def __post_init__(self) -> None:
        tasks = tuple(str(t).strip().upper() for t in self.tasks)
        unknown = [t for t in tasks if t not in TASKS]
        if unknown or not tasks:
            raise ValueError(f"rewards.tasks must name tasks among {', '.join(TASKS)}; got {list(self.tasks)}")
        if len(set(tasks)) != len(tasks):  # one reward function per task: a repeat would weigh it twice
            raise ValueError(f"rewards.tasks names a task twice: {list(self.tasks)}")
        object.__setattr__(self, "tasks", tasks)
        if not 0.0 <= self.format_penalty <= 1.0:
            raise ValueError("rewards.format_penalty must be in [0, 1] (1 disables the penalty)")
        if not 0.0 <= self.judge_weight <= 1.0:
            raise ValueError("rewards.judge_weight must be in [0, 1]")


@dataclass
class SampleReward:
    """The reward of one completion.

    Attributes:
        task / source: the sample's task and data source (from its own ``qa_type``/``data_source``).
        value: the reward the trainer gets (normalised, penalised); None if the task is not
            rewarded or the sample has no usable ground truth.
        raw: the unnormalised reward (caption: the mixed raw halves; a judge fallback: similarity).
        components: raw value of each component (``TAG``; ``VS.judge``, ``VS.similarity``).
        normalised: normalised value of each component.
        format_ok: the task's format check (None: no strict format).
        judge_failed: the judge failed on this caption (similarity alone was used).
    """

    task: str
    source: str
    value: float | None = None
    raw: float | None = None
    components: dict[str, float] = field(default_factory=dict)
    normalised: dict[str, float] = field(default_factory=dict)
    format_ok: bool | None = None
    judge_failed: bool = False


@lru_cache(maxsize=65536)
def _parse_gt(text: str) -> dict:
    return json.loads(text)


def ground_truth(value: str | Mapping, index: int | None = None) -> dict:
    """A sample's ground-truth side (merged record without ``answer``) from its ``gt`` column.

    Raises:
        InputError: not JSON, not an object, or no ``qa_type`` (naming the sample).
    """
    try:
        gt = _parse_gt(value) if isinstance(value, str) else dict(value)
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise InputError(f"ground truth is not a JSON object: {e}", record=index) from None
    if not isinstance(gt, dict) or not isinstance(gt.get("qa_type"), str):
        raise InputError("ground truth has no qa_type", record=index)
    return gt


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or conversational ``[{"role": "assistant", "content": ...}]``.

    >>> completion_text([{"role": "assistant", "content": "1.0-2.0 seconds."}])
    '1.0-2.0 seconds.'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content") if isinstance(completion[-1], dict) else completion[-1]
        if isinstance(content, list):
            return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
        return content if isinstance(content, str) else ""
    return ""


class RewardSuite:
    """Scores batches of completions for every rewarded task.

    Args:
        config: the reward settings.
        normalizer: the normalisation (default: from ``config.normalization``).
        judge: the caption judge scorer (default: from ``config.judge`` when a judged task is
            rewarded and the judge is enabled; None scores captions by similarity alone).
        contexts: per task, ``Task.build_context`` over the training records (NAP's class lists).

    Raises:
        MvbenchError: a rewarded task needs MiniLM (:data:`EMBEDDING_TASKS`) and the 'embed' extra is missing.
    """

    def __init__(self, config: RewardConfig, *, normalizer: Normalizer | None = None,
                 judge: JudgeScorer | None | str = "config", contexts: Mapping[str, Any] | None = None):
        if any(t in EMBEDDING_TASKS for t in config.tasks):  # fail now, not at the first caption mid-run
            from mvbench import embedding

            embedding.check_available()
        self.config = config
        self.normalizer = normalizer or Normalizer(config.normalization)
        if judge == "config":
            wants_judge = config.judge.enabled and any(t in JUDGED_TASKS for t in config.tasks)
            judge = JudgeScorer.from_config(config.judge) if wants_judge else None
        self.judge = judge
        if self.judge is None and any(t in JUDGED_TASKS for t in config.tasks):
            log.warning("no caption judge: VS/RC rewards use the MiniLM similarity half alone")
        self.contexts = dict(contexts or {})
        self.judge_failures = 0
        self.judge_calls = 0
        self.last: list[SampleReward] = []
        self._memo: tuple[tuple, list[SampleReward]] | None = None

    # ----- raw rewards ---------------------------------------------------------------------------
    def raw_components(self, completions: Sequence[str], gts: Sequence[str | Mapping]) -> list[SampleReward | None]:
        """Raw components of each completion (no normalisation, no penalty); None for unrewarded tasks.

        Judged captions get their ``judge`` component from one concurrent judge batch, started
        before the other rewards are computed so that its latency overlaps them; a failed
        judgement leaves it out and sets ``judge_failed``.
        """
        routed: list[tuple[Any, dict, str] | None] = []
        judge_items: list[tuple[str, str, str]] = []
        judge_owner: list[int] = []
        for i, (completion, value) in enumerate(zip(completions, gts, strict=True)):
            gt = ground_truth(value, i)
            try:
                task = task_for_qa_type(gt["qa_type"])
            except KeyError as e:
                raise InputError(str(e.args[0]), record=i) from None
            if task.name not in self.config.tasks:
                routed.append(None)
                continue
            routed.append((task, gt, normalise_data_source(str(gt.get("data_source", "")))))
            if task.name in JUDGED_TASKS and self.judge is not None:
                texts = pair({**gt, "answer": completion.strip() if isinstance(completion, str) else ""})
                if texts is not None:
                    judge_items.append((texts[0], texts[1], task.key))
                    judge_owner.append(i)
        pending = self.judge.submit(judge_items) if judge_items else None
        self.judge_calls += len(judge_items)
        out: list[SampleReward | None] = []
        for i, (completion, route) in enumerate(zip(completions, routed)):
            if route is None:
                out.append(None)
                continue
            task, gt, source = route
            try:
                base = task.reward(gt, completion, self.contexts.get(task.name))
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
                raise InputError(f"malformed ground truth for {task.name}: {type(e).__name__}: {e}",
                                 record=gt.get("uid", i)) from None
            if base is None:
                out.append(SampleReward(task.name, source))
                continue
            sample = SampleReward(task.name, source, format_ok=task.format_ok(completion)
                                  if task.name in FORMAT_TASKS else None)
            if task.name in JUDGED_TASKS:
                sample.components[f"{task.name}.{SIMILARITY}"] = float(base)
                if not (isinstance(completion, str) and completion.strip()):
                    sample.components[f"{task.name}.{JUDGE}"] = 0.0  # an empty answer: the judge's minimum, no call
            else:
                sample.components[task.name] = float(base)
            out.append(sample)
        if pending is not None:
            for i, score in zip(judge_owner, pending.result()):
                sample = out[i]
                if sample is None or not sample.components:
                    continue
                if score is None:
                    sample.judge_failed = True
                else:
                    sample.components[f"{sample.task}.{JUDGE}"] = score
        return out

    # ----- final rewards -------------------------------------------------------------------------
    def score(self, completions: Sequence[Any], gts: Sequence[str | Mapping]) -> list[SampleReward]:
        """The reward of every completion (see the module docstring); also kept in :attr:`last`.

        Args:
            completions: texts, or TRL conversational completions.
            gts: per completion, its ground truth (JSON text or dict with ``qa_type``,
                ``data_source``, ``metadata``, ``struc_info``, ``question``, ``gnd``).
        """
        texts = [completion_text(c) for c in completions]
        raws = self.raw_components(texts, gts)
        results: list[SampleReward] = []
        failed = 0
        for i, sample in enumerate(raws):
            if sample is None:
                gt = ground_truth(gts[i], i)
                results.append(SampleReward(task_for_qa_type(gt["qa_type"]).name,
                                            normalise_data_source(str(gt.get("data_source", "")))))
                continue
            if sample.components:
                self._finish(sample)
            failed += sample.judge_failed
            results.append(sample)
        if failed:
            self.judge_failures += failed
            log.warning("caption judge failed on %d of this batch's captions: rewarded by MiniLM similarity "
                        "alone (%d failures so far)", failed, self.judge_failures)
        self.last = results
        return results

    def score_cached(self, completions: Sequence[Any], gts: Sequence[str | Mapping]) -> list[SampleReward]:
        """:meth:`score`, reusing the result when called again on the same batch (one call per TRL
        reward function of the same step computes every task's rewards once)."""
        key = (tuple(completion_text(c) for c in completions),
               tuple(g if isinstance(g, str) else json.dumps(g, sort_keys=True, allow_nan=False) for g in gts))
        if self._memo is not None and self._memo[0] == key:
            self.last = self._memo[1]
            return self._memo[1]
        results = self.score(completions, gts)
        self._memo = (key, results)
        return results

    def _finish(self, sample: SampleReward) -> None:
        norm = self.normalizer
        for name, x in sample.components.items():
            sample.normalised[name] = norm(x, sample.source, name)
        if sample.task in JUDGED_TASKS:
            judge_key, sim_key = f"{sample.task}.{JUDGE}", f"{sample.task}.{SIMILARITY}"
            if judge_key in sample.components:
                w = self.config.judge_weight
                sample.raw = w * sample.components[judge_key] + (1 - w) * sample.components[sim_key]
                sample.value = w * sample.normalised[judge_key] + (1 - w) * sample.normalised[sim_key]
            else:
                sample.raw = sample.components[sim_key]
                sample.value = sample.normalised[sim_key]
        else:
            sample.raw = sample.components[sample.task]
            sample.value = sample.normalised[sample.task]
        if sample.format_ok is False:
            sample.value *= self.config.format_penalty
        if not math.isfinite(sample.value):  # defensive: a task reward is always finite
            sample.value = 0.0

    def functions(self) -> list["TaskReward"]:
        """The TRL-style reward functions, one per rewarded task (in ``config.tasks`` order)."""
        return [TaskReward(self, t) for t in self.config.tasks]

    def close(self) -> None:
        """Stop the judge's event loop."""
        if self.judge is not None:
            self.judge.close()


class TaskReward:
    """The reward function of one task: a plain callable as TRL's ``reward_funcs`` expect.

    Called as ``f(prompts=…, completions=…, completion_ids=…, gt=[…], **columns)``; returns one
    value per completion: the task's reward for samples of this task, None for the others.
    Named after the task, so TRL logs ``rewards/<TASK>/mean``.
    """

    def __init__(self, suite: RewardSuite, task: str):
        self.suite = suite
        self.task = task
        self.__name__ = task

    def __call__(self, prompts: Any = None, completions: Sequence[Any] = (), completion_ids: Any = None, *,
                 gt: Sequence[str | Mapping] = (), **kwargs: Any) -> list[float | None]:
        if len(gt) != len(completions):
            raise InputError(f"reward {self.task}: {len(completions)} completions but {len(gt)} ground truths "
                             "(the dataset needs a 'gt' column)")
        results = self.suite.score_cached(completions, gt)
        return [r.value if r.task == self.task else None for r in results]
