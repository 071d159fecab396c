"""Free-text caption tasks: video summary (``video_summary*``) and region caption (``region_caption*``).

Official behaviour (evaluation/eval_caption_llm_judge.py, LB 6a68818), ``mode="leaderboard"``:

- One judge call per record on (answer, gnd); records where either is empty are skipped (no
  call, None). Failed calls (5 attempts without all five scores) are dropped.
- Score = mean over the five aspects (R2, R3, R8, R5, R4) of each aspect's mean over the
  successful calls, on the judge's 1–5 scale; None when nothing was judged (the official then
  falls back to a MiniLM similarity, which is not comparable, so we report that separately).
- MiniLM cosine similarity (answer vs gnd, 0–1 scale) is reported beside it as
  ``<task>_semantic_sim`` when computed.

``parse`` here is the judge-reply parser (the judge's output is the model text to parse).
DVC's judge aggregation lives in ``dvc.py``. Only ``mode="leaderboard"`` exists.
"""

from __future__ import annotations

import re

from mvbench.eval.metrics.common import np_mean

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
                scores[aspect] = int(m.group(1))
                break
    return scores


def task_of(qa_type: str) -> str | None:
    """'vs', 'rc' or None, by substring as the official scorer matches caption tasks."""
    if "video_summary" in qa_type:
        return "vs"
    if "region_caption" in qa_type:
        return "rc"
    return None


def pair(rec: dict) -> tuple[str, str] | None:
    """The (prediction, reference) pair to judge, or None if either side is empty.

    List-valued fields are joined from their items' captions, as in the official scorer.
    """
    def text(value: object) -> str:
        if isinstance(value, list):
            return " ".join(i.get("caption", "") if isinstance(i, dict) else str(i) for i in value)
        return value if isinstance(value, str) else ("" if value is None else str(value))

    prediction, reference = text(rec.get("answer", "")), text(rec.get("gnd", ""))
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
