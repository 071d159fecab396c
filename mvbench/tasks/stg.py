"""STG, spatio-temporal grounding (qa_type ``stg``): the object's box at regular times.

Prompt: ``prompts/tasks/stg.toml``. Answer: ``"1.0 seconds: [x1, y1, x2, y2] 5.0 seconds: [...]"``
(pixel xyxy, two decimals). Leaderboard metric: ``stg_miou``.

Official behaviour (evaluation/eval_stg.py, LB 6a68818), reproduced in ``mode="leaderboard"``:

- Boxes are read from ``<t> seconds: [x1, y1, x2, y2]``; the whitespace before ``seconds:`` is
  required. Each box must split on commas into exactly 4 ``float()``-able parts (so "nan" and
  "inf" are accepted, as in the official); a malformed box copies the last valid one, or is
  dropped if there is none yet. Keys are ``str(float(t))``.
- Only if no ``seconds:`` entry matched at all: integer-only ``[[a, b, c, d]]`` boxes, assigned to
  the GT keys in order (under the raw GT key).
- For each GT key (``struc_info[0]['bbox_dict']``, in order) the prediction is looked up under
  ``f"{float(k):.1f}"``. A missing box or [0,0,0,0] takes the previous predicted box (after the
  first key); a first missing box stays [0,0,0,0] and scores IoU 0.
- IoU = inter / max(union, 1e-6); the sample score is np.mean over keys. A sample with no GT
  boxes is excluded (None). Pooling: per-dataset np.mean, each repeated by its count, np.mean.

Differences from the official: a ``struc_info`` item without ``bbox_dict`` whose keys are not
numbers makes the official STG evaluation crash (no STG metric); here ``mvbench score`` names the
record as invalid (:meth:`STG.ground_truth_problem`; ``--skip-invalid`` leaves it out), and
:func:`score_sample` alone excludes it (None).
Only ``mode="leaderboard"`` exists.

Deliberate deviation: boxes are float64. The official builds int64 arrays from integer boxes, so
coordinates beyond ~3e9 overflow and its IoU can leave [0, 1]; no real answer comes near that.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from mvbench.tasks.base import MetricSpec, Task, fmt_num, fmt_time, with_answer
from mvbench.tasks.common import group_in_order, np_mean, pooled_group_mean, temporal_dataset_key

# The official patterns, made linear-time without changing a match (see tag.py; tests hold them to a
# frozen copy of the originals): no match starts inside a run of digits, quantifiers are possessive.
# A timed box ends at the first "]" after its "[", so parse() searches only up to the last "]": past
# it no box can close, and every attempt would otherwise scan to the end of the text.
_TIMED = re.compile(r"(?<!\d)(\d++(?:\.\d++)?+)\s++seconds:\s*+\[([^\]]++)\]")
_RAW = re.compile(r"\[\[([\d\s,]++)\]\]")
_NUM = r"\d+(?:\.\d+)?"
_BOX = rf"{_NUM}\s+seconds:\s*\[\s*{_NUM}(?:\s*,\s*{_NUM}){{3}}\s*\]"
_FORMAT = re.compile(rf"\s*{_BOX}(?:\s+{_BOX})*\s*")

Box = list[float]


def parse(text: str) -> dict[str, Box] | list[list[int]]:
    """Timed boxes as ``{str(float(t)): box}``, else (only if no timed entry matched) the list of
    integer ``[[…]]`` boxes; ``{}``/``[]`` when nothing parses.

    >>> parse("1.0 seconds: [235.08, 261.2, 561.58, 1005.62] 5 seconds: [1, 2, 3]")
    {'1.0': [235.08, 261.2, 561.58, 1005.62], '5.0': [235.08, 261.2, 561.58, 1005.62]}
    >>> parse("[[10, 20, 30, 40]]")
    [[10, 20, 30, 40]]
    >>> parse("1.0seconds: [1, 2, 3, 4]")
    []
    """
    if not isinstance(text, str):
        return []
    matches = _TIMED.findall(text, 0, text.rfind("]") + 1)
    if not matches:
        boxes: list[list[int]] = []
        for body in _RAW.findall(text):
            try:
                box = [int(x.strip()) for x in body.split(",")]
            except ValueError:
                continue
            if len(box) == 4:
                boxes.append(box)
        return boxes
    parsed: dict[str, Box] = {}
    last: Box | None = None
    for t, body in matches:
        try:
            nums = [float(part.strip().lstrip("[").rstrip("]")) for part in body.split(",")]
            if len(nums) != 4:
                raise ValueError("box needs 4 values")
        except ValueError:
            if last is not None:
                parsed[str(float(t))] = last
            continue
        parsed[str(float(t))] = nums
        last = nums
    return parsed


def format_ok(text: str) -> bool:
    """Whether ``text`` is exactly the answer format (``"t seconds: [x1, y1, x2, y2] ..."``), each
    box with ``x1 < x2`` and ``y1 < y2``, each time given once.

    >>> format_ok("1.0 seconds: [1, 2, 3, 4] 5.0 seconds: [1.5, 2, 3, 4]"), format_ok("[[1, 2, 3, 4]]")
    (True, False)
    >>> format_ok("1.0 seconds: [3, 2, 1, 4]")
    False
    """
    if not isinstance(text, str) or not _FORMAT.fullmatch(text):
        return False
    matches = _TIMED.findall(text)
    boxes = [[float(v) for v in body.split(",")] for _, body in matches]
    times = [float(t) for t, _ in matches]
    return len(set(times)) == len(times) and all(b[0] < b[2] and b[1] < b[3] for b in boxes)


def gt_boxes(rec: dict) -> dict:
    """The GT ``bbox_dict`` (time key → box) as the official scorer locates it; {} if none."""
    struc = rec.get("struc_info", {})
    if isinstance(struc, list) and struc:
        item = struc[0]
        if isinstance(item, dict) and "bbox_dict" in item:
            return item["bbox_dict"] or {}
        return item if isinstance(item, dict) else {}
    if isinstance(struc, dict):
        return struc.get("bbox_dict", struc) or {}
    return {}


def _valid(box: object) -> bool:
    return isinstance(box, list) and len(box) == 4 and all(isinstance(x, (int, float)) for x in box)


def _key(k: object) -> str | None:
    try:
        return f"{float(k):.1f}"
    except (TypeError, ValueError):
        return None


def score_sample(rec: dict) -> dict[str, float | None]:
    """Per-sample mean IoU over the GT keys (None = excluded: no usable GT box).

    Args:
        rec: merged record.

    Returns:
        ``{"miou", "n_keys", "n_pred"}``.
    """
    pred = parse(rec.get("answer", "") or "")
    gt = gt_boxes(rec)
    n_pred = float(len(pred))
    keys = list(gt.keys())
    if any(_key(k) is None for k in keys):
        return {"miou": None, "n_keys": float(len(keys)), "n_pred": n_pred}
    if isinstance(pred, list):
        pred = {k: box for k, box in zip(keys[:len(pred)], pred)}
    pred_boxes: list = []
    gt_list: list = []
    for i, k in enumerate(keys):
        gt_list.append(gt[k])
        box = pred.get(_key(k), [0, 0, 0, 0])
        if box == [0, 0, 0, 0] and i > 0:
            box = pred_boxes[i - 1]
        pred_boxes.append(box)
    pairs = [(p, g) for p, g in zip(pred_boxes, gt_list) if _valid(p) and _valid(g)]
    if not pairs:
        return {"miou": None, "n_keys": float(len(keys)), "n_pred": n_pred}
    p = np.array([[float(v) for v in pb] for pb, _ in pairs], dtype=np.float64)
    g = np.array([[float(v) for v in gb] for _, gb in pairs], dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        iw = np.clip(np.minimum(p[:, 2], g[:, 2]) - np.maximum(p[:, 0], g[:, 0]), 0, None)
        ih = np.clip(np.minimum(p[:, 3], g[:, 3]) - np.maximum(p[:, 1], g[:, 1]), 0, None)
        inter = iw * ih
        union = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1]) + (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1]) - inter
        iou = inter / np.clip(union, 1e-6, None)
        miou = float(iou.mean())
    return {"miou": miou, "n_keys": float(len(keys)), "n_pred": n_pred}


def aggregate(recs: list[dict], samples: list[dict], mode: str = "leaderboard") -> dict[str, float | None]:
    """Official pooling: counted samples only, per-dataset means weighted by counted samples.

    Args:
        recs: the STG records.
        samples: their ``score_sample`` dicts, aligned.
        mode: only "leaderboard".

    Returns:
        ``{"stg_miou"}``: None without records, 0.0 if no sample was counted.
    """
    if not recs:
        return {"stg_miou": None}
    groups = []
    for idx in group_in_order(temporal_dataset_key(r, "stg") for r in recs).values():
        vals = [samples[i]["miou"] for i in idx if samples[i]["miou"] is not None]
        if vals:
            groups.append((np_mean(vals), len(vals)))
    return {"stg_miou": pooled_group_mean(groups) if groups else 0.0}


class STG(Task):
    """Spatio-temporal grounding: the object's box at regular times."""

    name = "STG"
    title = "Spatio-temporal grounding"
    qa_types = ("stg",)
    prompt_file = "tasks/stg"
    metrics = (MetricSpec("stg_miou", "STG"),)

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

    def parse(self, text: str) -> dict[str, Box] | list[list[int]]:
        return parse(text)

    def ground_truth_problem(self, record: dict) -> str | None:
        """No ``bbox_dict``, keys that are not times, or no valid ``[x1, y1, x2, y2]`` box."""
        gt = gt_boxes(record)
        if not isinstance(gt, dict) or not gt:
            return "struc_info holds no ground-truth boxes (struc_info[0].bbox_dict)"
        bad_keys = [k for k in gt if _key(k) is None]
        if bad_keys:
            return f"bbox_dict keys must be times in seconds, not {bad_keys[:3]}"
        if not any(_valid(box) for box in gt.values()):
            return "bbox_dict holds no valid [x1, y1, x2, y2] box"
        return None

    def score_sample(self, record: dict, context: Any = None) -> dict[str, float | None]:
        return score_sample(record)

    def counted(self, scores: dict) -> bool:
        """Counted when the ground truth has usable boxes."""
        return scores.get("miou") is not None

    def aggregate(self, records: list[dict], samples: list[dict], mode: str = "leaderboard") -> dict[str, float | None]:
        return aggregate(records, samples, mode)

    def sample_reward(self, record: dict, completion: str, context: Any = None) -> float | None:
        """The leaderboard's per-sample box mIoU (an unparseable answer scores 0); None without GT boxes.

        >>> gt = {"struc_info": [{"bbox_dict": {"1.0": [0, 0, 10, 10]}}]}
        >>> STG().reward(gt, "1.0 seconds: [0, 0, 10, 10]"), STG().reward(gt, "no idea")
        (1.0, 0.0)
        """
        miou = score_sample(with_answer(record, completion))["miou"]
        return miou if miou is None or math.isfinite(miou) else 0.0  # "nan" boxes parse, as upstream

    def format_ok(self, completion: str) -> bool:
        return format_ok(completion)
