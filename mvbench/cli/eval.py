"""``mvbench eval``: evaluate a model on MedVidBench data."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from mvbench.eval.harness import EvalConfig, run_eval
from mvbench.eval.official import LEADERBOARD_URL, OFFICIAL_TEST
from mvbench.tasks import LEADERBOARD_KEYS

err = Console(stderr=True)


def _split_list(value: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def default_out(model: str, data: str) -> Path:
    """``runs/<model>__<data>``: e.g. ``runs/qwen2.5-vl-7b__official-test``."""
    def slug(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.") or "run"

    model_name = Path(model).name if Path(model).is_dir() else model
    return Path("runs") / f"{slug(model_name)}__{slug(Path(data).stem if data != OFFICIAL_TEST else data)}"


def eval_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Alias (qwen2.5-vl-7b, gpt-4.1, ...), local checkpoint, Hub id, openai:NAME, gemini:NAME, or baseline:prior.")],
    data: Annotated[Optional[str], typer.Option("--data", "-d", help="official-test (default: the public MedVidBench test set, fetched from the Hub once and cached), a built dataset folder, an official MedVidBench JSON, or a Hub dataset id.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (predictions.jsonl, results.json, submission.json); default runs/MODEL__DATA.")] = None,
    data_revision: Annotated[Optional[str], typer.Option(help="Branch, tag or commit of official-test or a Hub dataset (default: the main branch; the commit it resolves to is recorded in results.json).")] = None,
    tp: Annotated[Optional[int], typer.Option("--tp", help="Tensor parallel size of a launched vLLM (GPUs per model replica).")] = None,
    dp: Annotated[Optional[int], typer.Option("--dp", help="Data parallel size of a launched vLLM (model replicas); needs tp × dp GPUs.")] = None,
    backend: Annotated[Optional[str], typer.Option(help="Override the backend: vllm, openai, gemini, hf.")] = None,
    base_url: Annotated[Optional[str], typer.Option(help="Use this running OpenAI-compatible server instead of launching vLLM.")] = None,
    frames_root: Annotated[Optional[Path], typer.Option(help="Folder of the official test frames (for official JSON input).")] = None,
    split: Annotated[str, typer.Option(help="Split of a built or Hub dataset.")] = "test",
    tasks: Annotated[Optional[str], typer.Option(help="Comma-separated tasks: TAG,STG,DVC,VS,RC,NAP,SA,CVS.")] = None,
    sources: Annotated[Optional[str], typer.Option(help="Comma-separated data sources (AVOS, NurViD, ...).")] = None,
    limit: Annotated[Optional[int], typer.Option(help="At most this many samples per task.")] = None,
    prompt_mode: Annotated[str, typer.Option(help="zeroshot, or oneshot (one worked example per qa_type, as the official one-shot inference).")] = "zeroshot",
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 8,
    seed: Annotated[int, typer.Option(help="Sampling seed (part of the cache key).")] = 0,
    frames_as: Annotated[Optional[str], typer.Option(help="Send frames as 'video' or 'images' (default: the model's).")] = None,
    video_timing: Annotated[str, typer.Option(help="Temporal positions of a video: 'official' (the leaderboard's runs: 2 fps for every video) or 'record' (each record's metadata.fps).")] = "official",
    frame_encoding: Annotated[str, typer.Option(help="Frames sent to a model server as 'png' (lossless: the pixels the official inference gives vLLM) or 'jpeg' (quality 95, ~4x smaller).")] = "png",
    max_pixels: Annotated[Optional[int], typer.Option(help="Per-frame pixel budget (default 48*28*28).")] = None,
    min_pixels: Annotated[Optional[int], typer.Option(help="Per-frame pixel floor (default 8*28*28).")] = None,
    max_tokens: Annotated[Optional[int], typer.Option(help="New-token budget (default 256).")] = None,
    judge: Annotated[Optional[str], typer.Option(help="Judge model for DVC/VS/RC llm scores (default gpt-4.1 when OPENAI_API_KEY is set).")] = None,
    judge_base_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible judge server (e.g. a local vLLM).")] = None,
    no_judge: Annotated[bool, typer.Option("--no-judge", help="Skip the LLM judge (results say so).")] = False,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Response cache folder (default $MVBENCH_CACHE/responses, ~/.cache/mvbench/responses); the judge's replies are cached in a judge/ folder beside it.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the response cache.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds per request attempt.")] = 300.0,
    max_retries: Annotated[int, typer.Option(help="Retries per request.")] = 5,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Discard predictions already in --out instead of resuming them.")] = False,
    vllm_python: Annotated[Optional[str], typer.Option(help="Python that runs a launched vLLM (e.g. .venv-vllm/bin/python), as `python -m vllm.entrypoints.openai.api_server`.")] = None,
    vllm_arg: Annotated[Optional[list[str]], typer.Option("--vllm-arg", metavar="FLAG", help="Extra flag for a launched vLLM server (repeat), e.g. --vllm-arg=--gpu-memory-utilization=0.8.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print results.json to stdout.")] = False,
) -> None:
    """Evaluate a model on the 8 MedVidBench tasks with leaderboard-identical metrics."""
    data = data or OFFICIAL_TEST
    out = out or default_out(model, data)
    kwargs = {}
    if no_cache:
        kwargs["cache_dir"] = None
    elif cache_dir is not None:
        kwargs["cache_dir"] = cache_dir
    try:
        cfg = EvalConfig(data=data, model=model, out_dir=out, backend=backend, base_url=base_url,
                         frames_root=str(frames_root) if frames_root else None, split=split,
                         tasks=_split_list(tasks), sources=_split_list(sources), limit=limit,
                         prompt_mode=prompt_mode, concurrency=concurrency, seed=seed, frames_as=frames_as,
                         video_timing=video_timing, frame_encoding=frame_encoding,
                         max_pixels=max_pixels, min_pixels=min_pixels, max_tokens=max_tokens, judge=judge,
                         judge_base_url=judge_base_url, no_judge=no_judge, timeout_s=timeout,
                         max_retries=max_retries, overwrite=overwrite, vllm_python=vllm_python,
                         vllm_args=tuple(vllm_arg or ()), data_revision=data_revision, tp=tp, dp=dp, **kwargs)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as progress:
        def factory(total: int):
            task_id = progress.add_task(f"{model}", total=total)
            return lambda: progress.advance(task_id)

        results = run_eval(cfg, progress_factory=factory)
    scored = bool(results["counts"]["scored_with_ground_truth"])
    if json_out:
        typer.echo(json.dumps(results, indent=2, allow_nan=False))
    elif scored:
        print_metrics(results, title=f"{model} on {Path(data).name}")
        err.print(f"wrote {out}/results.json, predictions.jsonl, submission.json")
    if not results["complete"]:
        err.print(f"[bold red]incomplete:[/] {incomplete_reason(results)} (scored as empty answers, listed in "
                  "results.json); rerun the same command to retry them", highlight=False)
        raise typer.Exit(1)
    if not scored:
        subset = "" if results.get("submission_complete") else " (a subset: the leaderboard needs every test sample)"
        typer.echo(f"wrote {out / 'submission.json'}{subset}; this data has no ground truth, so scores come from "
                   f"the MedVidBench leaderboard: upload that file at {LEADERBOARD_URL}", err=True)


def incomplete_reason(results: dict) -> str:
    """Why a run is incomplete, in words: failed samples and empty answers.

    >>> incomplete_reason({"counts": {"failed": 2, "empty_answers": 3, "samples": 9}})
    '2 samples failed, 3 answers are empty'
    >>> incomplete_reason({"counts": {"failed": 0, "empty_answers": 9, "samples": 9}})
    'every answer (9) is empty'
    """
    c = results.get("counts", {})
    failed, empty, total = c.get("failed", 0), c.get("empty_answers", 0), c.get("samples", 0)
    parts = []
    if failed:
        parts.append(f"{failed} samples failed")
    if empty:
        parts.append(f"every answer ({empty}) is empty" if empty == total else f"{empty} answers are empty")
    return ", ".join(parts) or "the run stopped early"


def print_metrics(results: dict, title: str) -> None:
    """The ten leaderboard metrics as a table on stdout."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k in LEADERBOARD_KEYS:
        table.add_row(k, "—" if results.get(k) is None else f"{results[k]:.4f}")
    Console().print(table)
    c = results.get("counts", {})
    Console().print(f"samples {c.get('samples')}, answered {c.get('answered')}, empty {c.get('empty_answers')}, "
                    f"failed {c.get('failed')}; "
                    f"judge: {(results.get('judge') or {}).get('model') or results.get('judge_skipped_reason')}")


def register(app: typer.Typer) -> None:
    """Add ``eval``."""
    app.command("eval")(eval_command)
