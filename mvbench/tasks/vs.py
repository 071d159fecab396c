"""VS, video summary (qa_types ``video_summary_gpt`` / ``video_summary_gemini``): a short paragraph.

Prompt: ``prompts/tasks/vs.toml``. Answer: free text (the GPT-4.1 or Gemini-2.5-Flash reference
names the qa_type suffix). Leaderboard metric: ``vs_llm``, the caption judge's 1–5 score pooled
over all records (:class:`mvbench.tasks.captions.CaptionTask`).
"""

from __future__ import annotations

from mvbench.tasks.captions import CaptionTask, caption_metrics


class VS(CaptionTask):
    """Video summary: a short free-text paragraph."""

    name = "VS"
    title = "Video summary"
    qa_types = ("video_summary_gpt", "video_summary_gemini", "video_summary")
    prompt_file = "tasks/vs"
    metrics = caption_metrics("vs", "VS llm")
