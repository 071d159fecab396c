"""``mvbench export``: a built dataset → the official MedVidBench JSON and frame folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mvbench.cli.checks import output_dir


def register(app: typer.Typer) -> None:
    """Add ``export``."""

    @app.command("export")
    def export(
        in_dir: Annotated[Path, typer.Argument(help="A built dataset.")],
        out_dir: Annotated[Path, typer.Argument(help="Export folder.")],
        format: Annotated[str, typer.Option("--format", help="Output format.")] = "medvidbench",
        split: Annotated[str, typer.Option("--split", help="train, val, test or all.")] = "test",
        with_answers: Annotated[bool, typer.Option("--with-answers", help="Keep the gpt turn and struc_info.")] = False,
        frames_prefix: Annotated[str, typer.Option("--frames-prefix", help="Prefix of frame paths in the JSON.")] = "frames",
        copy: Annotated[bool, typer.Option("--copy", help="Copy frames instead of hard-linking them.")] = False,
        no_frames: Annotated[bool, typer.Option("--no-frames", help="Write the JSON only.")] = False,
    ) -> None:
        """Write OUT/medvidbench_<split>.json (test files: no answers) and OUT/frames/."""
        from mvbench.builders.export import FORMATS, export_medvidbench

        if format not in FORMATS:
            raise typer.BadParameter(f"unknown format {format!r}; known: {', '.join(FORMATS)}")
        if split not in ("train", "val", "test", "all"):
            raise typer.BadParameter("--split must be train, val, test or all")
        output_dir(out_dir, "OUT_DIR")
        path = export_medvidbench(in_dir, out_dir, split=split, with_answers=with_answers,
                                  frames_prefix=frames_prefix, copy=copy, frames=not no_frames)
        Console().print(f"wrote {path}")
