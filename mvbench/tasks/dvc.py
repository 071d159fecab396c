"""DVC, dense video captioning (qa_types ``dense_captioning_gpt`` / ``dense_captioning_gemini``).

The model lists the events of a clip with start/end times and a caption. Prompt:
``prompts/tasks/dvc.toml``. Answer: one line per event, ``"a-b seconds: <label>: <caption>"``.
Leaderboard metrics: ``dvc_f1`` (temporal) and ``dvc_llm`` (the caption judge on matched pairs).

Official behaviour (evaluation/eval_dvc.py, LB 6a68818), ``mode="leaderboard"``:

- Parse ``a-b seconds: caption`` entries (no spaces around ``-``; a new entry starts only after a
  newline); duplicate (start, end) pairs are dropped. Only if none: a loose per-line
  ``a - b seconds … - caption`` fallback.
- **F1**: if any two parsed segments overlap they are flattened (split at every boundary, keeping
  the longest covering caption). Times become ``int(t·fps)``. GT = ``struc_info[0]`` if it is a
  list, else ``struc_info[0]['dc_segments']``, else ``struc_info``; items need start, end and
  caption. For tIoU 0.3/0.5/0.7 (strict >) a segment is covered if any pair passes; union =
  min(hull, sum of lengths); P and R are averaged over thresholds; F1 = 2PR/(P+R). Samples
  without a parsed prediction or GT are excluded from the source mean (None) but count in its
  weight: the per-source means are weighted by the source's total DVC record count.
- **LLM**: unflattened segments in seconds; for each threshold every predicted segment takes the
  GT with the best IoU ≥ thr (first on ties) and that (prediction, GT) caption pair is judged.
  Per source: per threshold the per-aspect means over successful calls, averaged over aspects
  with mean > 0; then the mean over thresholds > 0 (0.0 if none). Sources weighted as for F1.

Differences from the official: timestamps too large for a float (``inf``) make the official DVC
evaluation crash; here such segments are dropped. Only ``mode="leaderboard"`` exists.
"""

from __future__ import annotations

import heapq
import math
import re
from typing import Any

from mvbench.tasks.base import MetricSpec, Task, fmt_time, with_answer
from mvbench.tasks.captions import ASPECTS, pair
from mvbench.tasks.common import fps_of, group_in_order, is_number, np_mean, temporal_dataset_key

F1_THRESHOLDS = (0.3, 0.5, 0.7)
LLM_THRESHOLDS = (0.3, 0.5, 0.7)

# The official patterns, made linear-time without changing a match (see tag.py; tests hold them to a
# frozen copy of the originals): no entry starts inside a run of digits, quantifiers are possessive.
_ENTRY = re.compile(r"(?<!\d)(\d++(?:\.\d++)?+)-(\d++(?:\.\d++)?+)\s++seconds?:\s+(.*?)"
                    r"(?=\n\d++(?:\.\d++)?+-\d++(?:\.\d++)?+\s++seconds?:|\Z)", re.DOTALL)
# The official fallback, applied per line, is "<head> … <delimiter> <caption to the end of the line>":
_LOOSE_START = r"(?:\*\*Start Time:\*\*|Start\s*\(?Time\)?|Time\s*Range:|Time\s*Interval:|^|\n)"
_LOOSE = re.compile(_LOOSE_START + r"\s*(\d+\.?\d*)\s*[-–]\s*(\d+\.?\d*)\s*seconds?.*?(?:\*\*Description:\*\*|-)"
                    r"\s*(.+?)(?=\n\d|$)", re.DOTALL)
# Its head alone, possessive (only the longest number can be followed by the next token).
_LOOSE_HEAD = re.compile(_LOOSE_START + r"\s*+(\d++\.?+\d*+)\s*+[-–]\s*+(\d++\.?+\d*+)\s*+seconds?", re.DOTALL)
# Where an attempt can start: the head's first token.
_LOOSE_CANDIDATES = re.compile(r"(?=\*\*Start Time:\*\*|Start|Time)")
_DESCRIPTION = "**Description:**"


def _loose_line(line: str) -> list[tuple[str, str, str]]:
    """``_LOOSE.findall(line)`` for one line (no newline), in linear time.

    The caption runs to the end of the line, so a line holds at most one match: the first start
    whose head is followed, anywhere later, by a delimiter with at least one character after it.
    An attempt whose head ends past the last such delimiter fails after scanning the rest of the
    line, which makes the plain findall quadratic; it is skipped here instead.
    """
    last = max(line.rfind("-", 0, len(line) - 1), line.rfind(_DESCRIPTION, 0, len(line) - 1))
    if last < 0:
        return []
    starts = [0] + [m.start() for m in _LOOSE_CANDIDATES.finditer(line) if m.start() > 0]
    for start in starts:
        head = _LOOSE_HEAD.match(line, start)
        if head is not None and head.end() <= last:
            match = _LOOSE.match(line, start)
            if match is not None:
                return [match.groups()]
    return []

Segment = dict  # {"start": float, "end": float, "caption": str}
_FORMAT_LINE = re.compile(r"\d+(?:\.\d+)?-\d+(?:\.\d+)?\s+seconds:\s+\S.*")


def parse(text: str) -> list[Segment]:
    """Segments ``{"start", "end", "caption"}`` in seconds, unflattened; [] if none.

    >>> parse("1.0-29.0 seconds: check: The nurse reviews the chart.\\n30.0-40.5 seconds: Document")
    [{'start': 1.0, 'end': 29.0, 'caption': 'check: The nurse reviews the chart.'}, {'start': 30.0, 'end': 40.5, 'caption': 'Document'}]
    >>> parse("Time Range: 3 - 9 seconds - suturing the wound.")
    [{'start': 3.0, 'end': 9.0, 'caption': 'suturing the wound'}]
    """
    if not isinstance(text, str):
        return []
    segments: list[Segment] = []
    seen: set[tuple[float, float]] = set()
    for a, b, desc in _ENTRY.findall(text):
        key = (float(a), float(b))
        if key not in seen:
            seen.add(key)
            segments.append({"start": key[0], "end": key[1], "caption": desc.strip().replace("\n", " ")})
    if segments:
        return segments
    for line in text.strip().split("\n"):
        for a, b, caption in _loose_line(line):
            segments.append({"start": float(a), "end": float(b), "caption": caption.strip().rstrip(".")})
    return segments


def flatten(segments: list[Segment]) -> list[Segment]:
    """Split overlapping segments at every boundary, keeping the longest covering caption.

    Returns the input unchanged when no two segments (sorted by start, end) overlap.
    """
    ordered = sorted(segments, key=lambda s: (s["start"], s["end"]))
    if not any(ordered[i + 1]["start"] < ordered[i]["end"] for i in range(len(ordered) - 1)):
        return segments
    points = sorted({s["start"] for s in segments} | {s["end"] for s in segments})
    # The official loop takes, for each pair of consecutive points (a, b), the longest segment with
    # start < b and end > a (the first such in answer order on ties). As every start and end is a
    # point, that is start <= a and end >= b. One sweep over the points with a heap of the segments
    # begun so far, ordered by (longest, first), finds it in O(n log n) instead of O(n^2); segments
    # that ended are dropped from the top lazily (once ended, a segment covers no later interval).
    by_start: dict[float, list[int]] = {}
    for i, seg in enumerate(segments):
        by_start.setdefault(seg["start"], []).append(i)
    heap: list[tuple[float, int]] = []
    out: list[Segment] = []
    for start, end in zip(points, points[1:]):
        for i in by_start.get(start, ()):
            heapq.heappush(heap, (-(segments[i]["end"] - segments[i]["start"]), i))
        while heap and not segments[heap[0][1]]["end"] >= end:
            heapq.heappop(heap)
        if heap:
            out.append({"start": start, "end": end, "caption": segments[heap[0][1]]["caption"]})
    return out


def gt_segments(rec: dict) -> list[dict]:
    """GT segments (items with start, end and caption), located as the official scorer does."""
    struc = rec.get("struc_info", [])
    if isinstance(struc, list) and struc:
        if isinstance(struc[0], list):
            gnd = struc[0]
        elif isinstance(struc[0], dict) and "dc_segments" in struc[0]:
            gnd = struc[0]["dc_segments"]
        else:
            gnd = struc
    else:
        gnd = struc
    if not isinstance(gnd, list):
        return []
    return [g for g in gnd if isinstance(g, dict) and "start" in g and "end" in g and "caption" in g]


def _to_frames(t: float, fps: float) -> int | None:
    v = t * fps
    return int(v) if math.isfinite(v) else None


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    s1, e1 = min(a), max(a)
    s2, e2 = min(b), max(b)
    inter = max(0, min(e1, e2) - max(s1, s2))
    union = min(max(e1, e2) - min(s1, s2), e1 - s1 + e2 - s2)
    return float(inter) / (union + 1e-8)


def temporal_prf(pred: list[tuple[int, int]], gt: list[tuple[int, int]]) -> tuple[float, float, float]:
    """Many-to-many temporal precision, recall and F1 averaged over tIoU 0.3/0.5/0.7 (strict >).

    Args:
        pred: predicted segments in frames (non-empty).
        gt: GT segments in frames (non-empty).

    Returns:
        (mean precision, mean recall, F1).
    """
    pred_cov = {t: set() for t in F1_THRESHOLDS}
    gt_cov = {t: set() for t in F1_THRESHOLDS}
    for ig, g in enumerate(gt):
        for ip, p in enumerate(pred):
            v = _iou(p, g)
            for t in F1_THRESHOLDS:
                if v > t:
                    pred_cov[t].add(ip)
                    gt_cov[t].add(ig)
    precision = [len(pred_cov[t]) / max(float(len(pred)), 1.0) for t in F1_THRESHOLDS]
    recall = [len(gt_cov[t]) / float(len(gt)) for t in F1_THRESHOLDS]
    mp = sum(precision) / len(precision)
    mr = sum(recall) / len(recall)
    f1 = 2 * mr * mp / (mr + mp) if (mr + mp) > 0 else 0.0
    return mp, mr, f1


def score_sample(rec: dict) -> dict[str, float | None]:
    """Per-sample temporal precision / recall / F1 (None = excluded: no parsed prediction or GT).

    Args:
        rec: merged record.

    Returns:
        ``{"f1", "precision", "recall", "n_pred"}``.
    """
    fps = fps_of(rec)
    parsed = flatten(parse(rec.get("answer", "") or ""))
    gt = []
    for g in gt_segments(rec):
        s, e = _to_frames(float(g["start"]), fps), _to_frames(float(g["end"]), fps)
        if s is not None and e is not None:
            gt.append((s, e))
    pred = []
    for p in parsed:
        s, e = _to_frames(p["start"], fps), _to_frames(p["end"], fps)
        if s is not None and e is not None:
            pred.append((s, e))
    out: dict[str, float | None] = {"f1": None, "precision": None, "recall": None, "n_pred": float(len(parsed))}
    if pred and gt:
        out["precision"], out["recall"], out["f1"] = temporal_prf(pred, gt)
    return out


def _seg_iou(a: dict, b: dict) -> float:
    inter = max(0, min(a["end"], b["end"]) - max(a["start"], b["start"]))
    union = (a["end"] - a["start"]) + (b["end"] - b["start"]) - inter
    return inter / union if union > 0 else 0.0


def judge_pairs(rec: dict) -> dict[float, list[tuple[str, str]]]:
    """(predicted caption, GT caption) pairs to judge at each tIoU threshold (≥, best GT per prediction).

    Args:
        rec: merged record.

    Returns:
        threshold → pairs; {} if the record has no parsed prediction or no GT (no judge calls).
    """
    pred = parse(rec.get("answer", "") or "")
    gts = gt_segments(rec)
    if not pred or not gts:
        return {}
    out: dict[float, list[tuple[str, str]]] = {}
    for t in LLM_THRESHOLDS:
        pairs = []
        for p in pred:
            best, caption = 0.0, None
            for g in gts:
                v = _seg_iou(p, g)
                if v >= t and v > best:
                    best, caption = v, g["caption"]
            if caption is not None:
                pairs.append((p["caption"], caption))
        out[t] = pairs
    return out


def caption_score(samples: list[dict]) -> float:
    """A source's judge score from per-sample judge sums (see ``score.py``): per threshold the
    per-aspect means, averaged over aspects > 0, then the mean over thresholds > 0 (0.0 if none)."""
    per_t = []
    for t in LLM_THRESHOLDS:
        n = sum(s.get(f"judge_{t}_n") or 0 for s in samples)
        means = [sum(s.get(f"judge_{t}_{a}_sum") or 0 for s in samples) / n if n else 0.0 for a in ASPECTS]
        valid = [m for m in means if m > 0]
        per_t.append(np_mean(valid) if valid else 0.0)
    valid_t = [v for v in per_t if v > 0]
    return np_mean(valid_t) if valid_t else 0.0


def aggregate(recs: list[dict], samples: list[dict], mode: str = "leaderboard") -> dict[str, float | None]:
    """Per-source means weighted by each source's total DVC record count.

    Args:
        recs: the DVC records.
        samples: their per-sample dicts (``score_sample`` plus, when judged, ``judge_*`` sums and
            ``semantic_sim``), aligned.
        mode: only "leaderboard".

    Returns:
        ``{"dvc_f1", "dvc_precision", "dvc_recall", "dvc_llm", "dvc_semantic_sim"}``; the judge
        and similarity values are None when no sample carries them.
    """
    names = ("dvc_f1", "dvc_precision", "dvc_recall", "dvc_llm", "dvc_semantic_sim")
    if not recs:
        return {k: None for k in names}
    judged = any("judge_0.3_n" in s for s in samples)
    with_sim = any("semantic_sim" in s for s in samples)
    totals = dict.fromkeys(names, 0.0)
    count = 0
    for idx in group_in_order(temporal_dataset_key(r, "dvc") for r in recs).values():
        group = [samples[i] for i in idx]
        n = len(idx)
        for key, name in (("f1", "dvc_f1"), ("precision", "dvc_precision"), ("recall", "dvc_recall")):
            vals = [s[key] for s in group if s[key] is not None]
            totals[name] += (np_mean(vals) if vals else 0.0) * n
        if judged:
            totals["dvc_llm"] += caption_score(group) * n
        if with_sim:
            sims = [s["semantic_sim"] for s in group if s.get("semantic_sim") is not None]
            totals["dvc_semantic_sim"] += (np_mean(sims) if sims else 0.0) * n
        count += n
    out = {k: v / count for k, v in totals.items()}
    if not judged:
        out["dvc_llm"] = None
    if not with_sim:
        out["dvc_semantic_sim"] = None
    return out


class DVC(Task):
    """Dense video captioning: list events with start/end and a caption."""

    name = "DVC"
    title = "Dense video captioning"
    qa_types = ("dense_captioning_gpt", "dense_captioning_gemini", "dense_captioning")
    prompt_file = "tasks/dvc"
    metrics = (MetricSpec("dvc_f1", "DVC F1"), MetricSpec("dvc_llm", "DVC llm", scale="1-5", judge=True),
               MetricSpec("dvc_precision", "DVC precision", leaderboard=False),
               MetricSpec("dvc_recall", "DVC recall", leaderboard=False),
               MetricSpec("dvc_semantic_sim", "DVC MiniLM", leaderboard=False))
    free_text = True

    def format_answer(self, ground_truth: Any) -> str:
        """Segments → one line each, ``"a-b seconds: caption"``.

        >>> print(DVC().format_answer([[{"start": 0, "end": 5, "caption": "check: a nurse checks."}]]))
        0.0-5.0 seconds: check: a nurse checks.
        """
        return "\n".join(f"{fmt_time(s['start'])}-{fmt_time(s['end'])} seconds: {s['caption']}"
                         for s in gt_segments({"struc_info": ground_truth}))

    def parse(self, text: str) -> list[Segment]:
        return parse(text)

    def ground_truth_problem(self, record: dict) -> str | None:
        """No segment with start, end and caption, or a non-numeric start/end."""
        segments = gt_segments(record)
        if not segments:
            return "struc_info holds no ground-truth segments with start, end and caption"
        if not all(is_number(s["start"]) and is_number(s["end"]) for s in segments):
            return "struc_info segment start/end must be numbers"
        return None

    def score_sample(self, record: dict, context: Any = None) -> dict[str, float | None]:
        return score_sample(record)

    def counted(self, scores: dict) -> bool:
        """Counted when both a prediction and the ground truth parse into segments."""
        return scores.get("f1") is not None

    def aggregate(self, records: list[dict], samples: list[dict], mode: str = "leaderboard") -> dict[str, float | None]:
        return aggregate(records, samples, mode)

    def judge_items(self, record: dict) -> list[tuple[Any, str, str]]:
        return [(t, p, g) for t, pairs in judge_pairs(record).items() for p, g in pairs]

    def init_judge_scores(self, scores: dict) -> None:
        for t in LLM_THRESHOLDS:
            scores[f"judge_{t}_n"] = 0.0
            scores[f"judge_{t}_failed"] = 0.0
            for a in ASPECTS:
                scores[f"judge_{t}_{a}_sum"] = 0.0

    def add_judge_result(self, scores: dict, tag: Any, result: dict[str, int] | None) -> None:
        if result is None:
            scores[f"judge_{tag}_failed"] += 1
            return
        scores[f"judge_{tag}_n"] += 1
        for a in ASPECTS:
            scores[f"judge_{tag}_{a}_sum"] += result[a]

    def similarity_pair(self, record: dict) -> tuple[str, str] | None:
        return pair(record)

    def sample_reward(self, record: dict, completion: str, context: Any = None) -> float | None:
        """The per-sample temporal F1 (0 when no segment parses); None without GT segments.

        >>> gt = {"struc_info": [[{"start": 0.0, "end": 10.0, "caption": "a"}]], "metadata": {"fps": "1.0"}}
        >>> DVC().reward(gt, "0.0-10.0 seconds: a"), DVC().reward(gt, "nothing")
        (1.0, 0.0)
        """
        if not gt_segments(record):
            return None
        f1 = score_sample(with_answer(record, completion))["f1"]
        return 0.0 if f1 is None else f1

    def format_ok(self, completion: str) -> bool:
        """Every non-empty line is ``a-b seconds: caption`` with ``a < b``.

        >>> DVC().format_ok("0.0-5.0 seconds: check: a nurse checks.\\n5.0-9.0 seconds: wash"), DVC().format_ok("5-1 seconds: x")
        (True, False)
        """
        if not isinstance(completion, str):
            return False
        lines = [line.strip() for line in completion.strip().splitlines() if line.strip()]
        if not lines or not all(_FORMAT_LINE.fullmatch(line) for line in lines):
            return False
        return all(s["start"] < s["end"] for s in parse(completion))
