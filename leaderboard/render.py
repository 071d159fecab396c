"""Render a leaderboard as Markdown, CSV, HTML or JSON.

Every format carries the same caveats: Markdown as notes under the tables, CSV in a ``caveats``
column (one row per model, missing values left empty), JSON as fields, HTML as visible flags (see
:mod:`mvbench.leaderboard.page`). Paper rows are a separate table with their own ranks.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from mvbench.dataset_io import atomic_write_bytes
from mvbench.leaderboard.board import Board
from mvbench.leaderboard.ranking import Entry, displayed
from mvbench.tasks import LEADERBOARD_KEYS, METRICS, TASKS

HEADERS = {k: METRICS[k].title for k in LEADERBOARD_KEYS}
OUT_FILES = {"html": "leaderboard.html", "md": "leaderboard.md", "csv": "leaderboard.csv", "json": "leaderboard.json"}
TASK_KEYS = tuple(task.key for _, task in TASKS.items())


def as_board(board: Board | list[Entry]) -> Board:
    """A board from a ranked list of entries (paper rows go to their own table)."""
    if isinstance(board, Board):
        return board
    return Board([e for e in board if not e.is_paper], [e for e in board if e.is_paper])


def _cell(v: float | None) -> str:
    d = displayed(v)
    return "—" if d is None else f"{d:.3f}"


def _interval(e: Entry, key: str, digits: int = 2) -> str:
    """``[0.10, 0.24]``; ``n/a`` when a run has intervals but not for this metric; '' when none."""
    if not e.intervals or e.metrics.get(key) is None:
        return ""
    ci = e.intervals.get(key)
    return "n/a" if ci is None else f"[{ci['low']:.{digits}f}, {ci['high']:.{digits}f}]"


def caveat_text(e: Entry) -> str:
    """The row's caveats on one line."""
    return "; ".join(text for _, text in e.flags)


def _rows(entries: list[Entry]) -> list[list[str]]:
    """``#, model, mean rank`` and the ten displayed values (the terminal table)."""
    return [[str(i + 1), e.name, f"{e.mean_rank:.2f}", *(_cell(e.metrics.get(k)) for k in LEADERBOARD_KEYS)]
            for i, e in enumerate(entries)]


def header() -> list[str]:
    """Column titles of the value table."""
    return ["#", "model", "mean rank", *(HEADERS[k] for k in LEADERBOARD_KEYS)]


def _short_flags(e: Entry) -> str:
    return ", ".join(code for code, _ in e.flags)


def _md_table(entries: list[Entry]) -> list[str]:
    lines = ["| " + " | ".join([*header(), "caveats"]) + " |", "|" + "---|" * (len(header()) + 1)]
    for row, e in zip(_rows(entries), entries):
        cells = row[:3] + [f"{v} {_interval(e, k)}".strip() for v, k in zip(row[3:], LEADERBOARD_KEYS)]
        lines.append("| " + " | ".join([*cells, _short_flags(e)]) + " |")
    return lines


def notes_lines(board: Board) -> list[str]:
    """Board-wide notes: caveats with the rows they concern, the interval method, loading notes."""
    lines = [f"- **{code}** ({', '.join(names)}): {text}" for code, text, names in board.caveats()]
    note = board.interval_note()
    if note:
        lines.append(f"- {note}")
    lines += [f"- {n}" for n in board.notes]
    return lines


def to_markdown(board: Board | list[Entry]) -> str:
    """GitHub-style Markdown: the runs table (values with 95% intervals), notes, then the paper rows."""
    board = as_board(board)
    lines: list[str] = []
    first = board.runs or board.paper
    lines += _md_table(first)
    if board.runs and board.paper:
        lines += ["", "### Reported in the paper (not reproduced; ranked separately)", ""]
        lines += _md_table(board.paper)
    counts = _md_counts(board.runs)
    if counts:
        lines += ["", "Samples scored / records per task:", "", *counts]
    if board.comparisons:
        lines += ["", "Paired differences (row A − row B, 95% interval; * = interval excludes 0):", "",
                  *_md_comparisons(board)]
    notes = notes_lines(board)
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines) + "\n"


def _md_counts(runs: list[Entry]) -> list[str]:
    runs = [e for e in runs if e.counts]
    if not runs:
        return []
    names = [TASKS.get(k.upper()).name for k in TASK_KEYS]
    lines = ["| model | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for e in runs:
        cells = [f"{c.get('scored', '?')}/{c['records']}" if (c := e.counts.get(k)) else "—" for k in TASK_KEYS]
        lines.append(f"| {e.name} | " + " | ".join(cells) + " |")
    return lines


def diff_text(d: dict | None, digits: int = 3) -> str:
    """``+0.120 [0.050, 0.190]*`` (``*``: the interval excludes 0), ``—`` when missing."""
    if d is None:
        return "—"
    star = "*" if d["low"] > 0 or d["high"] < 0 else ""
    return f"{d['diff']:+.{digits}f} [{d['low']:.{digits}f}, {d['high']:.{digits}f}]{star}"


def _md_comparisons(board: Board) -> list[str]:
    lines = ["| A | B | " + " | ".join(HEADERS[k] for k in LEADERBOARD_KEYS) + " |",
             "|" + "---|" * (len(LEADERBOARD_KEYS) + 2)]
    for c in board.comparisons:
        lines.append(f"| {c.better} | {c.worse} | " + " | ".join(diff_text(c.metrics.get(k)) for k in LEADERBOARD_KEYS)
                     + " |")
    return lines


def _csv_value(v: float | None) -> str:
    d = displayed(v)
    return "" if d is None else f"{d:.3f}"


def _csv_bound(e: Entry, key: str, bound: str) -> str:
    ci = e.intervals.get(key) if e.intervals else None
    return "" if ci is None or e.metrics.get(key) is None else f"{ci[bound]:.4f}"


def csv_header() -> list[str]:
    """CSV columns: the value table, interval bounds, sample counts, group, caveats."""
    return [*header(), *(f"{HEADERS[k]} low" for k in LEADERBOARD_KEYS),
            *(f"{HEADERS[k]} high" for k in LEADERBOARD_KEYS),
            *(f"n {TASKS.get(k.upper()).name}" for k in TASK_KEYS), "group", "caveats"]


def to_csv(board: Board | list[Entry]) -> str:
    """CSV: one row per model (paper rows after the runs, ranked on their own); missing values empty.

    The ``caveats`` column holds each row's caveats (fixture data, skipped judge, subset,
    different data, "reported, not reproduced"...), so the file keeps them without a side note.
    """
    board = as_board(board)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(csv_header())
    for group, entries in (("run", board.runs), ("paper", board.paper)):
        for i, e in enumerate(entries):
            counts = [str(e.counts[k]["scored"]) if k in e.counts and e.counts[k].get("scored") is not None else ""
                      for k in TASK_KEYS]
            w.writerow([str(i + 1), e.name, f"{e.mean_rank:.2f}", *(_csv_value(e.metrics.get(k)) for k in LEADERBOARD_KEYS),
                        *(_csv_bound(e, k, "low") for k in LEADERBOARD_KEYS),
                        *(_csv_bound(e, k, "high") for k in LEADERBOARD_KEYS), *counts, group, caveat_text(e)])
    return buf.getvalue()


def to_html(board: Board | list[Entry], title: str | None = None) -> str:
    """The self-contained leaderboard page (:func:`mvbench.leaderboard.page.render_page`)."""
    from mvbench.leaderboard.page import render_page

    board = as_board(board)
    if title:
        board.title = title
    return render_page(board)


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else v


def entry_json(e: Entry, position: int) -> dict:
    """One row as JSON (full-precision values, intervals, counts, caveats, fingerprint)."""
    return {"rank": position, "name": e.name, "source": e.source, "mean_rank": e.mean_rank,
            "metrics": {k: _finite(v) for k, v in e.metrics.items()}, "ranks": e.ranks, "intervals": e.intervals,
            "interval_info": e.interval_info, "counts": e.counts, "fingerprint": e.fingerprint,
            "caveats": [{"code": c, "text": t} for c, t in e.flags], "notes": e.notes}


def to_json(board: Board | list[Entry]) -> str:
    """Runs and paper rows (each ranked in its group), notes, caveats and paired comparisons."""
    board = as_board(board)
    out = {"title": board.title,
           "runs": [entry_json(e, i + 1) for i, e in enumerate(board.runs)],
           "paper": [entry_json(e, i + 1) for i, e in enumerate(board.paper)],
           "caveats": [{"code": c, "text": t, "rows": names} for c, t, names in board.caveats()],
           "intervals": board.interval_note(), "notes": board.notes,
           "comparisons": [{"better": c.better, "worse": c.worse, "metrics": c.metrics, **c.info}
                           for c in board.comparisons]}
    return json.dumps(out, indent=2, allow_nan=False) + "\n"


def write_all(board: Board | list[Entry], out_dir: str | Path) -> Path:
    """Write the page and the tables into ``out_dir`` (:data:`OUT_FILES`, atomically).

    Returns:
        The page's path (``out_dir/leaderboard.html``).
    """
    board = as_board(board)
    out_dir = Path(out_dir)
    writers = {"html": to_html, "md": to_markdown, "csv": to_csv, "json": to_json}
    for fmt, name in OUT_FILES.items():
        atomic_write_bytes(out_dir / name, writers[fmt](board).encode("utf-8"))
    return out_dir / OUT_FILES["html"]
