"""``mvbench demo``: generated raw trees of every source → ``mvbench build`` → ``mvbench eval`` of
reference models → the leaderboard page. Offline, CPU only, a few minutes.

The demo joins the builders, eval and leaderboard wings, so it lives under the CLI (core never
imports a wing). Reference models:

- ``baseline:prior``: the rule-based prior baseline (:mod:`mvbench.eval.backends.baseline`);
- ``tiny-qwen2.5-vl``: a tiny randomly initialised Qwen2.5-VL built in code (no download), run
  in process by the ``hf`` backend. Its answers are noise: it exercises the real model path. Its
  answers are cut at :data:`TINY_MAX_TOKENS` new tokens (noise either way) so that the demo stays
  within minutes on two CPU cores.

Every long step reports progress (fixture trees, videos built, each model's answers). No LLM
judge runs offline, so the caption ``llm`` columns stay empty, and the data are fixture data: the
page says both, next to the ranking.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mvbench.builders.fixtures import fixture_sources, is_fixture_root, make_fixture, mark_fixture
from mvbench.cli.checks import output_dir
from mvbench.builders.pipeline import BuildOptions, build
from mvbench.eval.harness import EvalConfig, run_eval
from mvbench.leaderboard import Board, build_board, load_entry
from mvbench.models import PRIOR_BASELINE

log = logging.getLogger(__name__)
TINY_QWEN = "tiny-qwen2.5-vl"
TINY_MAX_TOKENS = 64
STEPS = 5

# progress(description, total or None) -> advance(): called once per finished item.
ProgressFactory = Callable[[str, "int | None"], Callable[[], Any]]


def _no_progress(description: str, total: int | None) -> Callable[[], None]:
    return lambda: None


def make_fixtures(raw: Path, sources: Sequence[str], seed: int = 0,
                  advance: Callable[[], Any] = lambda: None) -> list[tuple[str, Path]]:
    """Generate each source's raw fixture tree under ``raw/<source>`` (reused when already there)."""
    roots = []
    for name in sources:
        marker = raw / name / ".mvbench-fixture"
        if marker.exists():
            root = Path(marker.read_text().strip())
            if not is_fixture_root(root):  # a tree from before fixture roots carried their marker
                mark_fixture(root, name, seed)
        else:
            root = make_fixture(name, raw / name, seed=seed)
            marker.write_text(str(root))
        roots.append((name, root))
        advance()
    return roots


def run_demo(out: Path, *, sources: Sequence[str] | None = None, models: Sequence[str] = (PRIOR_BASELINE, TINY_QWEN),
             limit: int | None = None, workers: int | None = None, seed: int = 0,
             say: Callable[[str], Any] = print, progress: ProgressFactory = _no_progress) -> Board:
    """Run the whole demo into ``out``; return the leaderboard (also written as ``out/leaderboard.html``).

    Args:
        out: working folder (``raw/``, ``dataset/``, ``runs/``, ``leaderboard.html`` and its tables).
        sources: builder names (default: every source with a fixture writer).
        models: ``baseline:prior`` and/or ``tiny-qwen2.5-vl`` (or any model ``mvbench eval`` accepts).
        limit: test samples per task per model (default: the whole fixture test split).
        workers: build processes (default: all cores).
        say: prints a step's headline.
        progress: ``progress(description, total)`` returns a callable advanced once per item of
            every long step (fixture trees, built videos, each model's answers).
    """
    from mvbench.leaderboard.render import write_all

    out = Path(out)
    sources = list(sources or fixture_sources())
    say(f"[1/{STEPS}] generating raw fixture trees for {len(sources)} sources in {out / 'raw'}")
    roots = make_fixtures(out / "raw", sources, seed, progress("fixture trees", len(sources)))
    say(f"[2/{STEPS}] building MedVidBench records and frames into {out / 'dataset'}")
    advance_build = progress("videos built", None)
    manifest = build(roots, BuildOptions(out=out / "dataset", workers=workers, seed=seed),
                     on_video_done=lambda source, video, summary: advance_build())
    say(f"      {manifest.get('records', '?')} records (fixture data: {bool(manifest.get('fixture'))})")
    runs = []
    for i, model in enumerate(models):
        what = f"{limit} samples per task" if limit else "every test sample"
        say(f"[3/{STEPS}] evaluating {model} ({i + 1}/{len(models)}) on the test split, {what}")
        run_dir = out / "runs" / model.replace(":", "-").replace("/", "_")
        kwargs: dict[str, Any] = {}
        model_arg = model
        if model == TINY_QWEN:
            model_arg = str(_tiny_qwen(out / "models" / TINY_QWEN, seed))
            kwargs = {"backend": "hf", "concurrency": 1, "max_tokens": TINY_MAX_TOKENS}
        run_eval(EvalConfig(data=str(out / "dataset"), model=model_arg, out_dir=run_dir, limit=limit, seed=seed,
                            no_judge=True, cache_dir=out / "cache", **kwargs),
                 progress_factory=lambda total, m=model: progress(f"{m} answers", total))
        runs.append((run_dir, model))
    say(f"[4/{STEPS}] ranking, with 95% intervals and paired differences (bootstrap over videos)")
    board = build_board([load_entry(d, name) for d, name in runs], paired=len(runs) > 1,
                        title="mvbench demo leaderboard (fixture data)")
    page = write_all(board, out)
    say(f"[5/{STEPS}] leaderboard page written: {page}")
    return board


def _tiny_qwen(directory: Path, seed: int) -> Path:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # weight-loading bars of a 1 MB model are noise in the demo
    if not (directory / "config.json").is_file():
        from mvbench.testing.tiny_qwen import build_tiny_qwen2_5_vl

        build_tiny_qwen2_5_vl(directory, seed=seed)
    return directory


err = Console(stderr=True)


class StepProgress:
    """Progress of the demo's steps: live bars on a terminal, else a plain line every ~10%.

    Use as a context manager around :func:`run_demo`; call it as its ``progress`` argument.
    """

    def __init__(self, console: Console):
        self.console = console
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=console) if console.is_terminal else None

    def __enter__(self) -> "StepProgress":
        if self.bars is not None:
            self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bars is not None:
            self.bars.stop()

    def __call__(self, description: str, total: int | None) -> Callable[[], None]:
        if self.bars is not None:
            task = self.bars.add_task(description, total=total)
            return lambda: self.bars.advance(task)  # type: ignore[union-attr]
        done = [0]
        step = max(1, total // 10) if total else 5

        def advance() -> None:
            done[0] += 1
            if done[0] % step == 0 or done[0] == total:
                print(f"      {description}: {done[0]}" + (f"/{total}" if total else ""), file=sys.stderr, flush=True)
        return advance


def demo_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Working folder.")] = Path("demo-out"),
    sources: Annotated[Optional[str], typer.Option(help="Comma-separated sources (default: all).")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Test samples per task per model (default: all of the "
                                                      "fixture test split).")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Build processes (default: all cores).")] = None,
    skip_tiny_model: Annotated[bool, typer.Option("--skip-tiny-model", help="Evaluate only the prior baseline.")] = False,
) -> None:
    """Generate raw trees for every source, build them, evaluate reference models, write the leaderboard page."""
    from mvbench.cli.leaderboard import print_board

    models = (PRIOR_BASELINE,) if skip_tiny_model else (PRIOR_BASELINE, TINY_QWEN)
    output_dir(out, "--out")
    chosen = [s.strip() for s in sources.split(",") if s.strip()] if sources else None
    unknown = sorted(set(chosen or ()) - set(fixture_sources()))
    if unknown:
        raise typer.BadParameter(f"--sources: no fixture for {', '.join(unknown)}; known: {', '.join(fixture_sources())}")
    with StepProgress(err) as progress:
        board = run_demo(out, sources=chosen, models=models,
                         limit=limit, workers=workers, say=err.print, progress=progress)
    print_board(board)
    typer.echo(str((out / "leaderboard.html").resolve()))


def register(app: typer.Typer) -> None:
    """Add ``demo``."""
    app.command("demo")(demo_command)
