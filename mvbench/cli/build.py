"""``mvbench build``, ``mvbench sources`` and ``mvbench balance``."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mvbench.cli.checks import config, output_dir
from mvbench.errors import InputError

console = Console(stderr=True)


def _split_tasks(tasks: list[str] | None) -> tuple[str, ...] | None:
    if not tasks:
        return None
    out = tuple(t.strip().upper() for item in tasks for t in item.split(",") if t.strip())
    return out or None


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _coerce(cls: type, key: str, value: str) -> Any:
    """Turn ``value`` into the type of config field ``key`` (for ``--option key=value``).

    ``Optional[X]`` / ``X | None`` fields take ``none`` (or ``null``) for None; ``bool``, ``int``,
    ``float`` and ``str`` are converted; ``tuple``/``list`` of those take comma-separated items,
    and a tuple of ints also ``WxH`` (``frame_size=854x480``).

    Raises:
        InputError: an unknown key, or a value that does not fit the field's type (naming both).
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if key not in fields:
        raise InputError(f"unknown builder option {key!r}; known: {', '.join(sorted(fields))}")
    hint = typing.get_type_hints(cls).get(key, str)
    try:
        return _convert(hint, value.strip())
    except ValueError as e:
        raise InputError(f"builder option {key}={value!r}: {e}") from None


def _convert(hint: Any, value: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        if type(None) in args and value.lower() in ("none", "null"):
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError("; ".join(errors) or "no type fits")
    if origin in (tuple, list):
        item = args[0] if args else str
        if re.fullmatch(r"\d+\s*[xX]\s*\d+", value) and item is int:  # a size: frame_size=854x480
            value = re.sub(r"\s*[xX]\s*", ",", value)
        items = [_convert(item, v.strip()) for v in value.split(",") if v.strip()]
        return tuple(items) if origin is tuple else items
    if hint is bool:
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ValueError(f"expected true or false, not {value!r}")
    if hint in (int, float):
        try:
            return hint(value)
        except ValueError:
            raise ValueError(f"expected {hint.__name__}, not {value!r}") from None
    if hint is Path:
        return Path(value)
    return value


def sources_table() -> Table:
    """A rich table of every registered source: name, data_source, tasks, version."""
    from mvbench.builders import builder_names, get_builder

    table = Table(title="MedVidBench sources")
    for col in ("source", "data_source", "tasks", "version"):
        table.add_column(col)
    for name in builder_names():
        cls = get_builder(name)
        table.add_row(name, cls.data_source, ", ".join(cls.tasks), str(cls.version))
    return table


def register(app: typer.Typer) -> None:
    """Add ``build``, ``sources`` and ``balance``."""

    @app.command("sources")
    def sources() -> None:
        """List the registered sources and the tasks each one feeds."""
        Console().print(sources_table())

    @app.command("build")
    def build(
        source: Annotated[Optional[str], typer.Option("--source", "-s", help="Source name, or 'all' (every source found under --root).")] = None,
        root: Annotated[Optional[Path], typer.Option("--root", help="Raw source tree (for 'all': a folder of per-source folders).")] = None,
        out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output dataset folder.")] = None,
        tasks: Annotated[Optional[list[str]], typer.Option("--tasks", help="Only these tasks (comma-separated or repeated).")] = None,
        workers: Annotated[Optional[int], typer.Option("--workers", "-j", help="Parallel videos (default: all cores).")] = None,
        plan_only: Annotated[bool, typer.Option("--plan-only", help="Write records without decoding any video.")] = False,
        keep_going: Annotated[bool, typer.Option("--keep-going", help="Skip failing videos; list failures at the end.")] = False,
        seed: Annotated[int, typer.Option("--seed", help="Seed for splits, windows, rates and phrasings.")] = 0,
        executor: Annotated[str, typer.Option("--executor", help="local (process pool) or ray.")] = "local",
        split_file: Annotated[Optional[Path], typer.Option("--split-file", help="JSON/CSV video_id -> split overrides.")] = None,
        keep_val: Annotated[bool, typer.Option("--keep-val", help="Keep official val videos as 'val' (default: train).")] = False,
        max_frames: Annotated[int, typer.Option("--max-frames", help="Frames per instance at most.")] = 256,
        shard_size: Annotated[int, typer.Option("--shard-size", help="Records per Parquet shard at most.")] = 1000,
        option: Annotated[Optional[list[str]], typer.Option("--option", help="Builder config override key=value (repeatable).")] = None,
        stg_keyframes: Annotated[bool, typer.Option("--stg-keyframes", help="STG also asks, one by one, about boxes too far apart to form tracks (sparse keyframe labels).")] = False,
        list_: Annotated[bool, typer.Option("--list", help="List sources and their tasks, then exit.")] = False,
        generate: Annotated[bool, typer.Option("--generate", help="Then run `mvbench generate OUT` (paid: GPT and Gemini answers for DVC, VS and RC; endpoints from $OPENAI_BASE_URL / $GOOGLE_GEMINI_BASE_URL, keys from the environment or .env). For other generation options, or --estimate first, build, then run `mvbench generate OUT`.")] = False,
        budget_usd: Annotated[Optional[float], typer.Option("--budget-usd", help="With --generate: stop cleanly before the generation's spend could pass this (as `mvbench generate --budget-usd`).")] = None,
        batch: Annotated[bool, typer.Option("--batch", help="With --generate: use the OpenAI Batch API and Gemini batch mode (as `mvbench generate --batch`).")] = False,
    ) -> None:
        """Build MedVidBench instances (Parquet + frames + manifest) from raw source trees."""
        from mvbench.builders import get_builder
        from mvbench.builders.generators import GenConfig
        from mvbench.builders.pipeline import BuildOptions, build as run_build, detect_sources

        if list_:
            Console().print(sources_table())
            return
        if not source or root is None or out is None:
            raise typer.BadParameter("--source, --root and --out are required (or use --list)")
        if (budget_usd is not None or batch) and not generate:
            raise typer.BadParameter("--budget-usd and --batch are generation options: add --generate")
        if budget_usd is not None and budget_usd <= 0:
            raise typer.BadParameter("--budget-usd must be > 0")
        output_dir(out, "--out")
        if source == "all":
            pairs = detect_sources(root)
            if not pairs:
                raise InputError("no source folders found (subfolders named after sources)", root)
        else:
            pairs = [(source, root)]
            get_builder(source)
        overrides: dict[str, Any] = {}
        for item in option or []:
            if "=" not in item:
                raise typer.BadParameter(f"--option needs key=value, not {item!r}")
            key, value = item.split("=", 1)
            overrides[key.strip()] = value
        options = config(BuildOptions, out=out, tasks=_split_tasks(tasks), workers=workers, plan_only=plan_only,
                         keep_going=keep_going, seed=seed, executor=executor,
                         split_file=split_file, keep_val=keep_val, shard_size=shard_size,
                         gen=config(GenConfig, seed=seed, max_frames=max_frames,
                                    stg_keyframes=stg_keyframes))
        if overrides:
            for name, _ in pairs:
                cls = get_builder(name)
                typed = {k: _coerce(cls.config_class, k, v) for k, v in overrides.items()}
                options.builder_overrides[name] = typed
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            bar = progress.add_task("videos", total=None)

            def done(src: str, video_id: str, summary: dict) -> None:
                progress.update(bar, advance=1, description=f"{src}: {video_id}")

            manifest = run_build(pairs, options, on_video_done=done)
        table = Table(title=f"built {manifest['records']} records → {out}")
        for col in ("source", "task", "train", "val", "test"):
            table.add_column(col)
        for src, by_task in manifest["counts"].items():
            for task, by_split in by_task.items():
                table.add_row(src, task, *(str(by_split.get(s, 0)) for s in ("train", "val", "test")))
        Console().print(table)
        for src, cov in manifest["coverage"].items():
            covered = ", ".join(f"{t} {n}/{cov['segments']}" for t, n in cov["segments_covered"].items())
            if covered:
                Console().print(f"{src}: segments used — {covered}")
        n_anom = sum(len(v) for v in manifest["anomalies"].values())
        if n_anom:
            Console().print(f"{n_anom} video(s) with anomalies: see manifest.json 'anomalies'")
        for src, tasks_ in manifest["empty_tasks"].items():
            for task, info in tasks_.items():
                console.print(f"[yellow]no {escape(task)} instance[/] from {escape(src)}: {escape(info['explanation'])}"
                              f"; option: {escape(info['option'])}", highlight=False)
        from mvbench.builders.gold import below

        for src, task, n in below(manifest["gold_check"]):
            console.print(f"[yellow]gold below full marks[/] {escape(src)} {escape(task)}: {n} record(s) "
                          f"(manifest.json 'gold_check')", highlight=False)
        for f in manifest["failures"]:
            console.print(f"[red]failed[/] {escape(f['source'])}:{escape(f['video_id'])}: {escape(str(f['error']))}",
                          highlight=False)
        if manifest["failures"]:
            raise typer.Exit(1)
        if generate:
            from mvbench.cli.generate import run_generate_command

            run_generate_command(out, budget_usd=budget_usd, batch=batch)

    @app.command("balance")
    def balance(
        in_dir: Annotated[Path, typer.Argument(help="A built dataset.")],
        out_dir: Annotated[Path, typer.Argument(help="Folder for the balanced dataset.")],
        cap: Annotated[int, typer.Option("--cap", min=1, help="Records per (source, task) at most.")],
        seed: Annotated[int, typer.Option("--seed")] = 0,
        per_split: Annotated[bool, typer.Option("--per-split", help="Cap each (source, task, split).")] = False,
    ) -> None:
        """Write the task-balanced "Standard" version (frames referenced via a link, not copied)."""
        from mvbench.builders.balance import balance as run_balance

        output_dir(out_dir, "OUT_DIR")
        manifest = run_balance(in_dir, out_dir, cap, seed, per_split=per_split)
        Console().print(f"kept {manifest['records']} of {manifest['records_in']} records → {out_dir}")
