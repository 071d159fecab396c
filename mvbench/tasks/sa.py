"""SA, skill assessment (qa_type ``skill_assessment``): JIGSAWS GRS aspects on a 1–5 scale.

Prompt: ``prompts/tasks/sa.toml``. Answer: ``"Respect for tissue: 2/5, Suture/needle handling:
1/5, ..."`` in the order the question lists the aspects. Leaderboard metric: ``sa_acc``.

Official behaviour (evaluation/eval_skill_assessment.py, LB 6a68818), ``mode="leaderboard"``:

- A record is skipped (None) if the answer has no ``\\d+/5`` anywhere, or if there is no GT skill
  level (``struc_info[0]['skill_level']``, else one derived from the ``k/5`` scores in ``gnd``).
- The answer is split on commas; each part is matched by ``Name: k/5`` (so a newline-separated
  answer yields at most one aspect, and ``2.5/5`` none). Names must equal the GT
  ``skill_scores`` keys exactly (else the aspects parsed from ``gnd``); only aspects present in
  both count, so omitted aspects cost nothing.
- Per dataset: mean over aspects of per-aspect accuracy (0.0 if nothing counted); then an
  unweighted mean over dataset groups. A missing/'Unknown' data_source is guessed from the video
  id (JIGSAWS patterns give the group 'jigsaws') or the question.

Only ``mode="leaderboard"`` exists. Deliberate deviation: an aspect score too large for a float
(``Respect for tissue: 999…9/5``) makes the official parser raise ``OverflowError`` and the whole SA
evaluation fail (the site then shows 0.000); here that aspect simply does not parse. A score of more
than 4300 digits (Python's int-conversion limit) stands as ``inf``: never equal to a ground truth,
and it makes the implied level "expert", as the unlimited integer would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mvbench.tasks.base import MetricSpec, Task
from mvbench.tasks.common import (answer_int, balanced_accuracy, dataset_grouper, group_in_order,
                                  np_mean)

# JIGSAWS GRS sub-scores, in meta_file order: the exact MedVidBench SA aspect names.
ASPECTS = ("Respect for tissue", "Suture/needle handling", "Time and motion", "Flow of operation",
           "Overall performance", "Quality of final product")

# The official patterns, made linear-time without changing a match (tests hold them to a frozen copy
# of the originals). A score's digits start a digit run, or follow the previous match's "/5" (a
# start inside a run fails as the start of that run did). An aspect name runs from the part's start
# or a ":" to the next ":", so an attempt starting inside a name fails as the name's start did.
_SCORE = re.compile(r"(?:(?<!\d)|(?<=/5))(\d++)/5")
_ASPECT = re.compile(r"(?:^|(?<=:))([^:]+?):\s*+(\d++)/5")
_LEVELS = {"novice": "novice", "beginner": "novice", "intermediate": "intermediate", "expert": "expert",
           "advanced": "expert", "n": "novice", "i": "intermediate", "e": "expert", "1": "novice",
           "2": "intermediate", "3": "expert", "low": "novice", "medium": "intermediate",
           "high": "expert", "poor": "novice", "good": "intermediate", "excellent": "expert"}


@dataclass
class SkillAnswer:
    """A parsed skill-assessment answer.

    Attributes:
        aspects: aspect name → integer score, from ``Name: k/5`` comma-separated parts (``inf``
            for a number beyond Python's int-conversion limit).
        level: skill level implied by the mean of all ``k/5`` scores, None if there are none.
    """

    aspects: dict[str, int] = field(default_factory=dict)
    level: str | None = None


def _level(text: str) -> str | None:
    scores = [answer_int(s) for s in _SCORE.findall(text)]
    if not scores:
        return None
    try:
        avg = sum(scores) / len(scores)
    except OverflowError:
        avg = float("inf")
    return "novice" if avg <= 2.0 else "intermediate" if avg <= 3.5 else "expert"


def parse(text: str) -> SkillAnswer:
    """Parse ``Name: k/5, …``.

    >>> parse("Respect for tissue: 2/5, Suture/needle handling: 1/5")
    SkillAnswer(aspects={'Respect for tissue': 2, 'Suture/needle handling': 1}, level='novice')
    >>> parse("Respect for tissue: 2.5/5").aspects
    {}
    """
    if not isinstance(text, str):
        return SkillAnswer()
    aspects: dict[str, int] = {}
    for part in text.split(","):
        m = _ASPECT.search(part.strip())
        if m:
            aspects[m.group(1).strip()] = answer_int(m.group(2))
    return SkillAnswer(aspects=aspects, level=_level(text))


def _normalize_level(code: str) -> str:
    code = code.strip().lower()
    if code in _LEVELS:
        return _LEVELS[code]
    for key, value in _LEVELS.items():
        if key in code:
            return value
    return code


def _first_struc(rec: dict) -> dict:
    struc = rec.get("struc_info")
    if isinstance(struc, list) and struc and isinstance(struc[0], dict):
        return struc[0]
    return {}


def score_sample(rec: dict) -> dict[str, float | None]:
    """Per-aspect correctness of one record.

    Args:
        rec: merged record.

    Returns:
        ``{"counted": 1.0 | None, "level_correct": 1.0/0.0 | None, "aspect:<name>": 1.0/0.0, …}``
        (aspect keys in GT order, only for aspects present in both; ``counted`` None = skipped).
    """
    pred = parse(rec.get("answer", "") or "")
    if pred.level is None:
        return {"counted": None, "level_correct": None}
    item = _first_struc(rec)
    code = item.get("skill_level", "")
    gnd_level = _normalize_level(str(code)) if code else None
    if not gnd_level:
        gnd_level = _level(str(rec.get("gnd", "") or ""))
        if gnd_level is None:
            return {"counted": None, "level_correct": None}
    out: dict[str, float | None] = {"counted": 1.0, "level_correct": float(pred.level == gnd_level)}
    gnd_aspects = item.get("skill_scores") or {}
    if not gnd_aspects:
        gnd_aspects = parse(str(rec.get("gnd", "") or "")).aspects
    for name in gnd_aspects:
        if name in pred.aspects:
            out[f"aspect:{name}"] = float(pred.aspects[name] == gnd_aspects[name])
    return out


def _own_video(vid: str) -> str | None:
    if any(p in vid for p in ("knot_tying", "suturing", "needle_passing")) and "_b" in vid:
        return "jigsaws"
    return None


def _own_question(q: str) -> str | None:
    if any(p in q for p in ("robotic bench-top", "knot-tying", "needle-passing", "suturing", "surgical technique")):
        return "jigsaws"
    return None


# The official ``group_records_by_dataset`` of this scorer: data_source, else detection.
group_of = dataset_grouper(_own_video, _own_question)


def aggregate(recs: list[dict], samples: list[dict], mode: str = "leaderboard") -> dict[str, float | None]:
    """Aspect-balanced accuracy per dataset group, then the unweighted mean over groups.

    Args:
        recs: the SA records.
        samples: their ``score_sample`` dicts, aligned.
        mode: only "leaderboard".

    Returns:
        ``{"sa_acc", "sa_level_acc"}`` (None without records).
    """
    if not recs:
        return {"sa_acc": None, "sa_level_acc": None}
    per_group = []
    levels = []
    for idx in group_in_order(group_of(r) for r in recs).values():
        per_group.append(balanced_accuracy([samples[i] for i in idx], "aspect:"))
        levels.extend(samples[i]["level_correct"] for i in idx if samples[i]["level_correct"] is not None)
    return {"sa_acc": np_mean(per_group), "sa_level_acc": sum(levels) / len(levels) if levels else 0.0}


class SA(Task):
    """Skill assessment: JIGSAWS GRS aspects on a 1-5 scale."""

    name = "SA"
    title = "Skill assessment"
    qa_types = ("skill_assessment",)
    prompt_file = "tasks/sa"
    metrics = (MetricSpec("sa_acc", "SA"), MetricSpec("sa_level_acc", "SA level", leaderboard=False))

    def format_answer(self, ground_truth: Any) -> str:
        """``[{"skill_scores": {...}}]`` → ``"Respect for tissue: 2/5, ..."``.

        >>> SA().format_answer([{"skill_scores": {"Respect for tissue": 2, "Time and motion": 1}}])
        'Respect for tissue: 2/5, Time and motion: 1/5'
        """
        scores = ground_truth[0]["skill_scores"]
        return ", ".join(f"{name}: {int(value)}/5" for name, value in scores.items())

    def parse(self, text: str) -> SkillAnswer:
        return parse(text)

    def ground_truth_problem(self, record: dict) -> str | None:
        """No skill level: neither ``struc_info[0].skill_level`` nor ``k/5`` scores in ``gnd``."""
        struc = record.get("struc_info")
        if struc not in (None, []) and not (isinstance(struc, list) and isinstance(struc[0], dict)):
            return f"struc_info must be a list of {{skill_level, skill_scores}} objects, not {struc!r:.60}"
        if _first_struc(record).get("skill_level") or _level(str(record.get("gnd", "") or "")) is not None:
            return None
        return "no ground-truth skill level (struc_info[0].skill_level, or k/5 scores in the reference answer)"

    def score_sample(self, record: dict, context: Any = None) -> dict[str, float | None]:
        return score_sample(record)

    def counted(self, scores: dict) -> bool:
        """Counted when the answer holds a ``k/5`` score and the ground truth a skill level."""
        return scores.get("counted") is not None

    def aggregate(self, records: list[dict], samples: list[dict], mode: str = "leaderboard") -> dict[str, float | None]:
        return aggregate(records, samples, mode)

    def sample_reward(self, record: dict, completion: str, context: Any = None) -> float | None:
        """The fraction of ground-truth aspects the completion scores exactly; None without GT aspects.

        Unlike the leaderboard, an omitted aspect counts as wrong: otherwise a policy learns to
        answer only the aspects it is sure of.

        >>> gt = {"struc_info": [{"skill_level": "N", "skill_scores": {"Respect for tissue": 2, "Time and motion": 1}}]}
        >>> SA().reward(gt, "Respect for tissue: 2/5, Time and motion: 3/5"), SA().reward(gt, "Respect for tissue: 2/5")
        (0.5, 0.5)
        """
        item = _first_struc(record)
        gnd = item.get("skill_scores") or parse(str(record.get("gnd", "") or "")).aspects
        if not gnd:
            return None
        pred = parse(completion).aspects
        return sum(1.0 for name, value in gnd.items() if pred.get(name) == value) / len(gnd)
