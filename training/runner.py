"""``mvbench train sft|grpo``: one function per stage, from a config to a saved, evaluable checkpoint.

Both stages: check the device (recipes need CUDA; only the smoke config runs on CPU), load the
data as ``mvbench eval`` would (:mod:`mvbench.training.data`), the model and its processor
(:func:`mvbench.qwen_inputs.load_processor`), build the TRL trainer, resume from the last
``checkpoint-N`` in the output folder, train, and save ``OUT/final`` (LoRA merged into the
weights) so that ``mvbench eval --backend hf --model OUT/final`` (or vLLM) evaluates it: every
checkpoint holds the stock Qwen processor files (:func:`mvbench.qwen_inputs.stock_processor_configs`).
The resolved config, reward curves and plot are written beside every checkpoint
(:mod:`mvbench.training.progress`); ``OUT/train_summary.json`` ends the run. LoRA runs on one
process (the merge is single-process).

A config with ``launch.num_processes > 1`` re-runs the same command under ``accelerate launch``
with its accelerate config (:func:`launch_command`).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

from mvbench import __version__
from mvbench.dataset_io import atomic_write_bytes, atomic_write_json
from mvbench.errors import InputError
from mvbench.inference import GenerationParams
from mvbench.models import TRAIN_CONFIG_FILE
from mvbench.strict_json import finite_or_none
from mvbench.training.config import TrainConfig, dump_yaml, resolve_config_path

log = logging.getLogger("mvbench.training")

SMOKE_CONFIG = "training/configs/smoke.yaml"
FINAL = "final"
SUMMARY = "train_summary.json"
_VERSIONED = ("torch", "transformers", "trl", "peft", "accelerate", "deepspeed", "vllm", "datasets")
LAUNCHED_ENV = ("LOCAL_RANK", "ACCELERATE_LAUNCHED")


def package_versions() -> dict[str, str | None]:
    """Versions that change a training run."""
    out: dict[str, str | None] = {"mvbench": __version__, "python": sys.version.split()[0]}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# ----- device and launch ---------------------------------------------------------------------------
def check_device(cfg: TrainConfig, stage: str = "grpo") -> bool:
    """Whether CUDA is used; raises when the config needs GPUs that are not there.

    Raises:
        InputError: the recipe needs CUDA (``launch.requires_gpu``) and none (or too few) is visible.
    """
    import torch

    cuda = torch.cuda.is_available()
    need = cfg.launch.num_processes
    if cfg.launch.requires_gpu and not cuda:
        raise InputError(f"this config trains on {need} CUDA GPU{'s' if need > 1 else ''} and none is visible on "
                         f"this machine; on CPU run the smoke config instead: make train-{stage} CONFIG={SMOKE_CONFIG}")
    if cfg.launch.requires_gpu and torch.cuda.device_count() < need and not launched():
        raise InputError(f"this config launches {need} processes but only {torch.cuda.device_count()} CUDA GPUs "
                         "are visible; set launch.num_processes (and the accelerate config) to match")
    return cuda


def launched() -> bool:
    """Whether this process was started by ``accelerate launch``/``torchrun``."""
    return any(k in os.environ for k in LAUNCHED_ENV)


def launch_command(cfg: TrainConfig, stage: str, cli_args: list[str]) -> list[str] | None:
    """The ``accelerate launch`` command that re-runs this command on every GPU, or None (one process).

    Args:
        cfg: the config (its ``launch`` section).
        stage: ``sft`` or ``grpo``.
        cli_args: the ``mvbench train <stage>`` arguments to repeat.
    """
    if cfg.launch.num_processes <= 1 or launched():
        return None
    accelerate_config = resolve_config_path(cfg.launch.accelerate_config)
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config),
            "--num_processes", str(cfg.launch.num_processes), "-m", "mvbench.cli", "train", stage, *cli_args]


# ----- model and data ------------------------------------------------------------------------------
def resolve_model(cfg: TrainConfig, out: Path) -> Path:
    """A local checkpoint directory: the configured one, a Hub snapshot, or the smoke model."""
    if cfg.model is None:
        from mvbench.training.smoke import smoke_assets, smoke_model

        return smoke_model(smoke_assets(out), cfg.seed)
    path = Path(cfg.model).expanduser()
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(cfg.model))
    except Exception as e:  # offline, missing, gated: the same one line for the user
        raise InputError(f"model is neither a local checkpoint nor a downloadable Hub id: {type(e).__name__}: {e}",
                         path=cfg.model) from None


def resolve_data(cfg: TrainConfig, out: Path) -> str:
    """The dataset: the configured one or the smoke fixture build."""
    if cfg.data is None:
        from mvbench.training.smoke import smoke_assets, smoke_data

        return str(smoke_data(smoke_assets(out), cfg.seed))
    return cfg.data


def load_model(model_dir: Path, dtype: str, attn_implementation: str):
    """The checkpoint as an image-text-to-text model (Qwen2/2.5/3-VL)."""
    import torch
    from transformers import AutoModelForImageTextToText

    torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
    try:
        return AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch_dtype,
                                                           attn_implementation=attn_implementation)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot load the model: {e}", path=model_dir) from None


def load_policy(model_dir: Path, weights_from: str | None, dtype: str, attn_implementation: str):
    """The model to train: ``model_dir``'s, or a resumed full fine-tune's checkpoint weights.

    A resumed model still names ``model_dir`` as its origin (``config._name_or_path``): TRL builds
    the KL reference model (``beta`` > 0) from that name, and the reference is the run's starting
    model, not the checkpoint it resumes from.

    Args:
        model_dir: the run's starting model.
        weights_from: a ``checkpoint-N`` folder whose weights to load instead (see
            :mod:`mvbench.training.resume`), or None.
        dtype / attn_implementation: as :func:`load_model`.
    """
    model = load_model(Path(weights_from) if weights_from else model_dir, dtype, attn_implementation)
    if weights_from:
        model.config._name_or_path = str(model_dir)
    return model


def peft_config(cfg: TrainConfig):
    """A ``peft.LoraConfig`` for ``cfg.lora``, or None (full fine-tune)."""
    if cfg.lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=list(cfg.lora.target_modules), task_type="CAUSAL_LM")


def trainer_kwargs(stage: str, cfg: TrainConfig, out: Path, cuda: bool) -> dict[str, Any]:
    """The ``SFTConfig``/``GRPOConfig`` fields mvbench sets (the config's ``TRAINER_COMMON_KEYS`` and
    the stage's ``trainer_keys``); the stage's ``extra`` adds the others."""
    s = cfg.sft if stage == "sft" else cfg.grpo
    common = dict(output_dir=str(out), learning_rate=s.learning_rate, lr_scheduler_type=s.lr_scheduler_type,
                  warmup_steps=s.warmup_steps, weight_decay=s.weight_decay, num_train_epochs=s.num_train_epochs,
                  max_steps=s.max_steps, per_device_train_batch_size=s.per_device_train_batch_size,
                  gradient_accumulation_steps=s.gradient_accumulation_steps,
                  gradient_checkpointing=s.gradient_checkpointing, bf16=bool(s.bf16 and cuda), use_cpu=not cuda,
                  logging_steps=s.logging_steps, save_strategy="steps", save_steps=s.save_steps,
                  save_total_limit=s.save_total_limit, dataloader_num_workers=s.dataloader_num_workers,
                  seed=cfg.seed, report_to="none", remove_unused_columns=False)
    if stage == "sft":
        return {**common, "max_length": None, "dataset_kwargs": {"skip_prepare_dataset": True}}
    return {**common, "num_generations": s.num_generations, "max_completion_length": s.max_completion_length,
            "temperature": s.temperature, "top_p": s.top_p, "beta": s.beta, "epsilon": s.epsilon,
            "epsilon_high": s.epsilon_high, "scale_rewards": s.scale_rewards, "loss_type": s.loss_type,
            "steps_per_generation": s.steps_per_generation, "use_vllm": s.use_vllm, "vllm_mode": s.vllm_mode,
            "vllm_gpu_memory_utilization": s.vllm_gpu_memory_utilization,
            "vllm_server_base_url": s.vllm_server_base_url, "vllm_tensor_parallel_size": s.vllm_tensor_parallel_size,
            "reward_weights": [1.0] * len(s.rewards.tasks)}


def trainer_args(stage: str, cfg: TrainConfig, out: Path, cuda: bool) -> Any:
    """The TRL ``SFTConfig``/``GRPOConfig`` of a stage (:func:`trainer_kwargs` plus the stage's ``extra``).

    Raises:
        InputError: TRL refuses the arguments (an unknown ``extra`` key, values it rejects), in one line.
    """
    from trl import GRPOConfig, SFTConfig

    extra = (cfg.sft if stage == "sft" else cfg.grpo).extra
    try:
        return (SFTConfig if stage == "sft" else GRPOConfig)(**trainer_kwargs(stage, cfg, out, cuda), **extra)
    except (TypeError, ValueError) as e:
        raise InputError(f"TRL refuses the {stage} settings: {e} (check {stage}.extra and the {stage} section)") \
            from None


def save_final(trainer: Any, processor: Any, cfg: TrainConfig, model_dir: Path, out: Path) -> Path:
    """``OUT/final``: full weights (LoRA merged) plus the processor, loadable by ``mvbench eval``."""
    final = out / FINAL
    if cfg.lora is None:
        trainer.save_model(str(final))
    else:
        adapter = out / "final-adapter"
        trainer.save_model(str(adapter))
        if trainer.accelerator.is_main_process:
            from peft import PeftModel

            base = load_model(model_dir, cfg.model_dtype, cfg.attn_implementation)
            PeftModel.from_pretrained(base, adapter).merge_and_unload().save_pretrained(final)
    if trainer.accelerator.is_main_process:
        processor.save_pretrained(final)
    return final


# ----- the stages ----------------------------------------------------------------------------------
def run_stage(stage: str, cfg: TrainConfig, *, resume: bool = True) -> dict:
    """Train one stage and save ``OUT/final``.

    Args:
        stage: ``sft`` or ``grpo``.
        cfg: the config (overrides applied).
        resume: continue from the last ``checkpoint-N`` in ``cfg.out`` when there is one; False
            starts over and refuses an output folder that holds checkpoints.

    Returns:
        The run summary (also ``OUT/train_summary.json``): final checkpoint, steps, last metrics,
        data and reward-statistics provenance.

    Raises:
        InputError: no GPU for a GPU recipe, bad data or model, a missing stats file...
    """
    from mvbench import qwen_inputs
    from mvbench.training.advantages import check_trl_version
    from mvbench.training.data import load_training_data

    if stage not in ("sft", "grpo"):
        raise ValueError(f"stage must be 'sft' or 'grpo', not {stage!r}")
    cuda = check_device(cfg, stage)
    cfg.check_inputs()
    tasks = cfg.stage_tasks(stage)
    check_trl_version()
    out = cfg.out_dir(stage)
    earlier = sorted(p.name for p in out.glob("checkpoint-*") if p.is_dir()) if out.is_dir() else []
    if earlier and not resume:
        # transformers rotates checkpoints by step number: the new run's would be deleted before the old
        # ones, and a later run would resume an old one.
        raise InputError(f"--no-resume, but this folder holds an earlier run's checkpoints ({', '.join(earlier)}): "
                         "train into another --out, or move them away", path=out)
    out.mkdir(parents=True, exist_ok=True)
    # The trainer arguments come first: TRL's refusals fail before any expensive setup, and under DeepSpeed
    # ZeRO-3 they make from_pretrained partition the weights.
    args = trainer_args(stage, cfg, out, cuda)
    model_dir = resolve_model(cfg, out)
    data_path = resolve_data(cfg, out)
    params = GenerationParams(max_pixels=cfg.video.max_pixels, min_pixels=cfg.video.min_pixels,
                              video_timing=cfg.video.video_timing)  # type: ignore[arg-type]
    suite = None
    stats_provenance = None
    if stage == "grpo":
        suite, stats_provenance, cfg = _reward_suite(cfg, out, model_dir, data_path, params)
    data = load_training_data(data_path, stage=stage, params=params, split=cfg.split, frames_root=cfg.frames_root,
                              tasks=tasks, sources=list(cfg.sources) if cfg.sources else None, limit=cfg.limit,
                              balance_cap=cfg.grpo.balance_cap if stage == "grpo" else None, seed=cfg.seed)
    if suite is not None:
        suite.contexts = data.contexts()
    log.info("%s on %d records (%s) from %s", stage.upper(), len(data.records),
             ", ".join(f"{k} {v}" for k, v in data.counts.items()), data_path)
    processor = qwen_inputs.load_processor(model_dir)
    last = _last_checkpoint(out) if resume else None
    # A full fine-tune resumes from the checkpoint's weights through from_pretrained (see training/resume.py).
    weights_from = last if last and cfg.lora is None else None
    model = load_policy(model_dir, weights_from, cfg.model_dtype, cfg.attn_implementation)
    resolved = replace(cfg, model=str(model_dir), data=str(data_path), out=str(out))
    config_yaml = dump_yaml({"stage": stage, "config": resolved.to_dict(), "data": data.provenance(),
                             "reward_stats": stats_provenance, "video_inputs": _video_rule(params),
                             "versions": package_versions()})
    from mvbench.training.progress import ProgressCallback

    callbacks = [ProgressCallback(out, config_yaml, stage, resume_from=last)]
    if stage == "sft":
        from mvbench.training.sft import sft_trainer

        trainer = sft_trainer(model, processor, data.dataset(), data.inputs, params, args,
                              max_length=cfg.sft.max_length, peft_config=peft_config(cfg), callbacks=callbacks)
    else:
        from mvbench.training.grpo import VideoGRPOTrainer

        trainer = VideoGRPOTrainer(model=model, reward_funcs=suite.functions(), args=args,
                                   train_dataset=data.dataset(), processing_class=processor,
                                   peft_config=peft_config(cfg), callbacks=callbacks, sample_inputs=data.inputs,
                                   video_params=params, reward_suite=suite)
    trainer.weights_from = weights_from
    try:
        if last and _finished(last):
            # transformers would run one more step from a finished checkpoint: load it and stop there.
            log.info("%s already reached its last step: nothing left to train", last)
            trainer._load_from_checkpoint(last)  # the adapter of a LoRA run; a no-op for full weights
            trainer.state = trainer.state.load_from_json(str(Path(last) / "trainer_state.json"))
            metrics = {}
        else:
            if last:
                log.info("resuming from %s", last)
            metrics = trainer.train(resume_from_checkpoint=last).metrics
    finally:
        if suite is not None:
            suite.close()
    final = save_final(trainer, processor, cfg, model_dir, out)
    summary = {"stage": stage, "final_checkpoint": str(final), "resumed_from": last,
               "global_step": int(trainer.state.global_step),
               "train_metrics": {k: finite_or_none(v) for k, v in metrics.items()},
               "last_log": {k: finite_or_none(v) for k, v in (trainer.state.log_history or [{}])[-1].items()},
               "data": data.provenance(), "reward_stats": stats_provenance,
               "reward_normalisation": suite.normalizer.report() if suite is not None else None,
               "judge": suite.judge.info() if suite is not None and suite.judge is not None else None}
    if trainer.accelerator.is_main_process:
        atomic_write_bytes(final / TRAIN_CONFIG_FILE, config_yaml.encode("utf-8"))
        atomic_write_json(out / SUMMARY, summary)
    return summary


def _reward_suite(cfg: TrainConfig, out: Path, model_dir: Path, data_path: str, params: GenerationParams):
    from mvbench.training.normalization import Normalizer
    from mvbench.training.rewards import RewardSuite
    from mvbench.training.smoke import AUTO_STATS, smoke_assets, smoke_stats

    rewards = cfg.grpo.rewards
    norm = rewards.normalization
    if norm.enabled and norm.stats == AUTO_STATS:
        if not cfg.smoke:
            raise InputError("normalization.stats: auto is for the smoke config only; make the file with "
                             "`mvbench reward-stats` from SFT rollouts on the train split")
        raw_suite = RewardSuite(replace(rewards, normalization=replace(norm, enabled=False)))
        try:
            path = smoke_stats(smoke_assets(out), model_dir, Path(data_path), params, raw_suite,
                               max_tokens=cfg.grpo.max_completion_length)
        finally:
            raw_suite.close()
        norm = replace(norm, stats=str(path))
        rewards = replace(rewards, normalization=norm)
        cfg = replace(cfg, grpo=replace(cfg.grpo, rewards=rewards))
    normalizer = Normalizer(norm)
    provenance = None
    if norm.enabled:
        provenance = {"file": str(Path(norm.stats).resolve()), **normalizer.stats.provenance}
    return RewardSuite(rewards, normalizer=normalizer), provenance, cfg


def _finished(checkpoint: str) -> bool:
    """Whether a checkpoint's trainer state reached its run's last step."""
    import json

    try:
        state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return 0 < int(state.get("max_steps") or 0) <= int(state.get("global_step") or 0)


def _last_checkpoint(out: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(out)) if out.is_dir() else None


def _video_rule(params: GenerationParams) -> str:
    from mvbench.inference import timing_fps

    return (f"frames as one video via mvbench.qwen_inputs (the eval HF backend's definition); per-frame pixels "
            f"{params.min_pixels}..{params.max_pixels} on the 56-pixel grid; temporal positions "
            f"{params.video_timing} (official: {timing_fps('official', 1.0)} fps, second_per_grid_ts 1.0); "
            "RC box drawn on the start frame in place")
