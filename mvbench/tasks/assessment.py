"""Tasks that classify or score a clip: NAP, SA, CVS, and the free-text summary VS."""

from __future__ import annotations

from typing import Any

from mvbench.tasks.base import MetricSpec, Task

# JIGSAWS GRS sub-scores, in meta_file order: the exact MedVidBench SA aspect names.
SA_ASPECTS = ("Respect for tissue", "Suture/needle handling", "Time and motion", "Flow of operation",
              "Overall performance", "Quality of final product")
CVS_CRITERIA = (("two_structures", "Two structures"), ("cystic_plate", "Cystic plate"),
                ("hepatocystic_triangle", "Hepatocystic triangle"))


class NAP(Task):
    """Next action prediction: which step follows the clip."""

    name = "NAP"
    title = "Next action prediction"
    qa_types = ("next_action",)
    prompt_file = "tasks/nap"
    metric_module = "nap"
    metrics = (MetricSpec("nap_acc"),)

    def format_answer(self, ground_truth: Any) -> str:
        """``[{"next_action": "tying"}]`` → ``"tying"``."""
        return str(ground_truth[0]["next_action"])


class SA(Task):
    """Skill assessment: JIGSAWS GRS aspects on a 1-5 scale."""

    name = "SA"
    title = "Skill assessment"
    qa_types = ("skill_assessment",)
    prompt_file = "tasks/sa"
    metric_module = "sa"
    metrics = (MetricSpec("sa_acc"),)

    def format_answer(self, ground_truth: Any) -> str:
        """``[{"skill_scores": {...}}]`` → ``"Respect for tissue: 2/5, ..."``.

        >>> SA().format_answer([{"skill_scores": {"Respect for tissue": 2, "Time and motion": 1}}])
        'Respect for tissue: 2/5, Time and motion: 1/5'
        """
        scores = ground_truth[0]["skill_scores"]
        return ", ".join(f"{name}: {int(value)}/5" for name, value in scores.items())


class CVS(Task):
    """Critical view of safety: the three Strasberg criteria on a 0-2 scale."""

    name = "CVS"
    title = "Critical view of safety assessment"
    qa_types = ("cvs_assessment",)
    prompt_file = "tasks/cvs"
    metric_module = "cvs"
    metrics = (MetricSpec("cvs_acc"),)

    def format_answer(self, ground_truth: Any) -> str:
        """``[{"cvs_scores": {...}}]`` → ``"Two structures: 2, Cystic plate: 1, Hepatocystic triangle: 0"``."""
        scores = ground_truth[0]["cvs_scores"]
        return ", ".join(f"{label}: {int(scores[key])}" for key, label in CVS_CRITERIA)


class VS(Task):
    """Video summary: a short free-text paragraph."""

    name = "VS"
    title = "Video summary"
    qa_types = ("video_summary_gpt", "video_summary_gemini", "video_summary")
    prompt_file = "tasks/vs"
    metric_module = "caption"
    metrics = (MetricSpec("vs_llm", scale="1-5"),)
    free_text = True
    aggregate_kwargs = {"prefix": "vs"}

    def format_answer(self, ground_truth: Any) -> str:
        """A summary is its own answer."""
        return str(ground_truth).strip()
