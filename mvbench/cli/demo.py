"""``mvbench demo``: build, evaluate and rank on generated data, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

err = Console(stderr=True)


def demo_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Working folder.")] = Path("demo-out"),
    sources: Annotated[Optional[str], typer.Option(help="Comma-separated sources (default: all).")] = None,
    limit: Annotated[int, typer.Option(help="Test samples per task per model.")] = 4,
    workers: Annotated[Optional[int], typer.Option(help="Build processes (default: all cores).")] = None,
    skip_tiny_model: Annotated[bool, typer.Option("--skip-tiny-model", help="Evaluate only the prior baseline.")] = False,
) -> None:
    """Generate raw trees for every source, build them, evaluate reference models, print the leaderboard."""
    from mvbench.demo import TINY_QWEN, run_demo
    from mvbench.leaderboard import render

    models = ("baseline:prior",) if skip_tiny_model else ("baseline:prior", TINY_QWEN)
    ranked = run_demo(out, sources=[s.strip() for s in sources.split(",")] if sources else None, models=models,
                      limit=limit, workers=workers, say=err.print)
    table = Table(title="mvbench demo leaderboard (fixture data: not comparable with the paper)")
    for h in render.header():
        table.add_column(h, justify="left" if h == "model" else "right")
    for row in render._rows(ranked):
        table.add_row(*row)
    Console(width=max(160, Console().width)).print(table)


def register(app: typer.Typer) -> None:
    """Add ``demo``."""
    app.command("demo")(demo_command)
