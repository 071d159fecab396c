"""Small shared helpers for source readers: file reading with errors that name the file, box conversion."""

from __future__ import annotations

import bisect
import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from statistics import median
from typing import Any

from mvbench.builders.base import Box
from mvbench.dataset_io import load_json
from mvbench.errors import InputError

__all__ = ["cholec80_group", "load_json", "read_csv", "read_xlsx", "xywh_norm_to_xyxy", "xywh_to_xyxy", "xyxy_norm_to_xyxy",
           "require_file", "clip_box", "box_iou", "link_tracks", "KeySpacing", "key_spacing"]


CHOLEC80_VIDEOS = 80  # Cholec80 numbers videos 1-80; CholecT50's VID92+ are in-house recordings


def cholec80_group(number: int) -> str | None:
    """The cross-source split group of a Cholec80 surgery (``cholec80:05``), None outside 1-80.

    CholecT50 ``VIDnn``, CholecTrack20 ``VIDnn`` and Cholec80-CVS ``videoNN`` with the same number
    are the same surgery (see :mod:`mvbench.builders.splits`).

    >>> cholec80_group(5), cholec80_group(92)
    ('cholec80:05', None)
    """
    return f"cholec80:{number:02d}" if 1 <= number <= CHOLEC80_VIDEOS else None


def require_file(path: str | Path, what: str = "annotation file") -> Path:
    """Return ``path`` if it is a file, else raise InputError naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found", path)
    return path


def read_csv(path: str | Path, *, delimiter: str = ",", header: bool = True,
             expected: Sequence[str] | None = None) -> list[dict[str, str]] | list[list[str]]:
    """Read a CSV/TSV (CRLF tolerated). With ``header``, rows are dicts.

    Raises:
        InputError: missing file, undecodable text, or a header lacking ``expected`` columns.
    """
    path = require_file(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text: {e}", path) from None
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not header:
        return rows
    if not rows:
        raise InputError("empty file: no header row", path)
    head = [h.strip() for h in rows[0]]
    if expected:
        missing = [c for c in expected if c not in head]
        if missing:
            raise InputError(f"header lacks column(s) {missing}; found {head}", path, "row 1")
    return [dict(zip(head, (c.strip() for c in r))) for r in rows[1:]]


def read_xlsx(path: str | Path, sheet: str | None = None) -> list[list[Any]]:
    """All rows of one worksheet as lists of cell values (a malformed workbook raises InputError)."""
    import openpyxl

    path = require_file(path)
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises zipfile/KeyError/InvalidFileException on corrupt files
        raise InputError(f"not a readable .xlsx workbook: {type(e).__name__}: {e}", path) from None
    ws = wb[sheet] if sheet else wb.worksheets[0]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    wb.close()
    return rows


def xywh_to_xyxy(box: Sequence[float]) -> Box:
    """Pixel top-left x, y, w, h → pixel x1, y1, x2, y2.

    >>> xywh_to_xyxy([10, 20, 30, 40])
    (10.0, 20.0, 40.0, 60.0)
    """
    x, y, w, h = (float(v) for v in box)
    return (x, y, x + w, y + h)


def xywh_norm_to_xyxy(box: Sequence[float], width: int, height: int) -> Box:
    """Normalised top-left x, y, w, h → pixel x1, y1, x2, y2 on a ``width`` × ``height`` frame.

    >>> xywh_norm_to_xyxy([0.5, 0.5, 0.25, 0.5], 100, 200)
    (50.0, 100.0, 75.0, 200.0)
    """
    x, y, w, h = (float(v) for v in box)
    return (x * width, y * height, (x + w) * width, (y + h) * height)


def xyxy_norm_to_xyxy(box: Sequence[float], width: int, height: int) -> Box:
    """Normalised x1, y1, x2, y2 → pixels."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1 * width, y1 * height, x2 * width, y2 * height)


def clip_box(box: Box, width: int, height: int) -> Box:
    """Clamp a pixel box to the frame."""
    x1, y1, x2, y2 = box
    return (min(max(x1, 0.0), width), min(max(y1, 0.0), height),
            min(max(x2, 0.0), width), min(max(y2, 0.0), height))


def box_iou(a: Box, b: Box) -> float:
    """IoU of two pixel xyxy boxes.

    >>> box_iou((0, 0, 2, 2), (1, 0, 3, 2))
    0.3333333333333333
    """
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def link_tracks(observations: Iterable[tuple[int, Box]], max_gap: int, min_iou: float) -> list[dict[int, Box]]:
    """Link boxes of ONE category over frames into tracks (for sources without track ids).

    Rule: a track continues onto the next annotated frame if it lies at most ``max_gap`` frames
    after the track's last box. On that frame, (track, box) pairs are taken greedily by IoU with the
    track's last box, best first, if IoU ≥ ``min_iou``; a lone box after a lone track continues it
    whatever the IoU. Boxes left over start new tracks; tracks left over end.

    Args:
        observations: ``(frame index, pixel xyxy box)`` pairs, any order.
        max_gap: the largest frame step that keeps a track running (1 = consecutive frames only).
        min_iou: the IoU a box needs to continue a track when the frame holds several candidates.

    Returns:
        Tracks as ``{frame: box}`` dicts, ordered by first frame.

    >>> obs = [(1, (0, 0, 2, 2)), (2, (0, 0, 2, 2)), (2, (5, 5, 6, 6)), (4, (0, 0, 1, 1))]
    >>> [sorted(t) for t in link_tracks(obs, max_gap=1, min_iou=0.1)]
    [[1, 2], [2], [4]]
    """
    by_frame: dict[int, list[Box]] = defaultdict(list)
    for frame, box in observations:
        by_frame[frame].append(box)
    finished: list[dict[int, Box]] = []
    active: list[dict[int, Box]] = []
    prev: int | None = None
    for frame in sorted(by_frame):
        boxes = by_frame[frame]
        if prev is None or frame - prev > max_gap:
            finished += active
            active = []
        pairs = sorted(((-box_iou(track[max(track)], box), i, j)
                        for i, track in enumerate(active) for j, box in enumerate(boxes)))
        lone = len(active) == 1 and len(boxes) == 1
        taken_tracks: dict[int, int] = {}
        taken_boxes: set[int] = set()
        for neg_iou, i, j in pairs:
            if i in taken_tracks or j in taken_boxes or (-neg_iou < min_iou and not lone):
                continue
            taken_tracks[i] = j
            taken_boxes.add(j)
        next_active = []
        for i, track in enumerate(active):
            if i in taken_tracks:
                track[frame] = boxes[taken_tracks[i]]
                next_active.append(track)
            else:
                finished.append(track)
        next_active += [{frame: box} for j, box in enumerate(boxes) if j not in taken_boxes]
        active = next_active
        prev = frame
    finished += active
    return sorted(finished, key=lambda t: (min(t), tuple(t[min(t)])))


@dataclass(frozen=True)
class KeySpacing:
    """How far apart a video's labelled frames (label keys) are, and the gap bridged inside a run.

    Sparse releases label only some frames (the CholecT50 challenge set: a few hundred keys over a
    video of thousands of frames). A phase or other state persists between keys, so runs of one
    label are joined across gaps up to ``tolerance`` frames, and a run's last key stands for the
    time up to the next key (within ``tolerance``), else for one ``step``.

    Attributes:
        keys: number of labelled frames.
        first / last: the first and last labelled frame.
        step: the median step between consecutive keys, in frames (1 for dense labels).
        tolerance: the largest gap, in frames, inside one run.
    """

    keys: int
    first: int
    last: int
    step: float
    tolerance: int

    def run_end(self, last: int, sorted_keys: Sequence[int]) -> float:
        """Where a run whose last key is ``last`` ends (exclusive, frames): the next key if within
        ``tolerance``, else ``last + step``.

        >>> ks = key_spacing([0, 8, 16, 40], min_tolerance=1, factor=2.0)
        >>> ks.run_end(8, [0, 8, 16, 40]), ks.run_end(16, [0, 8, 16, 40])
        (16, 24)
        """
        pos = bisect.bisect_right(sorted_keys, last)
        if pos < len(sorted_keys) and sorted_keys[pos] - last <= self.tolerance:
            return sorted_keys[pos]
        return last + self.step

    def as_attrs(self, fps: float) -> dict[str, Any]:
        """The manifest's per-video report (``VideoMeta.attrs["label_keys"]``), times in seconds."""
        return {"keys": self.keys, "first_s": round(self.first / fps, 3), "last_s": round(self.last / fps, 3),
                "spacing_s": round(self.step / fps, 3), "merge_tolerance_s": round(self.tolerance / fps, 3)}


def key_spacing(keys: Iterable[int], min_tolerance: int, factor: float) -> KeySpacing:
    """The spacing of a video's label keys and the run tolerance derived from it.

    Args:
        keys: the labelled frame numbers (any order, duplicates ignored; at least one).
        min_tolerance: the tolerance for dense labels, in frames (a reader's fixed merge gap).
        factor: runs are joined across gaps up to ``factor`` median key steps.

    Returns:
        The :class:`KeySpacing`: ``tolerance = max(min_tolerance, ceil(factor * step))``.

    >>> key_spacing(range(10), min_tolerance=2, factor=2.0)
    KeySpacing(keys=10, first=0, last=9, step=1, tolerance=2)
    >>> key_spacing([16, 24, 29, 37, 47], min_tolerance=2, factor=2.0).tolerance  # median step 8
    16
    """
    ordered = sorted(set(keys))
    if not ordered:
        raise ValueError("no label keys")
    steps = [b - a for a, b in pairwise(ordered)]
    step = median(steps) if steps else 1
    step = int(step) if float(step).is_integer() else float(step)
    return KeySpacing(len(ordered), ordered[0], ordered[-1], step,
                      max(int(min_tolerance), math.ceil(factor * step - 1e-9)))
