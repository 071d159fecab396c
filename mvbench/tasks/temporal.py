"""Tasks whose answers are time segments: TAG and DVC."""

from __future__ import annotations

from typing import Any

from mvbench.tasks.base import MetricSpec, Task, fmt_time


def dvc_segments(struc_info: Any) -> list[dict]:
    """The DVC ground-truth segments in any published ``struc_info`` shape.

    ``[[{start,end,caption}]]``, ``[{"dc_segments": [...]}]`` (NurViD) or ``[{start,end,caption}]``.
    Items lacking start, end or caption are dropped, as the official scorer does.
    """
    items: Any = []
    if isinstance(struc_info, list) and struc_info:
        first = struc_info[0]
        if isinstance(first, list):
            items = first
        elif isinstance(first, dict) and "dc_segments" in first:
            items = first["dc_segments"]
        else:
            items = struc_info
    return [s for s in items if isinstance(s, dict) and {"start", "end", "caption"} <= set(s)]


class TAG(Task):
    """Temporal action grounding: find the segment(s) where an action happens."""

    name = "TAG"
    title = "Temporal action grounding"
    qa_types = ("tal",)
    prompt_file = "tasks/tag"
    metric_module = "tag"
    metrics = (MetricSpec("tag_miou_0.3"), MetricSpec("tag_miou_0.5"))

    def format_answer(self, ground_truth: Any) -> str:
        """``[{"action", "spans": [{"start", "end"}]}]`` → ``"1.1-3.0, 5.0-7.5 seconds."``.

        >>> TAG().format_answer([{"action": "x", "spans": [{"start": 1.1, "end": 3}]}])
        '1.1-3.0 seconds.'
        """
        spans = sorted((s["start"], s["end"]) for item in ground_truth for s in item["spans"])
        return ", ".join(f"{fmt_time(a)}-{fmt_time(b)}" for a, b in spans) + " seconds."


class DVC(Task):
    """Dense video captioning: list events with start/end and a caption."""

    name = "DVC"
    title = "Dense video captioning"
    qa_types = ("dense_captioning_gpt", "dense_captioning_gemini", "dense_captioning")
    prompt_file = "tasks/dvc"
    metric_module = "dvc"
    metrics = (MetricSpec("dvc_f1"), MetricSpec("dvc_llm", scale="1-5"))
    free_text = True

    def format_answer(self, ground_truth: Any) -> str:
        """Segments → one line each, ``"a-b seconds: caption"``.

        >>> print(DVC().format_answer([[{"start": 0, "end": 5, "caption": "check: a nurse checks."}]]))
        0.0-5.0 seconds: check: a nurse checks.
        """
        segs = dvc_segments(ground_truth)
        return "\n".join(f"{fmt_time(s['start'])}-{fmt_time(s['end'])} seconds: {s['caption']}"
                         for s in segs)
