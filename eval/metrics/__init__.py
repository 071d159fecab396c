"""Leaderboard-identical parsers and metrics of MedVidBench, one module per task family.

Each module has ``parse(text)`` (never raises on model text), ``score_sample(rec)`` (per-sample
scores; None = excluded) and ``aggregate(recs, samples, mode="leaderboard")`` (the official
pooling). ``rec`` is a merged record: ``{metadata, qa_type, struc_info, question, gnd, answer,
data_source}``. ``mvbench.eval.score`` routes records to them.
"""

from __future__ import annotations

TASKS = ("tag", "stg", "nap", "sa", "cvs", "dvc", "vs", "rc")
MODES = ("leaderboard",)


def task_of(qa_type: object) -> str | None:
    """The task a qa_type is scored as (caption tasks by substring, as the official scorer).

    >>> [task_of(q) for q in ("tal", "dense_captioning_gpt", "video_summary", "region_caption_gemini", "x")]
    ['tag', 'dvc', 'vs', 'rc', None]
    """
    if not isinstance(qa_type, str):
        return None
    if "dense_captioning" in qa_type or qa_type == "dc":
        return "dvc"
    if "video_summary" in qa_type:
        return "vs"
    if "region_caption" in qa_type:
        return "rc"
    return {"tal": "tag", "stg": "stg", "next_action": "nap", "skill_assessment": "sa",
            "cvs_assessment": "cvs"}.get(qa_type)
