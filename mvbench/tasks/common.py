"""Helpers shared by the task modules: fps, dataset grouping keys, numpy-exact means, answer integers.

The official evaluator (MedVidBench-Leaderboard ``evaluation/``) groups each task's records by a
task-specific dataset key and pools with ``np.mean``. Pooling order changes the last bits of a
float sum, so the helpers here keep first-appearance order and use ``np.mean`` where it does.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import numpy as np

from mvbench.errors import InputError


def fps_of(rec: dict) -> float:
    """The record's sampling fps as the official scorers read it.

    Args:
        rec: merged record.

    Returns:
        ``rec['fps']`` or ``metadata['fps']`` (default 1.0), as a float.

    Raises:
        InputError: the fps is not a number.
    """
    metadata = rec.get("metadata") or {}
    fps = rec.get("fps", metadata.get("fps", 1.0) if isinstance(metadata, dict) else 1.0)
    try:
        return float(fps)
    except (TypeError, ValueError):
        raise InputError(f"metadata.fps is not a number: {fps!r}") from None


def answer_int(digits: str) -> int | float:
    """The integer an answer's digit run spells; ``math.inf`` when Python refuses to convert it.

    ``int()`` refuses strings of more than ``sys.get_int_max_str_digits()`` digits (4300 by
    default; the conversion is quadratic, so the limit guards against denial of service). Such a
    number is larger than any score or time, so it stands as infinity instead of crashing the
    scorer. Leading zeros do not count towards the limit.

    Args:
        digits: a run of decimal digits, as a parser's ``\\d+`` group captured it.

    Returns:
        ``int(digits)``, or ``math.inf`` for a number beyond the conversion limit.

    >>> answer_int("0042"), answer_int("9" * 5000)
    (42, inf)
    """
    try:
        return int(digits.lstrip("0") or "0")
    except ValueError:  # beyond the int-conversion limit (digits are all decimal digits)
        return math.inf


def is_number(value: object) -> bool:
    """A real int or float (not a bool, not a numeric string).

    >>> is_number(1), is_number(2.5), is_number(True), is_number("3")
    (True, True, False, False)
    """
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def video_id_of(rec: dict) -> str:
    """``metadata.video_id`` as a string ('' if absent); the official SA/CVS grouping reads only this."""
    metadata = rec.get("metadata") or {}
    vid = metadata.get("video_id", "") if isinstance(metadata, dict) else ""
    return "" if vid is None else str(vid)


def _guess_from_video_id(video_id: str) -> str | None:
    # TAL/STG/DVC's shared fallback for records whose dataset is 'Unknown'.
    low = video_id.lower()
    if len(video_id) == 11 and any(c.isalpha() for c in video_id):
        return "AVOS"
    if "_part" in low:
        return "CoPESD"
    if "video" in low:
        return "CholecT50"
    return None


def temporal_dataset_key(rec: dict, task: str) -> Any:
    """Dataset key of TAL / STG / DVC grouping (eval_tal.py, eval_stg.py, eval_dvc.py).

    The ``data_source`` key wins even when it is None or ''; only the literal 'Unknown' falls back
    to the video-id guess. TAL reads only a top-level ``video_id``; STG and DVC also read metadata.

    Args:
        rec: merged record.
        task: 'tal', 'stg' or 'dvc'.

    Returns:
        The grouping key (usually the data_source string).
    """
    metadata = rec.get("metadata") or {}
    meta_ds = metadata.get("dataset", "Unknown") if isinstance(metadata, dict) else "Unknown"
    if task == "tal":
        dataset = rec.get("data_source", rec.get("dataset", rec.get("dataset_name", "Unknown")))
        video_id = rec.get("video_id", "")
    else:
        dataset = rec.get("data_source", rec.get("dataset", rec.get("dataset_name", meta_ds)))
        video_id = rec.get("video_id", metadata.get("video_id", "") if isinstance(metadata, dict) else "")
    if dataset == "Unknown" and video_id:
        dataset = _guess_from_video_id(str(video_id)) or dataset
    return dataset


def group_in_order(keys: Iterable[Any]) -> dict[Any, list[int]]:
    """Indices grouped by key, keys and indices in first-appearance order."""
    groups: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return groups


def np_mean(values: list[float]) -> float:
    """``np.mean`` as a Python float (numpy's pairwise summation, bit-identical to the official)."""
    return float(np.mean(np.asarray(values, dtype=np.float64)))


def pooled_group_mean(groups: list[tuple[float, int]]) -> float:
    """The official 'overall' pooling: each group's mean repeated ``count`` times, then np.mean.

    Args:
        groups: (group mean, group count) in pooling order.

    Returns:
        ``np.mean([m]*n for each group)``.
    """
    values: list[float] = []
    for mean, count in groups:
        values.extend([mean] * count)
    return np_mean(values)


def detect_dataset(video_id: str, question: str, own_video: Callable[[str], str | None],
                   own_question: Callable[[str], str | None]) -> str:
    """The official scorers' dataset detection for a record without ``data_source``.

    Each official scorer (SA, CVS) tries its own source first (``own_video`` on the lower-cased
    video id, ``own_question`` on the lower-cased question); the rest of the chain is shared.
    """
    vid = video_id.lower()
    found = own_video(vid)
    if found:
        return found
    if len(vid) == 11 and any(c.isalpha() for c in vid):
        return "AVOS"
    if "_part" in vid and vid.replace("_part", "").split("_")[0].isdigit():
        return "CoPESD"
    if "video" in vid and any(c.isdigit() for c in vid):
        return "CholecT50"
    if any(k in vid for k in ("nur", "nursing", "medical")):
        return "NurViD"
    q = question.lower()
    found = own_question(q)
    if found:
        return found
    for name, key in (("AVOS", "avos"), ("CoPESD", "copesd"), ("CholecT50", "cholect50"),
                      ("CholecT50", "cholec"), ("NurViD", "nurvid"), ("NurViD", "nursing")):
        if key in q:
            return name
    if any(a in q for a in ("cutting", "tying", "suturing")):
        return "AVOS"
    if "forceps" in q and "knife" in q:
        return "CoPESD"
    return "Unknown"


def dataset_grouper(own_video: Callable[[str], str | None],
                    own_question: Callable[[str], str | None]) -> Callable[[dict], str]:
    """The official ``group_records_by_dataset`` of a scorer (SA, CVS) with its own first checks.

    The returned function gives a record's ``data_source``, else the detection chain
    (:func:`detect_dataset`) on its ``metadata.video_id`` and question.
    """
    def group_of(rec: dict) -> str:
        dataset = rec.get("data_source", "Unknown")
        if dataset == "Unknown" or not dataset:
            dataset = detect_dataset(video_id_of(rec), str(rec.get("question", "") or ""), own_video, own_question)
        return dataset

    return group_of


def balanced_accuracy(samples: list[dict], prefix: str) -> float:
    """Mean over components (first-seen order) of per-component accuracy; 0.0 if none counted.

    SA pools its aspects (``aspect:<name>``) and CVS its criteria (``comp:<name>``) this way.
    """
    correct: dict[str, float] = {}
    total: dict[str, int] = {}
    for s in samples:
        for k, v in s.items():
            if k.startswith(prefix) and v is not None:
                total[k] = total.get(k, 0) + 1
                correct[k] = correct.get(k, 0.0) + v
    recalls = [correct[k] / total[k] for k in total]
    return np_mean(recalls) if recalls else 0.0
