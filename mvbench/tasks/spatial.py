"""Tasks about a boxed object: STG (where is it) and RC (what is it doing)."""

from __future__ import annotations

from typing import Any

from mvbench.tasks.base import MetricSpec, Task, fmt_num, fmt_time


class STG(Task):
    """Spatio-temporal grounding: the object's box at regular times."""

    name = "STG"
    title = "Spatio-temporal grounding"
    qa_types = ("stg",)
    prompt_file = "tasks/stg"
    metric_module = "stg"
    metrics = (MetricSpec("stg_miou"),)

    def format_answer(self, ground_truth: Any) -> str:
        """``[{"bbox_dict": {"1.0": [x1,y1,x2,y2], ...}}]`` → ``"1.0 seconds: [x1, y1, x2, y2] 5.0 seconds: [...]"``.

        >>> STG().format_answer([{"bbox_dict": {"5": [1, 2, 3, 4], "1": [0.5, 2, 3, 4.256]}}])
        '1.0 seconds: [0.5, 2.0, 3.0, 4.26] 5.0 seconds: [1.0, 2.0, 3.0, 4.0]'
        """
        boxes = ground_truth[0]["bbox_dict"]
        parts = []
        for key in sorted(boxes, key=float):
            parts.append(f"{fmt_time(float(key))} seconds: [{', '.join(fmt_num(v) for v in boxes[key])}]")
        return " ".join(parts)


class RC(Task):
    """Region captioning: describe what the boxed object does over an interval."""

    name = "RC"
    title = "Region captioning"
    qa_types = ("region_caption_gpt", "region_caption_gemini", "region_caption")
    prompt_file = "tasks/rc"
    metric_module = "caption"
    metrics = (MetricSpec("rc_llm", scale="1-5"),)
    free_text = True
    aggregate_kwargs = {"prefix": "rc"}

    def format_answer(self, ground_truth: Any) -> str:
        """A caption is its own answer."""
        return str(ground_truth).strip()
