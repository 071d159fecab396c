"""The task contract: one object per MedVidBench task owns its prompts, answer format, parser and metrics.

Builders use :meth:`Task.question` and :meth:`Task.format_answer`; eval and training use
:meth:`Task.parse`, :meth:`Task.score_sample` and :meth:`Task.aggregate`. The parsing and metric code
lives in ``mvbench.eval.metrics.<metric_module>`` (imported lazily, so building never imports eval).
"""

from __future__ import annotations

import importlib
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

from mvbench import prompts


@dataclass(frozen=True)
class MetricSpec:
    """A leaderboard metric a task reports.

    Args:
        key: the key in ``results.json`` / the leaderboard (``tag_miou_0.3``...).
        higher_is_better: direction for ranking.
        scale: the value range, for display ("0-1" or "1-5").
    """

    key: str
    higher_is_better: bool = True
    scale: str = "0-1"


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


class Task:
    """Base class. Subclasses set the class attributes and implement :meth:`format_answer`."""

    name: ClassVar[str]                 # "TAG"
    title: ClassVar[str]                # "Temporal action grounding"
    qa_types: ClassVar[tuple[str, ...]]  # the official qa_type values, generator-suffixed first
    prompt_file: ClassVar[str]          # "tasks/tag"
    metric_module: ClassVar[str]        # "tag" -> mvbench.eval.metrics.tag
    metrics: ClassVar[tuple[MetricSpec, ...]]
    free_text: ClassVar[bool] = False   # answers are generated captions (DVC, VS, RC)
    aggregate_kwargs: ClassVar[dict[str, Any]] = {}  # extra arguments of the metric module's aggregate

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

    # ----- parsing and metrics (implemented in mvbench.eval.metrics) ------------------------
    def _metrics_module(self) -> ModuleType:
        return importlib.import_module(f"mvbench.eval.metrics.{self.metric_module}")

    def parse(self, text: str) -> Any:
        """Parse a model answer; never raises (an unparseable answer gives the parser's fallback)."""
        return self._metrics_module().parse(text)

    def build_context(self, records: list[dict]) -> dict | None:
        """State a metric needs across all records scored together (NAP's class lists), else None."""
        build = getattr(self._metrics_module(), "build_context", None)
        return build(records) if build is not None else None

    def score_sample(self, record: dict, context: dict | None = None) -> dict[str, float | None]:
        """Per-sample scores of one merged record ({metadata, qa_type, struc_info, question, gnd, answer, data_source}).

        Args:
            record: the merged record.
            context: :meth:`build_context` of the records scored together, for metrics that need it.
        """
        module = self._metrics_module()
        return module.score_sample(record) if context is None else module.score_sample(record, context)

    def aggregate(self, records: list[dict], samples: list[dict], mode: str = "leaderboard") -> dict[str, float | None]:
        """Pool per-sample scores as the official leaderboard does (``mode="leaderboard"``)."""
        return self._metrics_module().aggregate(records, samples, mode=mode, **self.aggregate_kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name}: {', '.join(self.qa_types)}>"


def preambles(data_source: str) -> list[str]:
    """The persona/context sentences for a source (``prompts/preambles.toml``)."""
    table = prompts.load("preambles")
    try:
        return list(table[data_source]["preambles"])
    except KeyError:
        raise KeyError(f"no preambles for data_source {data_source!r} in prompts/preambles.toml") from None


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
