"""CVS, critical view of safety (qa_type ``cvs_assessment``): the three Strasberg criteria, each 0–2.

Prompt: ``prompts/tasks/cvs.toml``. Answer: ``"Two structures: 2, Cystic plate: 1, Hepatocystic
triangle: 0"``. Leaderboard metric: ``cvs_acc`` (component-balanced accuracy).

Official behaviour (evaluation/eval_cvs_assessment.py, LB 6a68818), ``mode="leaderboard"``:

- The answer is split on commas; a lower-cased part containing ``two structures`` /
  ``cystic plate`` / ``hepatocystic triangle`` must also match ``<name>: <int>`` (checked in
  that order, first name found wins the part; a later part overrides an earlier one).
- GT: ``struc_info[0]['cvs_scores']`` restricted to the three components, else parsed from
  ``gnd``. Only components present in both prediction and GT count, so omissions and garbage
  cost nothing.
- Per dataset group: mean over components of per-component accuracy (0.0 if nothing counted);
  then an unweighted mean over groups. Groups are the raw ``data_source`` strings, so
  ``Cholec80-CVS`` and ``Cholec80_CVS`` are separate groups; a missing/'Unknown' source with a
  ``videoNN`` video id joins ``Cholec80_CVS``.

Only ``mode="leaderboard"`` exists.
"""

from __future__ import annotations

import re
from typing import Any

from mvbench.tasks.base import MetricSpec, Task, with_answer
from mvbench.tasks.common import (answer_int, balanced_accuracy, dataset_grouper, group_in_order,
                                  np_mean)

COMPONENTS = ("two_structures", "cystic_plate", "hepatocystic_triangle")
CRITERIA = (("two_structures", "Two structures"), ("cystic_plate", "Cystic plate"),
            ("hepatocystic_triangle", "Hepatocystic triangle"))
_PATTERNS = (("two structures", "two_structures", re.compile(r"two structures?:\s*(\d+)")),
             ("cystic plate", "cystic_plate", re.compile(r"cystic plate:\s*(\d+)")),
             ("hepatocystic triangle", "hepatocystic_triangle", re.compile(r"hepatocystic triangle:\s*(\d+)")))


def parse(text: str) -> dict[str, int]:
    """Component scores found in the answer.

    >>> parse("Two structures: 2, Cystic plate: 1, Hepatocystic triangle: 0")
    {'two_structures': 2, 'cystic_plate': 1, 'hepatocystic_triangle': 0}
    >>> parse("two structures: 2 cystic plate: 1")
    {'two_structures': 2}
    """
    if not isinstance(text, str):
        return {}
    found: dict[str, int] = {}
    for part in text.split(","):
        part = part.strip().lower()
        for needle, name, pattern in _PATTERNS:
            if needle in part:
                m = pattern.search(part)
                if m:
                    found[name] = answer_int(m.group(1))
                break
    return found


def gt_components(rec: dict) -> dict:
    """GT component scores (``struc_info[0].cvs_scores``, else parsed from ``gnd``)."""
    gnd: dict = {}
    struc = rec.get("struc_info")
    if isinstance(struc, list) and struc and isinstance(struc[0], dict):
        scores = struc[0].get("cvs_scores", {}) or {}
        gnd = {k: v for k, v in scores.items() if k in COMPONENTS}
    if not gnd:
        gnd = parse(str(rec.get("gnd", "") or ""))
    return gnd


def score_sample(rec: dict) -> dict[str, float | None]:
    """Per-component correctness of one record.

    Args:
        rec: merged record.

    Returns:
        ``{"comp:<name>": 1.0/0.0, …}`` for components in both GT and prediction (GT order), and
        ``"n_components"``: how many counted.
    """
    pred = parse(rec.get("answer", "") or "")
    out: dict[str, float | None] = {}
    for name, value in gt_components(rec).items():
        if name in pred:
            out[f"comp:{name}"] = float(pred[name] == value)
    out["n_components"] = float(len(out))
    return out


def _own_video(vid: str) -> str | None:
    return "Cholec80_CVS" if vid.startswith("video") and vid[5:].isdigit() else None


def _own_question(q: str) -> str | None:
    if any(p in q for p in ("cholec80-cvs", "strasberg", "critical view", "cvs", "cystic plate",
                            "hepatocystic triangle")):
        return "Cholec80_CVS"
    return None


# The official ``group_records_by_dataset`` of this scorer: data_source, else detection.
group_of = dataset_grouper(_own_video, _own_question)


def aggregate(recs: list[dict], samples: list[dict], mode: str = "leaderboard") -> dict[str, float | None]:
    """Component-balanced accuracy per group, then the unweighted mean over groups.

    Args:
        recs: the CVS records.
        samples: their ``score_sample`` dicts, aligned.
        mode: only "leaderboard".

    Returns:
        ``{"cvs_acc"}`` (None without records).
    """
    if not recs:
        return {"cvs_acc": None}
    per_group = [balanced_accuracy([samples[i] for i in idx], "comp:")
                 for idx in group_in_order(group_of(r) for r in recs).values()]
    return {"cvs_acc": np_mean(per_group)}


class CVS(Task):
    """Critical view of safety: the three Strasberg criteria on a 0-2 scale."""

    name = "CVS"
    title = "Critical view of safety assessment"
    qa_types = ("cvs_assessment",)
    prompt_file = "tasks/cvs"
    metrics = (MetricSpec("cvs_acc", "CVS"),)

    def format_answer(self, ground_truth: Any) -> str:
        """``[{"cvs_scores": {...}}]`` → ``"Two structures: 2, Cystic plate: 1, Hepatocystic triangle: 0"``."""
        scores = ground_truth[0]["cvs_scores"]
        return ", ".join(f"{label}: {int(scores[key])}" for key, label in CRITERIA)

    def parse(self, text: str) -> dict[str, int]:
        return parse(text)

    def ground_truth_problem(self, record: dict) -> str | None:
        """No component score in ``struc_info[0].cvs_scores`` nor in the reference answer."""
        struc = record.get("struc_info")
        if struc not in (None, []) and not (isinstance(struc, list) and isinstance(struc[0], dict)):
            return f"struc_info must be a list of {{cvs_scores}} objects, not {struc!r:.60}"
        if not gt_components(record):
            return "no ground-truth CVS scores (struc_info[0].cvs_scores, or the reference answer)"
        return None

    def score_sample(self, record: dict, context: Any = None) -> dict[str, float | None]:
        return score_sample(record)

    def counted(self, scores: dict) -> bool:
        """Counted when at least one criterion is in both the answer and the ground truth."""
        return bool(scores.get("n_components"))

    def aggregate(self, records: list[dict], samples: list[dict], mode: str = "leaderboard") -> dict[str, float | None]:
        return aggregate(records, samples, mode)

    def sample_reward(self, record: dict, completion: str, context: Any = None) -> float | None:
        """The fraction of ground-truth criteria the completion scores exactly (an omitted one is
        wrong, unlike the leaderboard); None without ground truth.

        >>> gt = {"struc_info": [{"cvs_scores": {"two_structures": 2, "cystic_plate": 1, "hepatocystic_triangle": 0}}]}
        >>> CVS().reward(gt, "Two structures: 2, Cystic plate: 1, Hepatocystic triangle: 0")
        1.0
        """
        gnd = gt_components(with_answer(record, completion))
        if not gnd:
            return None
        pred = parse(completion)
        return sum(1.0 for name, value in gnd.items() if pred.get(name) == value) / len(gnd)
