"""``mvbench leaderboard``: rank evaluated models."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from mvbench.cli.checks import output_file
from mvbench.dataset_io import atomic_write_bytes
from mvbench.leaderboard import check_comparable, disambiguate_names, load_entry, paper_entries, rank
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


def leaderboard_command(
    results: Annotated[list[Path], typer.Argument(help="results.json / .scores.json files or eval output "
                                                       "folders.")] = None,
    name: Annotated[Optional[list[str]], typer.Option("--name", help="Display name per result, in order.")] = None,
    with_paper: Annotated[bool, typer.Option("--with-paper", help="Add the published MedGRPO rows (official test set only).")] = False,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
    allow_mixed: Annotated[bool, typer.Option("--allow-mixed", help="Rank runs evaluated on different data "
                                                                    "(or subsets) anyway.")] = False,
    allow_incomplete: Annotated[bool, typer.Option("--allow-incomplete", help="Rank runs with failed requests "
                                                                              "(counts.failed > 0) anyway.")] = False,
) -> None:
    """Rank models as the official MedVidBench leaderboard (dense rank per metric, mean rank)."""
    results = results or []
    if output is not None:
        output_file(output, "--output")
    names = list(name or [])
    if names and len(names) != len(results):
        raise typer.BadParameter("give one --name per result, or none")
    entries = [load_entry(p, names[i] if names else None) for i, p in enumerate(results)]
    notes = [n for e in entries for n in e.notes] + check_comparable(entries, allow_mixed, allow_incomplete)
    if with_paper:
        entries += paper_entries()
        notes.append(PAPER_WARNING)
    if not entries:
        raise typer.BadParameter("nothing to rank: pass results files or --with-paper")
    disambiguate_names(entries)
    for note in notes:
        _stderr.print(note if note.startswith("warning:") else f"note: {note}", markup=False)
    ranked = rank(entries)
    if fmt is Format.table and output is None:
        table = Table(title="MedVidBench leaderboard")
        for h in render.header():
            table.add_column(h, justify="left" if h == "model" else "right")
        for row in render._rows(ranked):
            table.add_row(*row)
        Console(width=max(160, Console().width)).print(table)
        return
    text = {Format.md: render.to_markdown, Format.table: render.to_markdown, Format.csv: render.to_csv,
            Format.html: render.to_html, Format.json: render.to_json}[fmt](ranked)
    if output:
        atomic_write_bytes(output, text.encode("utf-8"))
        Console(stderr=True).print(f"wrote {output}")
    else:
        typer.echo(text, nl=False)


def register(app: typer.Typer) -> None:
    """Add ``leaderboard``."""
    app.command("leaderboard")(leaderboard_command)
