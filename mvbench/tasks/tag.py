"""TAG, temporal action grounding (qa_type ``tal``): find the segment(s) where an action happens.

Prompt: ``prompts/tasks/tag.toml``. Answer: ``"1.1-3.0, 5.0-7.5 seconds."`` (one decimal, seconds
from the clip start). Leaderboard metrics: ``tag_miou_0.3`` and ``tag_miou_0.5``.

Official behaviour (evaluation/eval_tal.py, LB 6a68818), reproduced in ``mode="leaderboard"``:

- Every ``a-b`` pair in the answer is a segment (ASCII hyphen, optional spaces). Only if there is
  none: "X to Y" (optionally "from", "s"/"seconds"; values rounded to 2 decimals) and
  ``hh:mm:ss to hh:mm:ss``; both of these run, so "00:00:18 to 00:01:03" also yields (18, 0).
- Segments and GT spans (every span of every ``struc_info`` item) are scaled by fps.
- Greedy matching: each GT in order takes the unused prediction with the best IoU (> 0); the
  match counts if IoU ≥ θ. The sample score is the mean IoU of the matched pairs (0 if none):
  it is not divided by the number of GTs, so mIoU@0.5 can exceed mIoU@0.3.
- Pooling: per (dataset, fps) group np.mean, then each group mean repeated by its count, np.mean.

Only ``mode="leaderboard"`` exists.
"""

from __future__ import annotations

import math
import re
from typing import Any

from mvbench.tasks.base import MetricSpec, Task, fmt_time, with_answer
from mvbench.tasks.common import (answer_int, fps_of, group_in_order, is_number, np_mean, pooled_group_mean,
                                  temporal_dataset_key)

THRESHOLDS = (0.3, 0.5)
# The official patterns, made linear-time without changing a single match (tests/test_parsers_linear.py
# holds them to a frozen copy of the originals). Two rewrites, both exact:
# - A match never starts inside a run of digits (``(?<!\d)``) or of whitespace: an attempt there
#   sees the same text after the run as the attempt at the run's start, which findall made first,
#   so it fails the same way (a match never ends inside such a run). Without this, findall retries
#   every digit of a long run and the search is quadratic.
# - Possessive quantifiers (``\d++``, ``\s*+``) never give back digits or spaces: the token after
#   each could not match a digit or a space anyway.
_PAIR = re.compile(r"(?<!\d)(\d++(?:\.\d++)?+)\s*+-\s*+(\d++(?:\.\d++)?+)")
_TO = re.compile(r"(?:from|is from|takes place from|(?<!\s)(?=\s)|(?<!\d)(?=\d))\s*+(\d++(?:\.\d++)?+)"
                 r"(?:s| seconds?)?\s*+to\s*+(\d++(?:\.\d++)?+)(?:s| seconds?)?", re.IGNORECASE)
_HMS = re.compile(r"(?<!\d)(\d++):(\d++):(\d++)\s++to\s++(\d++):(\d++):(\d++)", re.IGNORECASE)
_NUM = r"\d+(?:\.\d+)?"
_FORMAT = re.compile(rf"\s*{_NUM}-{_NUM}(?:,\s*{_NUM}-{_NUM})*\s+seconds\.?\s*")


def _hms_seconds(h: str, m: str, s: str) -> float:
    # float(int(...)) as the official; a number too large for a float is inf rather than an error.
    try:
        return float(answer_int(h) * 3600 + answer_int(m) * 60 + answer_int(s))
    except OverflowError:
        return math.inf


def parse(text: str) -> list[tuple[float, float]]:
    """Segments (start, end) in seconds, in answer order; [] if none.

    >>> parse("22.0-78.0, 89.0-94.0 seconds.")
    [(22.0, 78.0), (89.0, 94.0)]
    >>> parse("from 00:00:18 to 00:01:03")
    [(18.0, 0.0), (18.0, 63.0)]
    >>> parse("no idea")
    []
    """
    if not isinstance(text, str):
        return []
    segments = [(float(a), float(b)) for a, b in _PAIR.findall(text)]
    if segments:
        return segments
    for a, b in _TO.findall(text):
        segments.append((round(float(a), 2), round(float(b), 2)))
    for h1, m1, s1, h2, m2, s2 in _HMS.findall(text):
        segments.append((_hms_seconds(h1, m1, s1), _hms_seconds(h2, m2, s2)))
    return segments


def gt_spans(rec: dict) -> list[tuple[float, float]]:
    """Every span of every ``struc_info`` item (seconds)."""
    spans: list[tuple[float, float]] = []
    struc = rec.get("struc_info", [])
    if isinstance(struc, list):
        for item in struc:
            if isinstance(item, dict) and "spans" in item:
                for span in item["spans"] or []:
                    spans.append((span["start"], span["end"]))
    return spans


def _iou(p: tuple[float, float], g: tuple[float, float]) -> float:
    inter = max(0, min(p[1], g[1]) - max(p[0], g[0]))
    union = max(p[1], g[1]) - min(p[0], g[0])
    return inter / union if union > 0 else 0.0


def match(preds: list[tuple[float, float]], gts: list[tuple[float, float]],
          threshold: float) -> tuple[float, float]:
    """Greedy GT-order matching.

    Args:
        preds: predicted segments.
        gts: GT segments.
        threshold: IoU needed for a match (≥).

    Returns:
        (mean IoU of matched pairs or 0.0, recall = matched GTs / #GT or 0.0).
    """
    used = [False] * len(preds)
    matched: list[float] = []
    for g in gts:
        best, best_j = 0, -1
        for j, p in enumerate(preds):
            if used[j]:
                continue
            v = _iou(p, g)
            if v > best:
                best, best_j = v, j
        if best >= threshold:
            used[best_j] = True
            matched.append(best)
    miou = sum(matched) / len(matched) if matched else 0.0
    recall = len(matched) / len(gts) if gts else 0.0
    return miou, recall


def score_sample(rec: dict) -> dict[str, float | None]:
    """Per-sample mIoU and recall at 0.3 and 0.5 (always scored; unparseable ⇒ 0).

    Args:
        rec: merged record.

    Returns:
        ``{"miou_0.3", "miou_0.5", "recall_0.3", "recall_0.5", "n_pred"}``.
    """
    fps = fps_of(rec)
    preds = [(float(a * fps), float(b * fps)) for a, b in parse(rec.get("answer", "") or "")]
    gts = [(float(a * fps), float(b * fps)) for a, b in gt_spans(rec)]
    out: dict[str, float | None] = {}
    for t in THRESHOLDS:
        out[f"miou_{t}"], out[f"recall_{t}"] = match(preds, gts, t)
    out["n_pred"] = float(len(preds))
    return out


def aggregate(recs: list[dict], samples: list[dict], mode: str = "leaderboard") -> dict[str, float | None]:
    """Official pooling of per-sample scores.

    Args:
        recs: the TAL records.
        samples: their ``score_sample`` dicts, aligned.
        mode: only "leaderboard".

    Returns:
        ``{"tag_miou_0.3", "tag_miou_0.5", "tag_recall_0.3", "tag_recall_0.5"}``; None if no record.
    """
    keys = ("miou_0.3", "miou_0.5", "recall_0.3", "recall_0.5")
    if not recs:
        return {f"tag_{k}": None for k in keys}
    groups: list[list[int]] = []
    for idx in group_in_order(temporal_dataset_key(r, "tal") for r in recs).values():
        by_fps = group_in_order(fps_of(recs[i]) for i in idx)
        groups.extend([idx[j] for j in sub] for sub in by_fps.values())
    return {f"tag_{k}": pooled_group_mean([(np_mean([samples[i][k] for i in g]), len(g)) for g in groups])
            for k in keys}


def reward(rec: dict) -> float | None:
    """Per-sample TAG reward: the mean over θ ∈ {0.3, 0.5} of the matched IoUs summed and divided
    by ``max(#predicted, #GT)`` segments; None without GT spans.

    The leaderboard's per-sample mIoU divides by the number of *matched* pairs, so answering one
    good segment of three, or many guesses, costs nothing; a reward with that property is gamed.
    Dividing by the larger count keeps a perfect answer at 1.0 and makes both omissions and
    spurious segments cost.

    >>> gt = {"struc_info": [{"action": "a", "spans": [{"start": 1.0, "end": 3.0}]}], "metadata": {"fps": "1.0"}}
    >>> reward({**gt, "answer": "1.0-3.0 seconds."}), reward({**gt, "answer": "1.0-3.0, 5.0-9.0 seconds."})
    (1.0, 0.5)
    >>> reward({**gt, "answer": "garbage"})
    0.0
    """
    fps = fps_of(rec)
    gts = [(float(a * fps), float(b * fps)) for a, b in gt_spans(rec)]
    if not gts:
        return None
    preds = [(float(a * fps), float(b * fps)) for a, b in parse(rec.get("answer", "") or "")]
    if not preds:
        return 0.0
    total = 0.0
    for t in THRESHOLDS:
        miou, recall = match(preds, gts, t)
        total += miou * recall * len(gts) / max(len(preds), len(gts))
    return total / len(THRESHOLDS)


def format_ok(text: str) -> bool:
    """Whether ``text`` is exactly the answer format (``"a-b, c-d seconds."``) with every ``a < b``.

    >>> format_ok("1.1-3.0, 5.0-7.5 seconds."), format_ok("from 1 to 3 s"), format_ok("3.0-1.0 seconds.")
    (True, False, False)
    """
    if not isinstance(text, str) or not _FORMAT.fullmatch(text):
        return False
    return all(a < b for a, b in parse(text))


class TAG(Task):
    """Temporal action grounding: find the segment(s) where an action happens."""

    name = "TAG"
    title = "Temporal action grounding"
    qa_types = ("tal",)
    prompt_file = "tasks/tag"
    metrics = (MetricSpec("tag_miou_0.3", "TAG@0.3"), MetricSpec("tag_miou_0.5", "TAG@0.5"),
               MetricSpec("tag_recall_0.3", "TAG recall@0.3", leaderboard=False),
               MetricSpec("tag_recall_0.5", "TAG recall@0.5", leaderboard=False))

    def format_answer(self, ground_truth: Any) -> str:
        """``[{"action", "spans": [{"start", "end"}]}]`` → ``"1.1-3.0, 5.0-7.5 seconds."``.

        >>> TAG().format_answer([{"action": "x", "spans": [{"start": 1.1, "end": 3}]}])
        '1.1-3.0 seconds.'
        """
        spans = sorted((s["start"], s["end"]) for item in ground_truth for s in item["spans"])
        return ", ".join(f"{fmt_time(a)}-{fmt_time(b)}" for a, b in spans) + " seconds."

    def parse(self, text: str) -> list[tuple[float, float]]:
        return parse(text)

    def ground_truth_problem(self, record: dict) -> str | None:
        """No list of ``{action, spans}`` items, no span, or a span without numeric start/end."""
        struc = record.get("struc_info")
        if not isinstance(struc, list):
            return f"struc_info must be a list of {{action, spans}} items, not {type(struc).__name__}"
        try:
            spans = gt_spans(record)
        except (KeyError, TypeError):
            return "a struc_info span is not an object with start and end"
        if not spans:
            return "struc_info holds no ground-truth spans"
        if not all(is_number(v) for span in spans for v in span):
            return "struc_info span start/end must be numbers"
        return None

    def score_sample(self, record: dict, context: Any = None) -> dict[str, float | None]:
        return score_sample(record)

    def counted(self, scores: dict) -> bool:
        """Every TAG sample enters the metric (an unparseable answer scores 0)."""
        return True

    def aggregate(self, records: list[dict], samples: list[dict], mode: str = "leaderboard") -> dict[str, float | None]:
        return aggregate(records, samples, mode)

    def sample_reward(self, record: dict, completion: str, context: Any = None) -> float | None:
        return reward(with_answer(record, completion))

    def format_ok(self, completion: str) -> bool:
        return format_ok(completion)
