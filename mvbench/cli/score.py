"""``mvbench score``: score predictions exactly as the MedVidBench leaderboard does."""

from __future__ import annotations

import json
import logging
import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from mvbench.eval.bootstrap import DEFAULT_RESAMPLES
from mvbench.eval.judge import DEFAULT_MODEL

log = logging.getLogger(__name__)


class ScoreMode(str, Enum):
    """Scoring modes (only the leaderboard-identical one exists)."""

    leaderboard = "leaderboard"


def _make_judge(model: str, base_url: str | None):
    from mvbench.eval.judge import connect_judge, default_judge_cache

    return connect_judge(model, base_url, cache_dir=default_judge_cache())  # the replies eval caches


def _judge_model(no_judge: bool, judge: str | None, judge_base_url: str | None) -> str | None:
    """The judge model to use, or None to skip the judge (as ``mvbench eval`` decides).

    Raises:
        typer.BadParameter: conflicting or incomplete judge options.
    """
    if no_judge and (judge or judge_base_url):
        raise typer.BadParameter("--no-judge conflicts with --judge/--judge-base-url; drop one")
    if judge_base_url and not judge:
        raise typer.BadParameter("--judge-base-url needs --judge: name the model that server serves")
    if no_judge:
        return None
    if judge is None and not os.environ.get("OPENAI_API_KEY"):
        log.warning("no judge: set OPENAI_API_KEY, or pass --judge and --judge-base-url (a local "
                    "OpenAI-compatible server), or --no-judge; dvc_llm, vs_llm and rc_llm are null")
        return None
    return judge or DEFAULT_MODEL


def score(
    input: Annotated[Path, typer.Argument(metavar="INPUT", help="Merged predictions (official evaluator format) or a "
                                               "submission list [{id, qa_type, prediction}].")],
    ground_truth: Annotated[Optional[Path], typer.Option("--ground-truth", help="Test file with answers "
                                                          "(needed for a submission list).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Score file "
                                                    "(default: <INPUT stem>.scores.json).")] = None,
    no_judge: Annotated[bool, typer.Option("--no-judge", help="Skip the LLM judge (dvc_llm, vs_llm, "
                                                              "rc_llm are null).")] = False,
    judge: Annotated[Optional[str], typer.Option(
        "--judge", help=f"Judge model (default {DEFAULT_MODEL} when OPENAI_API_KEY is set; "
                        "otherwise the judge is skipped with a warning).")] = None,
    judge_base_url: Annotated[Optional[str], typer.Option(
        "--judge-base-url", help="OpenAI-compatible judge server (e.g. a local vLLM); needs --judge.")] = None,
    strict_ids: Annotated[bool, typer.Option(
        "--strict-ids", help="Fail when submission ids differ from the ground truth's (default: warn; "
                             "the leaderboard merges by position).")] = False,
    mode: Annotated[ScoreMode, typer.Option("--mode", help="Scoring mode.")] = ScoreMode.leaderboard,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Leave out records without a usable qa_type or ground truth (counted, listed in the "
                               "score file, warned about) instead of failing.")] = False,
    bootstrap: Annotated[int, typer.Option(
        "--bootstrap", metavar="N", help="Bootstrap draws for the 95% intervals (whole videos resampled; "
                                         "0: no intervals).")] = DEFAULT_RESAMPLES,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap draws.")] = 0,
) -> None:
    """Score INPUT; write the score file and <output stem>.samples.jsonl; print the ten metrics."""
    from mvbench.eval.bootstrap import BootstrapConfig, bootstrap_intervals
    from mvbench.cli.checks import output_file
    from mvbench.errors import InputError
    from mvbench.eval.score import load_score_input, score_records, write_outputs

    try:
        config = BootstrapConfig(resamples=bootstrap, seed=seed) if bootstrap else None
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    out = output_file(output or input.with_name(f"{input.stem}.scores.json"), "--output")
    records = load_score_input(input, ground_truth, strict_ids=strict_ids)  # bad input fails before any warning
    judge_model = _judge_model(no_judge, judge, judge_base_url)
    the_judge = None if judge_model is None else _make_judge(judge_model, judge_base_url)
    try:
        result = score_records(records, judge=the_judge, mode=mode.value, skip_invalid=skip_invalid)
    except InputError as e:
        if e.path is not None:
            raise
        raise InputError(e.reason, path=ground_truth or input, record=e.record) from None
    if config is not None:
        kept = [i for i, s in enumerate(result.samples) if "invalid" not in s]  # as the metrics
        result.summary["intervals"] = bootstrap_intervals([records[i] for i in kept],
                                                          [result.samples[i]["scores"] for i in kept], config,
                                                          point=result.metrics)
    samples_path = write_outputs(result, out)
    typer.echo(json.dumps(result.metrics, indent=2, allow_nan=False))
    typer.echo(f"wrote {out} and {samples_path}", err=True)


def register(app: typer.Typer) -> None:
    """Add the ``score`` command to the mvbench CLI app."""
    app.command("score")(score)
