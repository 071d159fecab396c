"""RC, region captioning (qa_types ``region_caption_gpt`` / ``region_caption_gemini``).

The model describes what the object inside a box (drawn on the clip's start frame, see
``RC_info``) does over an interval. Prompt: ``prompts/tasks/rc.toml``. Answer: free text.
Leaderboard metric: ``rc_llm``, the caption judge's 1–5 score pooled over all records
(:class:`mvbench.tasks.captions.CaptionTask`).
"""

from __future__ import annotations

from mvbench.tasks.captions import CaptionTask, caption_metrics


class RC(CaptionTask):
    """Region captioning: describe what the boxed object does over an interval."""

    name = "RC"
    title = "Region captioning"
    qa_types = ("region_caption_gpt", "region_caption_gemini", "region_caption")
    prompt_file = "tasks/rc"
    metrics = caption_metrics("rc", "RC llm")
