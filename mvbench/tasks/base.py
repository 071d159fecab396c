"""The task contract: one object per MedVidBench task owns its prompts, answer format, parser and metrics.

A task module (``mvbench/tasks/<task>.py``) holds a task's whole definition, in the manner of an
lm-evaluation-harness task: its qa_types and prompt file (``prompts/tasks/<task>.toml``), the
answer formatter the builders use, the leaderboard parser, the per-sample score, the rule that
says whether a sample entered the metric, the pooling into leaderboard metrics (with their
:class:`MetricSpec`), and the reward hook training wraps. Builders call :meth:`Task.question` and
:meth:`Task.format_answer`; ``mvbench score`` / ``mvbench eval`` call :meth:`Task.score_sample`,
:meth:`Task.counted` and :meth:`Task.aggregate` (plus the judge hooks for caption tasks); training
calls :meth:`Task.reward`.

A *merged record* is what the official evaluator scores: ``{metadata, qa_type, struc_info,
question, gnd, answer, data_source}``.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from mvbench import prompts
from mvbench.errors import UnknownNameError

SCORING_MODES: tuple[str, ...] = ("leaderboard",)


@dataclass(frozen=True)
class MetricSpec:
    """A metric a task reports.

    Args:
        key: the key in ``results.json`` / the leaderboard (``tag_miou_0.3``...).
        title: the column title (``TAG@0.3``).
        higher_is_better: direction for ranking.
        scale: the value range, for display ("0-1" or "1-5").
        judge: the metric needs the LLM judge (None when the judge is skipped).
        leaderboard: one of the official leaderboard's ten columns (else reported beside them).
    """

    key: str
    title: str = ""
    higher_is_better: bool = True
    scale: str = "0-1"
    judge: bool = False
    leaderboard: bool = True


def fmt_time(t: float) -> str:
    """Seconds with one decimal, as every MedVidBench answer writes times.

    >>> fmt_time(3), fmt_time(20.66)
    ('3.0', '20.7')
    """
    return f"{float(t):.1f}"


def fmt_num(v: float) -> str:
    """A coordinate or score rounded to 2 decimals, written without trailing noise.

    >>> fmt_num(117.5432), fmt_num(592)
    ('117.54', '592.0')
    """
    return repr(round(float(v), 2))


JudgeItem = tuple[Any, str, str]  # (tag the task uses to fold the result back, prediction, reference)


class Task:
    """Base class: subclasses set the class attributes and implement the answer and metric methods."""

    name: ClassVar[str]                 # "TAG"
    title: ClassVar[str]                # "Temporal action grounding"
    qa_types: ClassVar[tuple[str, ...]]  # the official qa_type values, generator-suffixed first
    prompt_file: ClassVar[str]          # "tasks/tag"
    metrics: ClassVar[tuple[MetricSpec, ...]]
    free_text: ClassVar[bool] = False   # answers are generated captions (DVC, VS, RC)

    @property
    def key(self) -> str:
        """The lower-case name results are reported under (``tag``)."""
        return self.name.lower()

    # ----- prompts --------------------------------------------------------------------------
    @property
    def prompt_version(self) -> str:
        """The ``version`` of this task's prompt file."""
        return str(prompts.load(self.prompt_file)["version"])

    def templates(self) -> list[str]:
        """All question phrasings for this task."""
        return list(prompts.load(self.prompt_file)["templates"])

    def question(self, data_source: str, rng: random.Random, *, prefer: Sequence[str] = (),
                 **fields: Any) -> str:
        """Compose a question: a source preamble plus one task phrasing, chosen with ``rng``.

        Only phrasings whose placeholders are all in ``fields`` are eligible; of those, the ones
        using every field named in ``prefer`` are used when there are any (NAP names the NurViD
        procedure so that the scorer can find its class list).

        Raises:
            ValueError: no phrasing can be filled from ``fields`` (names the missing fields).
        """
        usable = [t for t in self.templates() if _placeholders(t) <= set(fields)]
        if not usable:
            need = sorted(min((_placeholders(t) - set(fields) for t in self.templates()), key=len))
            raise ValueError(f"{self.name}: no question template can be filled; missing {need}")
        preferred = [t for t in usable if set(prefer) <= _placeholders(t)]
        usable = preferred or usable
        template = rng.choice(usable)
        preamble = rng.choice(preambles(data_source))
        return f"{preamble} {template.format(**fields)}"

    # ----- answers --------------------------------------------------------------------------
    def format_answer(self, ground_truth: Any) -> str:
        """Write ground truth (``struc_info``-shaped, or a caption for free-text tasks) as the official answer string."""
        raise NotImplementedError

    # ----- parsing and metrics --------------------------------------------------------------
    def parse(self, text: str) -> Any:
        """Parse a model answer as the leaderboard does; never raises (unparseable text gives the fallback)."""
        raise NotImplementedError

    def build_context(self, records: list[dict]) -> Any:
        """State a metric needs across all records scored together (NAP's class lists), else None."""
        return None

    def prepare(self, records: list[dict], context: Any = None) -> int:
        """Batch work before per-sample scoring (NAP embeds answers in one go); returns a count for the summary."""
        return 0

    def ground_truth_problem(self, record: dict) -> str | None:
        """Why this record's ground truth cannot be scored (``struc_info`` or ``gnd`` missing or
        malformed), in words naming the field; None when it can. ``mvbench score`` refuses such
        records (or skips them, counted, with ``--skip-invalid``) instead of scoring them as 0.

        Prediction-side skips of the official scorer (an answer without a score, a ground truth
        outside NAP's class list) are not problems: they are scored as the leaderboard scores them.
        """
        return None

    def score_sample(self, record: dict, context: Any = None) -> dict[str, float | None]:
        """Per-sample scores of one merged record.

        Args:
            record: the merged record.
            context: :meth:`build_context` of the records scored together, for tasks that need it.
        """
        raise NotImplementedError

    def counted(self, scores: dict) -> bool:
        """Whether a sample with these per-sample scores entered the task's metric."""
        raise NotImplementedError

    def aggregate(self, records: list[dict], samples: list[dict], mode: str = "leaderboard") -> dict[str, float | None]:
        """Pool per-sample scores into the task's metrics as the official leaderboard does."""
        raise NotImplementedError

    # ----- the LLM judge (caption tasks) ----------------------------------------------------
    def judge_items(self, record: dict) -> list[JudgeItem]:
        """The caption pairs of a record to send to the judge, each with a tag for :meth:`add_judge_result`."""
        return []

    def init_judge_scores(self, scores: dict) -> None:
        """Set the per-sample judge fields before any result arrives (DVC keeps sums per threshold)."""

    def add_judge_result(self, scores: dict, tag: Any, result: dict[str, int] | None) -> None:
        """Fold one judge result (five aspect scores, or None when every attempt failed) into ``scores``."""

    def similarity_pair(self, record: dict) -> tuple[str, str] | None:
        """The (prediction, reference) texts whose MiniLM similarity is reported beside the judge."""
        return None

    # ----- training -------------------------------------------------------------------------
    def reward(self, record: dict, completion: str, context: Any = None) -> float | None:
        """The raw reward of one completion, in [0, 1]; None when the record is not this task's
        (its ``qa_type`` routes elsewhere) or has no usable ground truth. Pure and cheap: no judge.

        Args:
            record: the merged record's ground-truth side (``metadata, qa_type, struc_info,
                question, gnd, data_source``); its ``answer`` is ignored.
            completion: the model's answer.
            context: :meth:`build_context` over the training records, for tasks that need it.
        """
        if "qa_type" in record and owner_of(record.get("qa_type")) != self.name:
            return None
        return self.sample_reward(record, completion, context)

    def sample_reward(self, record: dict, completion: str, context: Any = None) -> float | None:
        """The reward of a record known to be this task's (see :meth:`reward`)."""
        raise NotImplementedError

    def format_ok(self, completion: str) -> bool | None:
        """Whether a completion is written exactly in this task's answer format (the one
        :meth:`format_answer` writes), for training's multiplicative format penalty; None when the
        task has no strict format (free text, classes)."""
        return None

    def owns(self, record: dict) -> bool:
        """Whether ``record['qa_type']`` belongs to this task (caption families by substring)."""
        return owner_of(record.get("qa_type")) == self.name

    def __repr__(self) -> str:
        return f"<Task {self.name}: {', '.join(self.qa_types)}>"


_FAMILIES = (("dense_captioning", "DVC"), ("video_summary", "VS"), ("region_caption", "RC"))
_EXACT = {"tal": "TAG", "stg": "STG", "next_action": "NAP", "skill_assessment": "SA", "cvs_assessment": "CVS",
          "dc": "DVC"}


def owner_of(qa_type: object) -> str | None:
    """The task name a qa_type is scored as (caption families by substring, as the official scorer).

    >>> [owner_of(q) for q in ("tal", "dense_captioning_gpt", "video_summary", "region_caption_gemini", "x", None)]
    ['TAG', 'DVC', 'VS', 'RC', None, None]
    """
    if not isinstance(qa_type, str):
        return None
    for family, task in _FAMILIES:
        if family in qa_type:
            return task
    return _EXACT.get(qa_type)


def preambles(data_source: str) -> list[str]:
    """The persona/context sentences for a source (``prompts/preambles.toml``)."""
    table = prompts.load("preambles")
    try:
        return list(table[data_source]["preambles"])
    except KeyError:
        raise UnknownNameError(f"no preambles for data_source {data_source!r} in prompts/preambles.toml") from None


def with_answer(record: dict, completion: str) -> dict:
    """A copy of a merged record whose ``answer`` is ``completion`` (what rewards score)."""
    return {**record, "answer": completion if isinstance(completion, str) else ""}


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
