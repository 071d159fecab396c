"""Small shared helpers for source readers: file reading with errors that name the file, box conversion."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mvbench.builders.base import Box
from mvbench.dataset_io import load_json
from mvbench.errors import InputError

__all__ = ["load_json", "read_csv", "read_xlsx", "xywh_norm_to_xyxy", "xywh_to_xyxy", "xyxy_norm_to_xyxy",
           "require_file", "clip_box"]


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
