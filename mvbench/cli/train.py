"""``mvbench train sft|grpo`` and ``mvbench reward-stats``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from mvbench.cli import checks

err = Console(stderr=True)
train_app = typer.Typer(name="train", no_args_is_help=True, add_completion=False,
                        help="SFT and MedGRPO training (TRL + accelerate; configs under training/configs/).")

ConfigOpt = Annotated[str, typer.Option("--config", "-c", help="A YAML config: a path or a shipped name "
                                        "(smoke.yaml, grpo-qwen2_5_vl-7b-8gpu.yaml, ...).")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="Checkpoint directory or Hub id "
                                                 "(overrides the config's model).")]
DataOpt = Annotated[Optional[str], typer.Option("--data", "-d", help="Built dataset folder or official JSON "
                                                "(overrides the config's data).")]
OutOpt = Annotated[Optional[str], typer.Option("--out", "-o", help="Output folder (overrides the config's out).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", metavar="KEY=VALUE",
                                                     help="Override a config key, e.g. --set grpo.learning_rate=1e-6 "
                                                          "(repeat; values are YAML).")]
NoResumeOpt = Annotated[bool, typer.Option("--no-resume", help="Start over instead of resuming from the last "
                                                               "checkpoint in the output folder (refused if it "
                                                               "holds checkpoints: use another --out).")]
PrintOpt = Annotated[bool, typer.Option("--print-config", help="Print the resolved config and exit.")]
PrintLaunchOpt = Annotated[bool, typer.Option("--print-launch", help="Print the accelerate launch command a "
                                                                     "multi-GPU config runs, and exit.")]


def _cli_args(config: str, model, data, out, sets, no_resume, extra: list[str]) -> list[str]:
    args = ["--config", str(config)]
    for flag, value in (("--model", model), ("--data", data), ("--out", out)):
        if value:
            args += [flag, str(value)]
    for item in sets or []:
        args += ["--set", item]
    if no_resume:
        args.append("--no-resume")
    return args + extra


def _run(stage: str, config: str, model, data, out, sets, no_resume, print_config, print_launch,
         extra_sets: list[str], extra_args: list[str]) -> None:
    from mvbench.training.config import dump_yaml, load_config
    from mvbench.training.runner import check_device, launch_command, run_stage

    cfg = load_config(config, [*(sets or []), *extra_sets], model=model, data=data, out=out)
    if print_config:
        typer.echo(dump_yaml(cfg.to_dict()))
        return
    command = launch_command(cfg, stage, _cli_args(config, model, data, out, sets, no_resume, extra_args))
    if print_launch:
        typer.echo(" ".join(command) if command else "(one process: no accelerate launch needed)")
        return
    if command is not None:
        check_device(cfg, stage)
        err.print(f"launching {cfg.launch.num_processes} processes: {' '.join(command)}", highlight=False)
        raise typer.Exit(subprocess.call(command, env={**os.environ, "ACCELERATE_LAUNCHED": "1"}))
    summary = run_stage(stage, cfg, resume=not no_resume)
    err.print(f"[bold]checkpoint:[/] {summary['final_checkpoint']} (step {summary['global_step']}); "
              f"evaluate it with: {eval_hint(summary['final_checkpoint'], cfg)}", highlight=False)
    typer.echo(summary["final_checkpoint"])


def eval_hint(checkpoint: str, cfg) -> str:
    """The ``mvbench eval`` command for a trained checkpoint, with the video inputs it was trained on
    (and the in-process backend for the CPU smoke config).

    Args:
        checkpoint: the checkpoint folder.
        cfg: the run's :class:`~mvbench.training.config.TrainConfig`.
    """
    video = cfg.video
    backend = " --backend hf" if cfg.smoke else ""
    return (f"mvbench eval --model {checkpoint} --data DATA --out RUN{backend} --frames-as video "
            f"--video-timing {video.video_timing} --max-pixels {video.max_pixels} --min-pixels {video.min_pixels}")


@train_app.command("sft")
def sft_command(config: ConfigOpt, model: ModelOpt = None, data: DataOpt = None, out: OutOpt = None,
                set_: SetOpt = None, no_resume: NoResumeOpt = False, print_config: PrintOpt = False,
                print_launch: PrintLaunchOpt = False) -> None:
    """Supervised fine-tuning on the reference answers, frames as one video (as mvbench eval feeds them)."""
    _run("sft", config, model, data, out, set_, no_resume, print_config, print_launch, [], [])


@train_app.command("grpo")
def grpo_command(
    config: ConfigOpt, model: ModelOpt = None, data: DataOpt = None, out: OutOpt = None, set_: SetOpt = None,
    reward_stats: Annotated[Optional[Path], typer.Option(help="Normalisation statistics from `mvbench "
                                                         "reward-stats` (sets grpo.rewards.normalization.stats).")] = None,
    no_reward_norm: Annotated[bool, typer.Option("--no-reward-norm", help="Raw rewards, no MedGRPO "
                                                 "normalisation (the paper's ablation).")] = False,
    no_resume: NoResumeOpt = False, print_config: PrintOpt = False, print_launch: PrintLaunchOpt = False,
) -> None:
    """MedGRPO from an SFT checkpoint: per-task rewards from the task registry, normalised per (source, task)."""
    extra_sets, extra_args = [], []
    if reward_stats is not None:
        if not (print_config or print_launch):  # (printing the config or the launch needs no file)
            from mvbench.dataset_io import load_json

            load_json(reward_stats)  # a missing or broken stats file fails here, before any work
        extra_sets.append(f"grpo.rewards.normalization.stats={reward_stats}")
        extra_args += ["--reward-stats", str(reward_stats)]
    if no_reward_norm:
        extra_sets.append("grpo.rewards.normalization.enabled=false")
        extra_args.append("--no-reward-norm")
    _run("grpo", config, model, data, out, set_, no_resume, print_config, print_launch, extra_sets, extra_args)


def reward_stats_command(
    predictions: Annotated[list[Path], typer.Argument(help="`mvbench eval` run folders (or their "
                                                      "predictions.jsonl) of the SFT model on the train split.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The stats JSON to write.")],
    config: Annotated[Optional[str], typer.Option("--config", "-c", help="Take the rewarded tasks and judge "
                                                  "from this training config's grpo.rewards.")] = None,
    data: Annotated[Optional[str], typer.Option("--data", "-d", help="The dataset the runs evaluated (default: "
                                                "from each run's results.json).")] = None,
    frames_root: Annotated[Optional[Path], typer.Option(help="Official frames folder, for official JSON data.")] = None,
    split: Annotated[Optional[str], typer.Option(help="The evaluated split (default: the run's).")] = None,
    tasks: Annotated[Optional[str], typer.Option(help="Comma-separated rewarded tasks (default: the config's, "
                                                 "else TAG,STG,VS,RC).")] = None,
    judge: Annotated[Optional[str], typer.Option(help="Judge model for the caption rewards' judge half.")] = None,
    judge_base_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible judge server.")] = None,
    no_judge: Annotated[bool, typer.Option("--no-judge", help="Skip the judge half (similarity statistics "
                                           "only).")] = False,
) -> None:
    """p25/p50/p75/n of each raw reward per (data_source, task) from SFT rollouts, for MedGRPO normalisation."""
    from dataclasses import replace

    from mvbench.training.config import load_config
    from mvbench.training.judge_reward import JudgeConfig
    from mvbench.training.reward_stats import compute_reward_stats
    from mvbench.training.rewards import RewardConfig, RewardSuite

    from mvbench.training.reward_stats import run_files

    checks.output_file(out, "--out")
    for path in predictions:  # bad inputs fail in one line before any note or model loading
        run_files(path)
    rewards = load_config(config, smoke=True).grpo.rewards if config else RewardConfig()
    rewards = replace(rewards, normalization=replace(rewards.normalization, enabled=False))
    if tasks:
        rewards = checks.config(replace, rewards, tasks=tuple(t.strip().upper() for t in tasks.split(",")
                                                              if t.strip()))
    if no_judge:
        rewards = replace(rewards, judge=replace(rewards.judge, enabled=False))
    elif judge or judge_base_url:
        rewards = replace(rewards, judge=replace(rewards.judge, enabled=True, model=judge or rewards.judge.model,
                                                 base_url=judge_base_url or rewards.judge.base_url))
    elif not rewards.judge.base_url and not os.environ.get("OPENAI_API_KEY"):
        err.print("no judge configured (no OPENAI_API_KEY, --judge-base-url or config): caption statistics cover "
                  "the similarity half only", highlight=False)
        rewards = replace(rewards, judge=JudgeConfig(enabled=False))
    suite = RewardSuite(rewards)
    try:
        stats = compute_reward_stats([str(p) for p in predictions], suite, data=data, frames_root=frames_root,
                                     split=split)
    finally:
        suite.close()
    stats.save(out)
    table = Table(title=f"raw reward statistics -> {out}")
    for col in ("data_source", "component", "n", "p25", "p50", "p75"):
        table.add_column(col, justify="left" if col in ("data_source", "component") else "right")
    for source, comps in stats.pairs.items():
        for component, s in comps.items():
            table.add_row(source, component, str(s.n), f"{s.p25:.4f}", f"{s.p50:.4f}", f"{s.p75:.4f}")
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add ``train`` (``sft``, ``grpo``) and ``reward-stats``."""
    app.add_typer(train_app, name="train")
    app.command("reward-stats")(reward_stats_command)
