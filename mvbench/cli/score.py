"""``mvbench score``: score predictions exactly as the MedVidBench leaderboard does."""

from __future__ import annotations

import importlib
import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from mvbench.errors import MvbenchError


class ScoreMode(str, Enum):
    """Scoring modes (only the leaderboard-identical one exists)."""

    leaderboard = "leaderboard"


def _make_judge(model: str, base_url: str | None):
    from mvbench.eval.judge import Judge

    try:
        module = importlib.import_module("mvbench.llm.openai_client")
    except ImportError:
        raise MvbenchError("the LLM judge needs mvbench.llm.openai_client, which is not installed here; "
                           "score with --no-judge") from None
    # the judge retries each pair itself (5 attempts, as the official script); no client retries on top
    client = module.OpenAIChatClient(model=model, base_url=base_url, max_retries=0)
    return Judge(client.complete, model=model)


def score(
    input: Annotated[Path, typer.Argument(metavar="INPUT", help="Merged predictions (official evaluator format) or a "
                                               "submission list [{id, qa_type, prediction}].")],
    ground_truth: Annotated[Optional[Path], typer.Option("--ground-truth", help="Test file with answers "
                                                          "(needed for a submission list).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Score file "
                                                    "(default: <INPUT stem>.scores.json).")] = None,
    no_judge: Annotated[bool, typer.Option("--no-judge", help="Skip the LLM judge (dvc_llm, vs_llm, "
                                                              "rc_llm are null).")] = False,
    judge: Annotated[str, typer.Option("--judge", help="Judge model.")] = "gpt-4.1",
    judge_base_url: Annotated[Optional[str], typer.Option("--judge-base-url", help="OpenAI-compatible "
                                                          "endpoint of the judge.")] = None,
    mode: Annotated[ScoreMode, typer.Option("--mode", help="Scoring mode.")] = ScoreMode.leaderboard,
) -> None:
    """Score INPUT; write the score file and <FILE stem>.samples.jsonl; print the ten metrics."""
    from mvbench.eval.score import load_score_input, score_records, write_outputs

    records = load_score_input(input, ground_truth)
    the_judge = None if no_judge else _make_judge(judge, judge_base_url)
    result = score_records(records, judge=the_judge, mode=mode.value)
    out = output or input.with_name(f"{input.stem}.scores.json")
    samples_path = write_outputs(result, out)
    typer.echo(json.dumps(result.metrics, indent=2))
    typer.echo(f"wrote {out} and {samples_path}", err=True)


def register(app: typer.Typer) -> None:
    """Add the ``score`` command to the mvbench CLI app."""
    app.command("score")(score)
