"""Training configuration: YAML files under ``training/configs/``, overridable on the command line.

One file describes a run of both stages (``sft:`` and ``grpo:`` sections) plus what they share
(model, data, video inputs, LoRA, launch). Every section is a dataclass whose ``__post_init__``
raises ValueError saying what to change; unknown keys are errors (a typo never silently falls
back to a default). ``--set a.b=value`` overrides any key (the value is parsed as YAML).

The resolved configuration (after overrides, with the paths actually used) is written beside
every checkpoint as ``mvbench_train_config.yaml``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import ClassVar
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mvbench.errors import InputError
from mvbench.inference import OFFICIAL_MAX_PIXELS, OFFICIAL_MIN_PIXELS
from mvbench.tasks import TASKS
from mvbench.training.judge_reward import JudgeConfig
from mvbench.training.normalization import NormalizationConfig
from mvbench.training.rewards import RewardConfig

CONFIG_PACKAGE = "mvbench.training"
SCALE_REWARDS = ("batch", "group", "none")
# SFTConfig/GRPOConfig fields mvbench sets itself (mvbench.training.runner.trainer_kwargs): from the
# sections' own settings, or fixed by the video trainers. ``extra`` cannot set them.
TRAINER_COMMON_KEYS = ("output_dir", "learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay",
                       "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
                       "gradient_checkpointing", "bf16", "use_cpu", "logging_steps", "save_strategy", "save_steps",
                       "save_total_limit", "dataloader_num_workers", "seed", "report_to", "remove_unused_columns")
SFT_TRAINER_KEYS = ("max_length", "dataset_kwargs")
GRPO_TRAINER_KEYS = ("num_generations", "max_completion_length", "temperature", "top_p", "beta", "epsilon",
                     "epsilon_high", "scale_rewards", "loss_type", "steps_per_generation", "use_vllm", "vllm_mode",
                     "vllm_gpu_memory_utilization", "vllm_server_base_url", "vllm_tensor_parallel_size",
                     "reward_weights")
# GRPOConfig options the video rollouts do not implement (mvbench.training.grpo overrides TRL's vLLM
# generation), refused rather than silently ignored: option -> why.
UNSUPPORTED_GRPO_OPTIONS = {
    "vllm_enable_sleep_mode": "the video rollouts do not re-push the weights vLLM discards when it sleeps",
    "vllm_structured_outputs_regex": "the video rollouts do not constrain generation",
}
VLLM_MODES = ("colocate", "server")
STAGES = ("sft", "grpo")


@dataclass(frozen=True)
class VideoSettings:
    """What the model sees; the defaults are the official inference's (medvidbench-format.md §8).

    Args:
        max_pixels / min_pixels: per-frame pixel budget.
        video_timing: ``official`` (2 fps positions for every video, as the leaderboard's runs) or
            ``record`` (each record's fps; the Qwen3-VL recipes use it, see their comments).
    """

    max_pixels: int = OFFICIAL_MAX_PIXELS
    min_pixels: int = OFFICIAL_MIN_PIXELS
    video_timing: str = "official"

    def __post_init__(self) -> None:
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError("video.min_pixels must be > 0 and <= video.max_pixels")
        if self.video_timing not in ("official", "record"):
            raise ValueError(f"video.video_timing must be 'official' or 'record', not {self.video_timing!r}")


@dataclass(frozen=True)
class LoraSettings:
    """A LoRA adapter instead of a full fine-tune (``lora: null`` trains every weight)."""

    r: int = 64
    alpha: int = 128
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1:
            raise ValueError("lora.r and lora.alpha must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("lora.dropout must be in [0, 1)")
        if "lm_head" in self.target_modules:
            raise ValueError("lora.target_modules cannot include lm_head (TRL's GRPO refuses it)")


@dataclass(frozen=True)
class LaunchSettings:
    """How the run is launched.

    Args:
        num_processes: processes (GPUs); > 1 re-launches the command under ``accelerate launch``.
        accelerate_config: the accelerate config file (a path, or a name under ``training/configs/``).
        requires_gpu: refuse to start without CUDA (every recipe except the CPU smoke config).
    """

    num_processes: int = 1
    accelerate_config: str | None = None
    requires_gpu: bool = True

    def __post_init__(self) -> None:
        if self.num_processes < 1:
            raise ValueError("launch.num_processes must be >= 1")
        if self.num_processes > 1 and not self.accelerate_config:
            raise ValueError("launch.accelerate_config is required when launch.num_processes > 1")


@dataclass(frozen=True)
class StageSettings:
    """Trainer settings both stages share (TRL/transformers ``TrainingArguments`` fields).

    Args:
        learning_rate / lr_scheduler_type / warmup_steps / weight_decay: the optimiser schedule (AdamW;
            ``warmup_steps`` below 1 is a fraction of the run).
        num_train_epochs / max_steps: length (``max_steps`` > 0 wins).
        per_device_train_batch_size / gradient_accumulation_steps: batch shape.
        gradient_checkpointing / bf16: memory and precision.
        logging_steps / save_steps / save_total_limit: logging and checkpoints.
        dataloader_num_workers: dataloader processes.
        extra: any other ``SFTConfig``/``GRPOConfig`` field, passed through as is (not one mvbench
            sets: :data:`TRAINER_COMMON_KEYS` and the stage's own).
    """

    trainer_keys: ClassVar[tuple[str, ...]] = ()  # the stage's own fields mvbench sets

    learning_rate: float = 5e-7
    lr_scheduler_type: str = "linear"
    warmup_steps: float = 0.0
    weight_decay: float = 0.0
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = True
    bf16: bool = True
    logging_steps: int = 10
    save_steps: int = 500
    save_total_limit: int | None = 3
    dataloader_num_workers: int = 2
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be > 0")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ValueError("set max_steps > 0 or num_train_epochs > 0")
        if self.per_device_train_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ValueError("per_device_train_batch_size and gradient_accumulation_steps must be >= 1")
        if self.save_steps < 1 or self.logging_steps < 1:
            raise ValueError("save_steps and logging_steps must be >= 1")
        managed = sorted(set(self.extra) & {*TRAINER_COMMON_KEYS, *self.trainer_keys})
        if managed:
            raise ValueError(f"extra cannot set {', '.join(managed)}: mvbench sets {'it' if len(managed) == 1 else 'them'}"
                             " (from this section's own keys, where there is one)")


@dataclass(frozen=True)
class SFTSettings(StageSettings):
    """Supervised fine-tuning on the reference answers (completion-only loss).

    Args:
        max_length: a longer example is an error naming it, never cut (a cut video would not match
            its features); None accepts every length.
    """

    trainer_keys: ClassVar[tuple[str, ...]] = SFT_TRAINER_KEYS
    num_train_epochs: float = 3.0
    max_length: int | None = None


@dataclass(frozen=True)
class GRPOSettings(StageSettings):
    """MedGRPO. Defaults are the paper's where it states them (medvidbench-format.md §7).

    Args:
        num_generations: G, completions per prompt (the paper: 8).
        epsilon / epsilon_high: the clip range (the paper: 0.2 / 0.3).
        beta: KL coefficient (the paper: no KL).
        scale_rewards: ``batch`` (default, see the README), ``group`` (TRL's default) or ``none``.
        loss_type: TRL's loss (``dapo`` default).
        temperature / top_p: rollout sampling.
        max_completion_length: new tokens per rollout.
        steps_per_generation: micro-steps per generation batch (None: gradient accumulation).
        balance_cap: records kept per (source, task) for the task-balanced "Standard" subset
            (``mvbench balance``), applied unless the data already is a balanced build; None uses all.
        use_vllm / vllm_mode / vllm_gpu_memory_utilization / vllm_server_base_url /
            vllm_tensor_parallel_size: vLLM rollouts (colocate or server).
        rewards: the reward settings.
    """

    trainer_keys: ClassVar[tuple[str, ...]] = GRPO_TRAINER_KEYS
    num_generations: int = 8
    max_steps: int = 5000
    epsilon: float = 0.2
    epsilon_high: float = 0.3
    beta: float = 0.0
    scale_rewards: str = "batch"
    loss_type: str = "dapo"
    temperature: float = 1.0
    top_p: float = 1.0
    max_completion_length: int = 256
    steps_per_generation: int | None = None
    balance_cap: int | None = None
    use_vllm: bool = False
    vllm_mode: str = "colocate"
    vllm_gpu_memory_utilization: float = 0.3
    vllm_server_base_url: str | None = None
    vllm_tensor_parallel_size: int = 1
    rewards: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_generations < 2:
            raise ValueError("grpo.num_generations must be >= 2 (a group needs two completions)")
        if self.scale_rewards not in SCALE_REWARDS:
            raise ValueError(f"grpo.scale_rewards must be one of {SCALE_REWARDS}")
        if self.vllm_mode not in VLLM_MODES:
            raise ValueError(f"grpo.vllm_mode must be one of {VLLM_MODES}")
        if self.use_vllm and self.vllm_mode == "colocate" and self.vllm_tensor_parallel_size != 1:
            raise ValueError("video rollouts in colocate mode support vllm_tensor_parallel_size 1 only; "
                             "use vllm_mode: server for tensor-parallel rollouts")
        if self.balance_cap is not None and self.balance_cap < 1:
            raise ValueError("grpo.balance_cap must be >= 1 or null")
        if self.max_completion_length < 1:
            raise ValueError("grpo.max_completion_length must be >= 1")
        for key, why in UNSUPPORTED_GRPO_OPTIONS.items():
            if self.extra.get(key):
                raise ValueError(f"grpo.extra.{key} is not supported: {why}")


@dataclass(frozen=True)
class TrainConfig:
    """A training run.

    Args:
        model: a checkpoint directory or Hub id; None with ``smoke`` builds the tiny random
            Qwen2.5-VL (``mvbench.testing``).
        data: a built dataset folder (``mvbench build``/``balance``) or an official JSON file; None
            with ``smoke`` builds fixture sources.
        out: the output folder (checkpoints, logs, plots, the resolved config); ``{stage}`` in it
            becomes ``sft`` or ``grpo``.
        frames_root: for official JSON, the folder of the official frames.
        split: which split to train on.
        tasks / sources / limit: select records; task names are case-insensitive (stored upper
            case), null selects all; GRPO trains on the rewarded tasks among them (:meth:`stage_tasks`).
        video: inputs (the official defaults; shared with ``mvbench eval``).
        model_dtype: weights' dtype (``bfloat16``, ``float32``...).
        attn_implementation: ``sdpa``, ``eager`` or ``flash_attention_2``.
        lora: None for a full fine-tune; LoRA runs on one process (``launch.num_processes`` 1).
        launch: processes and GPU requirement.
        smoke: build fixture data and the tiny model when ``data``/``model`` are None.
        seed: seeds data order and sampling.
        sft / grpo: the stages.
    """

    model: str | None = None
    data: str | None = None
    out: str = "runs/train"
    frames_root: str | None = None
    split: str = "train"
    tasks: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None
    limit: int | None = None
    video: VideoSettings = field(default_factory=VideoSettings)
    model_dtype: str = "bfloat16"
    attn_implementation: str = "sdpa"
    lora: LoraSettings | None = None
    launch: LaunchSettings = field(default_factory=LaunchSettings)
    smoke: bool = False
    seed: int = 0
    sft: SFTSettings = field(default_factory=SFTSettings)
    grpo: GRPOSettings = field(default_factory=GRPOSettings)

    def __post_init__(self) -> None:
        if self.model_dtype not in ("bfloat16", "float16", "float32", "auto"):
            raise ValueError("model_dtype must be bfloat16, float16, float32 or auto")
        if self.attn_implementation not in ("sdpa", "eager", "flash_attention_2"):
            raise ValueError("attn_implementation must be sdpa, eager or flash_attention_2")
        if self.lora is not None and self.launch.num_processes > 1:
            # OUT/final merges the adapter into the base weights in the main process alone: under DeepSpeed
            # ZeRO-3 loading the base there waits for the other ranks (zero.Init) and hangs.
            raise ValueError("lora with launch.num_processes > 1 is not supported (the final LoRA merge runs in one "
                             "process and hangs under ZeRO-3): train LoRA on one process (the 1-GPU recipes) or set "
                             "lora: null")
        if self.tasks is not None:
            tasks = tuple(str(t).strip().upper() for t in self.tasks)
            unknown = [t for t in tasks if t not in TASKS]
            if unknown or not tasks:
                raise ValueError(f"tasks must be null (every task) or name tasks among {', '.join(TASKS)}; "
                                 f"got {list(self.tasks)}")
            if len(set(tasks)) != len(tasks):
                raise ValueError(f"tasks names a task twice: {list(self.tasks)}")
            object.__setattr__(self, "tasks", tasks)

    def out_dir(self, stage: str) -> Path:
        """The output folder of a stage."""
        return Path(self.out.replace("{stage}", stage)).expanduser()

    def stage_tasks(self, stage: str) -> list[str] | None:
        """The tasks a stage trains on: SFT ``tasks`` (None: all); GRPO the rewarded tasks among them.

        Raises:
            InputError: GRPO with no rewarded task among ``tasks`` (an empty selection must not mean "all").
        """
        if stage != "grpo":
            return list(self.tasks) if self.tasks else None
        rewarded = [t for t in self.grpo.rewards.tasks if self.tasks is None or t in self.tasks]
        if not rewarded:
            raise InputError(f"no rewarded task among tasks {list(self.tasks or ())}: GRPO rewards "
                             f"{', '.join(self.grpo.rewards.tasks)} (grpo.rewards.tasks); change tasks or the rewards")
        return rewarded

    def check_inputs(self) -> None:
        """Raise unless model and data are set (the smoke config builds its own when they are not).

        Raises:
            InputError: naming what to pass.
        """
        if self.smoke:
            return
        missing = [name for name in ("model", "data") if getattr(self, name) is None]
        if missing:
            raise InputError(f"set {' and '.join(missing)}: {' '.join(f'{m.upper()}=...' for m in missing)} with make, "
                             f"or {' '.join(f'--{m}' for m in missing)} with mvbench train")

    def to_dict(self) -> dict:
        """Plain data (tuples as lists), the form written beside checkpoints."""
        return _plain(dataclasses.asdict(self))


# ----- loading -----------------------------------------------------------------------------------
def resolve_config_path(path: str | Path) -> Path:
    """A config file: a path, or a name under the installed ``training/configs/`` (``smoke.yaml``).

    Raises:
        InputError: neither exists (listing the shipped configs).
    """
    p = Path(path)
    if p.is_file():
        return p
    shipped = resources.files(CONFIG_PACKAGE).joinpath("configs")
    for candidate in (str(path), f"{path}.yaml", Path(path).name):
        ref = shipped.joinpath(candidate)
        if ref.is_file():
            return Path(str(ref))
    names = sorted(str(x.name) for x in shipped.iterdir() if str(x.name).endswith(".yaml"))
    raise InputError(f"config not found; shipped configs: {', '.join(names)}", path=path)


def load_config(path: str | Path, overrides: list[str] | None = None, **fields: Any) -> TrainConfig:
    """Read a YAML config, apply ``key.path=value`` overrides and explicit fields.

    Args:
        path: a config file or a shipped config name.
        overrides: ``a.b=value`` strings (values parsed as YAML: ``1e-6``, ``[TAG, STG]``, ``null``).
        **fields: top-level fields that win over the file (``model``, ``data``, ``out``; None is ignored).

    Raises:
        InputError: unreadable YAML, an unknown key, a wrong type or an invalid value (naming
            the key and the file).
    """
    config_path = resolve_config_path(path)
    try:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise InputError(f"not valid YAML: {e}", path=config_path) from None
    if not isinstance(data, dict):
        raise InputError("a config is a YAML mapping", path=config_path)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"override {item!r} is not key.path=value")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        _set_path(data, key.strip().split("."), parsed)
    for key, value in fields.items():
        if value is not None:
            data[key] = value
    try:
        return from_dict(TrainConfig, data)
    except (TypeError, ValueError) as e:
        raise InputError(f"invalid config: {e}", path=config_path) from None


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass ``cls`` from plain data, recursively, refusing unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise TypeError(f"{where or cls.__name__} must be a mapping, not {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(_join(where, k) for k in unknown)}; "
                         f"known: {', '.join(sorted(names))}")
    kwargs = {k: _convert(hints[k], v, _join(where, k)) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ValueError as e:
        message = str(e)
        if where and not message.startswith(where.rpartition(".")[2] + "."):
            message = f"{where}: {message}"
        raise ValueError(message) from None


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            if len(args) != len(typing.get_args(tp)):
                return None
            raise TypeError(f"{where} cannot be null")
        errors = []
        for arg in args:
            try:
                return _convert(arg, value, where)
            except (TypeError, ValueError) as e:
                errors.append(str(e))
        raise TypeError(errors[0])
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where} must be a list")
        (item,) = typing.get_args(tp)[:1]
        return tuple(_convert(item, v, where) for v in value)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{where} must be a mapping")
        return dict(value)
    if tp is Any:
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads 5e-7 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is bool and isinstance(value, bool):
        return value
    if tp is str and isinstance(value, str):
        return value
    raise TypeError(f"{where} must be {getattr(tp, '__name__', tp)}, not {value!r}")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _set_path(data: dict, keys: list[str], value: Any) -> None:
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def dump_yaml(data: dict) -> str:
    """YAML text of a plain dict, keys in insertion order."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


__all__ = ["GRPOSettings", "JudgeConfig", "LaunchSettings", "LoraSettings", "NormalizationConfig",
           "RewardConfig", "SFTSettings", "StageSettings", "TrainConfig", "VideoSettings", "dump_yaml",
           "from_dict", "load_config", "resolve_config_path"]
