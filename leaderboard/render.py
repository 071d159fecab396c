"""Render a ranked leaderboard as Markdown, CSV, HTML or JSON."""

from __future__ import annotations

import csv
import html
import io
import json

from mvbench.tasks import LEADERBOARD_KEYS, METRICS
from mvbench.leaderboard.ranking import Entry, displayed

HEADERS = {k: METRICS[k].title for k in LEADERBOARD_KEYS}


def _cell(v: float | None) -> str:
    d = displayed(v)
    return "—" if d is None else f"{d:.3f}"


def _rows(entries: list[Entry]) -> list[list[str]]:
    return [[str(i + 1), e.name, f"{e.mean_rank:.2f}", *(_cell(e.metrics.get(k)) for k in LEADERBOARD_KEYS)]
            for i, e in enumerate(entries)]


def header() -> list[str]:
    """Column titles."""
    return ["#", "model", "mean rank", *(HEADERS[k] for k in LEADERBOARD_KEYS)]


def to_markdown(entries: list[Entry]) -> str:
    """A GitHub-style Markdown table."""
    lines = ["| " + " | ".join(header()) + " |", "|" + "---|" * len(header())]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(entries)]
    return "\n".join(lines) + "\n"


def to_csv(entries: list[Entry]) -> str:
    """CSV with the displayed values."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header())
    w.writerows(_rows(entries))
    return buf.getvalue()


def to_html(entries: list[Entry], title: str = "MedVidBench leaderboard") -> str:
    """A standalone HTML page."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header())
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in _rows(entries))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            "padding:4px 8px;text-align:right}td:nth-child(2){text-align:left}</style></head>"
            f"<body><h1>{html.escape(title)}</h1><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            "</table></body></html>\n")


def to_json(entries: list[Entry]) -> str:
    """Full-precision values, ranks, sources and loading notes (e.g. a NaN read as missing)."""
    return json.dumps([{"rank": i + 1, "name": e.name, "source": e.source, "mean_rank": e.mean_rank,
                        "metrics": e.metrics, "ranks": e.ranks, "notes": e.notes}
                       for i, e in enumerate(entries)], indent=2, allow_nan=False) + "\n"
