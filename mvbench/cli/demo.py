"""``mvbench demo``: generated raw trees of every source → ``mvbench build`` → ``mvbench eval`` of
reference models → the leaderboard. Offline, CPU only, a few minutes.

The demo joins the builders, eval and leaderboard wings, so it lives under the CLI (core never
imports a wing). Reference models:

- ``baseline:prior``: the rule-based prior baseline (:mod:`mvbench.eval.backends.baseline`);
- ``tiny-qwen2.5-vl``: a tiny randomly initialised Qwen2.5-VL built in code (no download), run
  in process by the ``hf`` backend. Its answers are noise: it exercises the real model path.

No LLM judge runs offline, so the caption ``llm`` columns stay empty (the results say so); the
MiniLM similarity is reported instead in each run's ``results.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from mvbench.builders.fixtures import fixture_sources, make_fixture
from mvbench.cli.checks import output_dir
from mvbench.builders.pipeline import BuildOptions, build
from mvbench.eval.harness import EvalConfig, run_eval
from mvbench.leaderboard import Entry, load_entry, rank
from mvbench.models import PRIOR_BASELINE

log = logging.getLogger(__name__)
TINY_QWEN = "tiny-qwen2.5-vl"


def make_fixtures(raw: Path, sources: Sequence[str], seed: int = 0) -> list[tuple[str, Path]]:
    """Generate each source's raw fixture tree under ``raw/<source>`` (reused when already there)."""
    roots = []
    for name in sources:
        marker = raw / name / ".mvbench-fixture"
        if marker.exists():
            roots.append((name, Path(marker.read_text().strip())))
            continue
        root = make_fixture(name, raw / name, seed=seed)
        marker.write_text(str(root))
        roots.append((name, root))
    return roots


def run_demo(out: Path, *, sources: Sequence[str] | None = None, models: Sequence[str] = (PRIOR_BASELINE, TINY_QWEN),
             limit: int | None = 4, workers: int | None = None, seed: int = 0,
             say: Callable[[str], Any] = print) -> list[Entry]:
    """Run the whole demo into ``out``; return the ranked leaderboard entries.

    Args:
        out: working folder (``raw/``, ``dataset/``, ``runs/``, ``leaderboard.md``/``.html``).
        sources: builder names (default: every registered source).
        models: ``baseline:prior`` and/or ``tiny-qwen2.5-vl`` (or any model ``mvbench eval`` accepts).
        limit: test samples per task per model (keeps the tiny model's CPU time short).
        workers: build processes (default: all cores).
    """
    from mvbench.leaderboard import render

    out = Path(out)
    sources = list(sources or fixture_sources())
    say(f"[1/4] generating raw fixture trees for {len(sources)} sources in {out / 'raw'}")
    roots = make_fixtures(out / "raw", sources, seed)
    say(f"[2/4] building MedVidBench records and frames into {out / 'dataset'}")
    manifest = build(roots, BuildOptions(out=out / "dataset", workers=workers, seed=seed))
    counts = manifest.get("counts", {})
    say(f"      {sum(_leaf_sum(v) for v in counts.values()) if isinstance(counts, dict) else '?'} records")
    runs = []
    for i, model in enumerate(models):
        say(f"[3/4] evaluating {model} ({i + 1}/{len(models)}) on the test split, {limit} samples per task")
        run_dir = out / "runs" / model.replace(":", "-").replace("/", "_")
        kwargs: dict[str, Any] = {}
        model_arg = model
        if model == TINY_QWEN:
            model_arg, kwargs = str(_tiny_qwen(out / "models" / TINY_QWEN, seed)), {"backend": "hf", "concurrency": 1}
        run_eval(EvalConfig(data=str(out / "dataset"), model=model_arg, out_dir=run_dir, limit=limit, seed=seed,
                            no_judge=True, cache_dir=out / "cache", **kwargs))
        runs.append((run_dir, model))
    ranked = rank([load_entry(d, name) for d, name in runs])
    (out / "leaderboard.md").write_text(render.to_markdown(ranked), encoding="utf-8")
    (out / "leaderboard.html").write_text(render.to_html(ranked, "mvbench demo leaderboard"), encoding="utf-8")
    say(f"[4/4] leaderboard written to {out / 'leaderboard.md'} and .html")
    return ranked


def _leaf_sum(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_leaf_sum(v) for v in value.values())
    return int(value) if isinstance(value, (int, float)) else 0


def _tiny_qwen(directory: Path, seed: int) -> Path:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # weight-loading bars of a 1 MB model are noise in the demo
    if not (directory / "config.json").is_file():
        from mvbench.testing.tiny_qwen import build_tiny_qwen2_5_vl

        build_tiny_qwen2_5_vl(directory, seed=seed)
    return directory


err = Console(stderr=True)


def demo_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Working folder.")] = Path("demo-out"),
    sources: Annotated[Optional[str], typer.Option(help="Comma-separated sources (default: all).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Test samples per task per model.")] = 4,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Build processes (default: all cores).")] = None,
    skip_tiny_model: Annotated[bool, typer.Option("--skip-tiny-model", help="Evaluate only the prior baseline.")] = False,
) -> None:
    """Generate raw trees for every source, build them, evaluate reference models, print the leaderboard."""
    from mvbench.leaderboard import render

    models = (PRIOR_BASELINE,) if skip_tiny_model else (PRIOR_BASELINE, TINY_QWEN)
    output_dir(out, "--out")
    chosen = [s.strip() for s in sources.split(",") if s.strip()] if sources else None
    unknown = sorted(set(chosen or ()) - set(fixture_sources()))
    if unknown:
        raise typer.BadParameter(f"--sources: no fixture for {', '.join(unknown)}; known: {', '.join(fixture_sources())}")
    ranked = run_demo(out, sources=chosen, models=models,
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
