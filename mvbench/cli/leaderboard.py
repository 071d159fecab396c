"""``mvbench leaderboard``: rank evaluated models; write tables or the self-contained page."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from mvbench.cli.checks import output_file
from mvbench.dataset_io import atomic_write_bytes
from mvbench.eval.bootstrap import DEFAULT_RESAMPLES, BootstrapConfig
from mvbench.leaderboard import Board, build_board, load_entry
from mvbench.leaderboard import render

# Notes and warnings go to stderr one per line (no wrapping), so stdout stays the table alone.
_stderr = Console(stderr=True, soft_wrap=True, highlight=False)
PAPER_WARNING = ("warning: the paper rows are official MedVidBench test-set numbers; compare them only with runs "
                 "on the official test file")


class Format(str, Enum):
    table = "table"
    md = "md"
    csv = "csv"
    html = "html"
    json = "json"


def print_board(board: Board, console: Console | None = None) -> None:
    """The ranking in the terminal: runs (values over their intervals), then the paper rows, then caveats."""
    console = console or Console(width=max(160, Console().width))
    for title, entries in (("MedVidBench leaderboard", board.runs),
                           ("Reported in the paper (not reproduced; ranked separately)", board.paper)):
        if not entries:
            continue
        table = Table(title=title)
        for h in [*render.header(), "caveats"]:
            table.add_column(h, justify="left" if h in ("model", "caveats") else "right", no_wrap=h != "caveats")
        for row, e in zip(render._rows(entries), entries):
            values = [f"{v}\n{_short_interval(e, k)}".rstrip() for v, k in zip(row[3:], render.LEADERBOARD_KEYS)]
            table.add_row(*row[:3], *values, ", ".join(code for code, _ in e.flags))
        console.print(table)
    if board.comparisons:
        table = Table(title="Paired differences A − B (95% interval; * excludes 0)")
        for h in ("A", "B", *render.HEADERS.values()):
            table.add_column(h, justify="left" if h in ("A", "B") else "right")
        for c in board.comparisons:
            table.add_row(c.better, c.worse, *(render.diff_text(c.metrics.get(k), 2).replace(" [", "\n[")
                                               for k in render.LEADERBOARD_KEYS))
        console.print(table)
    for line in render.notes_lines(board):
        console.print(line.replace("**", ""), markup=False, highlight=False)


def _short_interval(e, key: str) -> str:
    ci = (e.intervals or {}).get(key)
    if not e.intervals or e.metrics.get(key) is None:
        return ""
    return "n/a" if ci is None else f"{ci['low']:.2f}–{ci['high']:.2f}"


def leaderboard_command(
    results: Annotated[list[Path], typer.Argument(help="results.json / .scores.json files or eval output "
                                                       "folders.")] = None,
    name: Annotated[Optional[list[str]], typer.Option("--name", help="Display name per result, in order.")] = None,
    with_paper: Annotated[bool, typer.Option("--with-paper", help="Add the published MedGRPO rows (ranked "
                                                                  "separately, marked reported, not reproduced).")] = False,
    fmt: Annotated[Format, typer.Option("--format", help="Output format (stdout or --output).")] = Format.table,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", metavar="FILE",
                                                   help="Write to this file instead of stdout.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option(
        "--out", metavar="DIR", help="Write the self-contained page and the tables into this folder (leaderboard.html, .md, "
                      ".csv, .json); prints the page's path.")] = None,
    paired: Annotated[bool, typer.Option("--paired", help="Paired differences between every two runs (same "
                                                          "records), with 95% intervals, from their per-sample files.")] = False,
    bootstrap: Annotated[int, typer.Option("--bootstrap", metavar="N", help="Bootstrap draws of --paired.")] = DEFAULT_RESAMPLES,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --paired draws.")] = 0,
    title: Annotated[str, typer.Option("--title", help="Page title.")] = "MedVidBench leaderboard",
    allow_mixed: Annotated[bool, typer.Option("--allow-mixed", help="Rank runs evaluated on different data "
                                                                    "(or subsets) anyway (flagged).")] = False,
    allow_incomplete: Annotated[bool, typer.Option("--allow-incomplete", help="Rank runs with failed requests "
                                                                              "(counts.failed > 0) anyway (flagged).")] = False,
) -> None:
    """Rank models as the official MedVidBench leaderboard (dense rank per metric, mean rank)."""
    results = results or []
    if output is not None:
        output_file(output, "--output")
    names = list(name or [])
    if names and len(names) != len(results):
        raise typer.BadParameter("give one --name per result, or none")
    if not results and not with_paper:
        raise typer.BadParameter("nothing to rank: pass results files or --with-paper")
    try:
        config = BootstrapConfig(resamples=bootstrap, seed=seed)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    entries = [load_entry(p, names[i] if names else None) for i, p in enumerate(results)]
    board = build_board(entries, with_paper=with_paper, allow_mixed=allow_mixed, allow_incomplete=allow_incomplete,
                        paired=paired, bootstrap=config, title=title)
    notes = list(board.notes) + ([PAPER_WARNING] if with_paper else [])
    for note in notes:
        _stderr.print(note if note.startswith("warning:") else f"note: {note}", markup=False)
    if out_dir is not None:
        page = render.write_all(board, out_dir)
        Console(stderr=True).print(f"wrote {', '.join(render.OUT_FILES.values())} to {out_dir}")
        typer.echo(str(page))
        if fmt is Format.table and output is None:
            return
    if fmt is Format.table and output is None:
        print_board(board)
        return
    text = {Format.md: render.to_markdown, Format.table: render.to_markdown, Format.csv: render.to_csv,
            Format.html: render.to_html, Format.json: render.to_json}[fmt](board)
    if output:
        atomic_write_bytes(output, text.encode("utf-8"))
        Console(stderr=True).print(f"wrote {output}")
    else:
        typer.echo(text, nl=False)


def register(app: typer.Typer) -> None:
    """Add ``leaderboard``."""
    app.command("leaderboard")(leaderboard_command)
