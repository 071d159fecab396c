"""What the judge-scored caption tasks share: VS and RC (and DVC's judge half).

Official behaviour (evaluation/eval_caption_llm_judge.py, LB 6a68818), ``mode="leaderboard"``:

- One judge call per record on (answer, gnd); records where either is empty are skipped (no
  call, None). Failed calls (5 attempts without all five scores) are dropped.
- Score = mean over the five aspects (R2, R3, R8, R5, R4) of each aspect's mean over the
  successful calls, on the judge's 1–5 scale; None when nothing was judged (the official then
  falls back to a MiniLM similarity, which is not comparable, so we report that separately).
- MiniLM cosine similarity (answer vs gnd, 0–1 scale) is reported beside it as
  ``<task>_semantic_sim`` when computed.

``parse`` here is the judge-reply parser (the judge's output is the model text to parse).
:class:`CaptionTask` is the base of VS (``vs.py``) and RC (``rc.py``): the judge hooks, the
pooling and the reward. Only ``mode="leaderboard"`` exists.
"""

from __future__ import annotations

import re

from typing import Any

from mvbench.tasks.base import MetricSpec, Task
from mvbench.tasks.common import answer_int, np_mean

ASPECTS = ("R2", "R3", "R8", "R5", "R4")
_PATTERNS = {a: tuple(re.compile(p.format(a=a)) for p in (
    r"{a}:\s*(\d+)", r"{a}\s*=\s*(\d+)", r"{a}\s*:\s*(\d+)", r"{a}\s+(\d+)", r"\*\*{a}\*\*\s*:\s*(\d+)"))
    for a in ASPECTS}


def parse(text: str) -> dict[str, int]:
    """Aspect scores in a judge reply (first matching pattern per aspect; any integer accepted,
    as in the official parser). A reply is usable only if all five are present.

    >>> parse("R2: 4\\nR3: 3\\nR8 = 5\\nR5 : 4\\n**R4**: 2")
    {'R2': 4, 'R3': 3, 'R8': 5, 'R5': 4, 'R4': 2}
    >>> parse("I cannot evaluate this.")
    {}
    """
    if not isinstance(text, str):
        return {}
    scores: dict[str, int] = {}
    for aspect, patterns in _PATTERNS.items():
        for pattern in patterns:
            m = pattern.search(text)
            if m:
                scores[aspect] = answer_int(m.group(1))
                break
    return scores


def _text(value: object) -> str:
    # List-valued fields are joined from their items' captions, as in the official scorer.
    if isinstance(value, list):
        return " ".join(i.get("caption", "") if isinstance(i, dict) else str(i) for i in value)
    return value if isinstance(value, str) else ("" if value is None else str(value))


def pair(rec: dict) -> tuple[str, str] | None:
    """The (prediction, reference) pair to judge, or None if either side is empty.

    List-valued fields are joined from their items' captions, as in the official scorer.
    """
    prediction, reference = _text(rec.get("answer", "")), _text(rec.get("gnd", ""))
    return (prediction, reference) if prediction and reference else None


def score_sample(rec: dict) -> dict[str, float | None]:
    """Per-sample fields that need no judge: whether the record is judgeable.

    Judge scores (``R2`` … ``R4`` and ``llm``) and ``semantic_sim`` are added by ``score.py``.

    Returns:
        ``{"judgeable": 1.0/0.0}``.
    """
    return {"judgeable": 1.0 if pair(rec) else 0.0}


def aggregate(recs: list[dict], samples: list[dict], mode: str = "leaderboard",
              prefix: str = "vs") -> dict[str, float | None]:
    """Pool judge scores over all records of one caption task.

    Args:
        recs: the task's records.
        samples: per-sample dicts, aligned (judged ones carry ``R2`` … ``R4``).
        mode: only "leaderboard".
        prefix: 'vs' or 'rc' (names the output keys).

    Returns:
        ``{"<prefix>_llm", "<prefix>_semantic_sim", "<prefix>_judged"}``.
    """
    judged = [s for s in samples if s.get("R2") is not None]
    llm = None
    if judged:
        llm = np_mean([np_mean([s[a] for s in judged]) for a in ASPECTS])
    sims = [s["semantic_sim"] for s in samples if s.get("semantic_sim") is not None]
    return {f"{prefix}_llm": llm, f"{prefix}_semantic_sim": np_mean(sims) if sims else None,
            f"{prefix}_judged": float(len(judged)) if recs else None}


class CaptionTask(Task):
    """A free-text caption task scored by the LLM judge (one call per record).

    Subclasses set ``name``, ``title``, ``qa_types``, ``prompt_file`` and ``metrics`` (the
    ``<key>_llm`` judge metric first).
    """

    free_text = True

    def format_answer(self, ground_truth: Any) -> str:
        """A caption is its own answer."""
        return str(ground_truth).strip()

    def parse(self, text: str) -> str:
        """The caption as the judge sees it (stripped text)."""
        return text.strip() if isinstance(text, str) else ""

    def ground_truth_problem(self, record: dict) -> str | None:
        """An empty reference caption (``gnd``): nothing to judge the answer against."""
        return None if _text(record.get("gnd", "")).strip() else "the reference caption (gnd) is empty"

    def score_sample(self, record: dict, context: Any = None) -> dict[str, float | None]:
        return score_sample(record)

    def counted(self, scores: dict) -> bool:
        """Counted when both the answer and the reference are non-empty (a judge call is made)."""
        return scores.get("judgeable") == 1.0

    def aggregate(self, records: list[dict], samples: list[dict], mode: str = "leaderboard") -> dict[str, float | None]:
        return aggregate(records, samples, mode, prefix=self.key)

    def judge_items(self, record: dict) -> list[tuple[Any, str, str]]:
        p = pair(record)
        return [(None, p[0], p[1])] if p else []

    def add_judge_result(self, scores: dict, tag: Any, result: dict[str, int] | None) -> None:
        if result is None:
            scores["judge_failed"] = 1.0
            return
        for a in ASPECTS:
            scores[a] = float(result[a])
        scores["llm"] = sum(result[a] for a in ASPECTS) / len(ASPECTS)

    def similarity_pair(self, record: dict) -> tuple[str, str] | None:
        return pair(record)

    def sample_reward(self, record: dict, completion: str, context: Any = None) -> float | None:
        """MiniLM cosine similarity of the completion and the reference, clipped to [0, 1]; None
        without a reference. The judge half of the caption reward is added by training."""
        from mvbench import embedding

        reference = pair({**record, "answer": "x"})
        if reference is None:
            return None
        text = completion.strip() if isinstance(completion, str) else ""
        if not text:
            return 0.0
        return min(1.0, max(0.0, embedding.cosine(text, reference[1])))


def caption_metrics(prefix: str, title: str) -> tuple[MetricSpec, ...]:
    """The judge metric of a caption task plus the MiniLM similarity and judged count beside it."""
    return (MetricSpec(f"{prefix}_llm", title, scale="1-5", judge=True),
            MetricSpec(f"{prefix}_semantic_sim", f"{title} MiniLM", leaderboard=False),
            MetricSpec(f"{prefix}_judged", f"{title} judged", leaderboard=False))
