"""``mvbench generate``: the GPT and Gemini caption answers of a built dataset (DVC, VS, RC)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table

err = Console(stderr=True)


def _split(value: Optional[str]) -> Optional[tuple[str, ...]]:
    return tuple(v.strip() for v in value.split(",") if v.strip()) or None if value else None


def _money(v: float | None) -> str:
    return "unpriced" if v is None else f"${v:,.2f}"


def print_estimate(est: dict) -> None:
    """The ``--estimate`` table on stdout."""
    table = Table(title=f"estimate: {est['instances']} caption instances "
                        f"({', '.join(f'{t} {n}' for t, n in est['by_task'].items())})")
    for col in ("writer", "model", "calls", "already done", "input images", "input tokens", "output tokens",
                "cost (list)", "cost (batch)"):
        table.add_column(col, justify="left" if col in ("writer", "model") else "right")
    for w in est["writers"]:
        table.add_row(w["variant"], w["model"], f"{w['calls']:,}", f"{w['done']:,}", f"{w['images']:,}",
                      f"{w['input_tokens']:,}", f"{w['output_tokens']:,}", _money(w["cost_usd"]),
                      _money(w["batch_cost_usd"]))
    table.add_row("total", "", f"{sum(w['calls'] for w in est['writers']):,}", "", "", "", "",
                  _money(est["total_cost_usd"]), _money(est["total_batch_cost_usd"]))
    Console().print(table)
    Console().print(f"prices: {est['prices']['table']} (unverified figures: check the official pages). "
                    "Tokens: text at 4 characters per token, images by each provider's rule for the frame "
                    "size sent, outputs at the prompt files' typical answer length. No call was made.")


def print_summary(summary: dict) -> None:
    """Outcome and accounting tables on stdout."""
    table = Table(title=f"generated → {summary['out']}")
    for col in ("source", "task", "accepted", "rejected", "failed", "pending"):
        table.add_column(col)
    for source, by_task in summary["counts"].items():
        for task, c in by_task.items():
            table.add_row(source, task, *(str(c[k]) for k in ("accepted", "rejected", "failed", "pending")))
    Console().print(table)
    acc = Table(title="calls and cost (all runs into this folder)")
    for col in ("writer", "calls", "live", "batch", "cache", "retries", "input tokens", "output tokens", "cost"):
        acc.add_column(col, justify="left" if col == "writer" else "right")
    for name, t in summary["accounting"].items():
        acc.add_row(name, str(t["calls"]), str(t["live"]), str(t["batch"]), str(t["cached"]), str(t["retries"]),
                    f"{t['input_tokens']:,}", f"{t['output_tokens']:,}",
                    _money(t["cost_usd"]) + (f" (+{t['unpriced']} unpriced)" if t["unpriced"] else ""))
    Console().print(acc)
    run = "; ".join(f"{k}: {v.get('live', 0)} live, {v.get('batch', 0)} batch and {v.get('cached', 0)} cached "
                    f"answers ({v.get('requests_sent', 0)} requests, {v.get('retries', 0)} retries), "
                    f"{v.get('failed', 0)} failed, {_money(v.get('cost_usd'))}" for k, v in summary["this_run"].items())
    if run:
        err.print(f"this run: {run}")


def generate(
    dataset: Annotated[Path, typer.Argument(help="A built dataset (mvbench build).")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the generated dataset here (default: update DATASET in place).")] = None,
    sources: Annotated[Optional[str], typer.Option("--sources", help="Only these sources (comma-separated builder names or data_sources).")] = None,
    tasks: Annotated[Optional[str], typer.Option("--tasks", help="Only these caption tasks: DVC,VS,RC.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="At most N instances per source and task.")] = None,
    estimate: Annotated[bool, typer.Option("--estimate", help="Print calls, images, tokens and cost per provider, then exit (no call is made).")] = False,
    budget_usd: Annotated[Optional[float], typer.Option("--budget-usd", help="Stop cleanly before the spend (all runs into OUT) could pass this.")] = None,
    batch: Annotated[bool, typer.Option("--batch", help="Use the OpenAI Batch API and Gemini batch mode (about half the price; results within 24 h).")] = False,
    gpt_model: Annotated[str, typer.Option("--gpt-model", help="Writer of the *_gpt answers (OpenAI-compatible).")] = "gpt-4.1",
    gemini_model: Annotated[str, typer.Option("--gemini-model", help="Writer of the *_gemini answers.")] = "gemini-2.5-flash",
    openai_base_url: Annotated[Optional[str], typer.Option("--openai-base-url", help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL, else api.openai.com).")] = None,
    gemini_base_url: Annotated[Optional[str], typer.Option("--gemini-base-url", help="Gemini endpoint (default $GOOGLE_GEMINI_BASE_URL, else Google's).")] = None,
    temperature: Annotated[float, typer.Option("--temperature")] = 0.0,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Output budget per answer.")] = 1024,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Sampling seed sent to both writers (part of each call's identity).")] = None,
    gemini_thinking_budget: Annotated[Optional[int], typer.Option("--gemini-thinking-budget", help="Gemini thinking tokens (0: off, the default; -1: the model decides).")] = 0,
    frames_per_call: Annotated[int, typer.Option("--frames-per-call", help="Frames sent per request at most.")] = 16,
    max_side: Annotated[int, typer.Option("--max-side", help="Longest frame side sent, in pixels.")] = 512,
    image_detail: Annotated[str, typer.Option("--image-detail", help="OpenAI image detail: low, high or auto.")] = "auto",
    concurrency: Annotated[int, typer.Option("--concurrency", help="Requests in flight per writer.")] = 8,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request attempt.")] = 120.0,
    max_retries: Annotated[int, typer.Option("--max-retries", help="Retries per request.")] = 5,
    poll_interval: Annotated[float, typer.Option("--poll-interval", help="Seconds between batch polls.")] = 30.0,
    max_requeues: Annotated[int, typer.Option("--max-requeues", help="Batch mode: times a failed or expired line is resubmitted in one run.")] = 2,
    agreement_threshold: Annotated[float, typer.Option("--agreement-threshold", help="Reject pairs whose MiniLM cosine is below this.")] = 0.3,
    min_mention_recall: Annotated[float, typer.Option("--min-mention-recall", help="Share of the annotated labels an answer must name.")] = 0.5,
    dvc_min_iou: Annotated[float, typer.Option("--dvc-min-iou", help="Each annotated DVC segment must be matched by an answer segment with at least this tIoU.")] = 0.5,
    validator: Annotated[Optional[str], typer.Option("--validator", help="Also have this OpenAI-compatible model rate each pair (a paid call per pair, within --budget-usd).")] = None,
    validator_base_url: Annotated[Optional[str], typer.Option("--validator-base-url", help="The validator's endpoint.")] = None,
    validator_min_score: Annotated[int, typer.Option("--validator-min-score", help="Reject an answer the validator scores below this (1-5).")] = 3,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Response cache (default $MVBENCH_CACHE/generation, else ~/.cache/mvbench/generation).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="No response cache (the run's journal still prevents repeated calls).")] = False,
    prices: Annotated[Optional[Path], typer.Option("--prices", help="Price table (TOML) replacing the built-in one.")] = None,
    raw_root: Annotated[Optional[list[str]], typer.Option("--raw-root", metavar="SOURCE=PATH", help="Raw root of a source, for datasets built without annotation files.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary (or estimate) as JSON.")] = False,
) -> None:
    """Write the *_gpt and *_gemini answers of DVC, VS and RC from the expert annotations (paid, resumable)."""
    run_generate_command(dataset, out=out, sources=sources, tasks=tasks, limit=limit, estimate=estimate,
                         budget_usd=budget_usd, batch=batch, gpt_model=gpt_model, gemini_model=gemini_model,
                         openai_base_url=openai_base_url, gemini_base_url=gemini_base_url, temperature=temperature,
                         max_tokens=max_tokens, seed=seed, gemini_thinking_budget=gemini_thinking_budget,
                         frames_per_call=frames_per_call, max_side=max_side,
                         image_detail=image_detail, concurrency=concurrency, timeout_s=timeout,
                         max_retries=max_retries, poll_interval_s=poll_interval, max_requeues=max_requeues,
                         agreement_threshold=agreement_threshold, min_mention_recall=min_mention_recall,
                         dvc_min_iou=dvc_min_iou, validator_model=validator,
                         validator_base_url=validator_base_url, validator_min_score=validator_min_score,
                         no_cache=no_cache, cache_dir=cache_dir,
                         prices=prices, raw_root=raw_root, json_out=json_out)


def run_generate_command(dataset: Path, *, no_cache: bool = False, cache_dir: Path | None = None,
                         sources: str | None = None, tasks: str | None = None, raw_root: list[str] | None = None,
                         openai_base_url: str | None = None, gemini_base_url: str | None = None,
                         json_out: bool = False, **options) -> dict:
    """Build the config from CLI values, run, print; shared by ``generate`` and ``build --generate``."""
    from mvbench.generation.config import GenerateConfig
    from mvbench.generation.run import load_dotenv, run_generate

    load_dotenv(Path(".env"))
    kwargs = dict(options)
    if no_cache:
        kwargs["cache_dir"] = None
    elif cache_dir is not None:
        kwargs["cache_dir"] = cache_dir
    if openai_base_url:
        kwargs["openai_base_url"] = openai_base_url
    if gemini_base_url:
        kwargs["gemini_base_url"] = gemini_base_url
    roots = {}
    for item in raw_root or []:
        if "=" not in item:
            raise typer.BadParameter(f"--raw-root needs SOURCE=PATH, not {item!r}")
        name, path = item.split("=", 1)
        roots[name.strip()] = Path(path)
    try:
        cfg = GenerateConfig(dataset=dataset, sources=_split(sources), tasks=_split(tasks), raw_roots=roots, **kwargs)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[cost]}"),
                  console=err, transient=True) as progress:
        def factory(total: int):
            spent = {"usd": 0.0}
            task_id = progress.add_task("calls", total=total, cost="$0.00")

            def advance(n: int, cost: float) -> None:
                spent["usd"] += cost
                progress.update(task_id, advance=n, cost=f"${spent['usd']:.2f}")
            return advance

        summary = run_generate(cfg, progress_factory=factory)
    if json_out:
        typer.echo(json.dumps(summary, indent=2, allow_nan=False))
    elif "estimate" in summary:
        print_estimate(summary["estimate"])
    else:
        print_summary(summary)
    if "estimate" in summary:
        return summary
    if summary["stopped"] == "budget":
        err.print(f"stopped at the budget: ${summary['spent_usd']:.2f} spent into {cfg.out}; what was answered "
                  "is kept; rerun with a larger --budget-usd to go on")
    if summary["failed_calls"]:
        err.print(f"[bold red]incomplete:[/] {summary['failed_calls']} calls failed after retries (listed in "
                  f"{cfg.out}/.generation/failures.jsonl; their drafts are kept); rerun the same command to retry them")
        raise typer.Exit(1)
    return summary


def register(app: typer.Typer) -> None:
    """Add ``generate``."""
    app.command("generate")(generate)
