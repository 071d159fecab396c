"""Progress display and artefacts beside every checkpoint.

:class:`ProgressCallback` (a ``transformers.TrainerCallback``):

- logs one line per logging step: loss, mean reward, and per (data_source, task) the raw and
  normalised reward means and the fraction of zero-variance groups (GRPO's ``pairs/...``
  metrics from :class:`mvbench.training.grpo.VideoGRPOTrainer`);
- keeps the history in ``curves.json`` and draws ``reward_curves.png`` (GRPO: one panel of raw
  and one of normalised rewards per pair; SFT: the loss);
- writes both, plus the resolved config ``mvbench_train_config.yaml``, into the output folder and
  into every ``checkpoint-N`` folder when it is saved.

Only the main process (``state.is_world_process_zero``) logs and writes.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from mvbench.dataset_io import atomic_write_bytes, atomic_write_json
from mvbench.models import TRAIN_CONFIG_FILE

log = logging.getLogger("mvbench.training")

CONFIG_NAME = TRAIN_CONFIG_FILE
CURVES_NAME = "curves.json"
PLOT_NAME = "reward_curves.png"
PAIR_PREFIX = "pairs/"


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def checkpoint_step(checkpoint: str | Path) -> int:
    """N of a ``checkpoint-N`` folder.

    >>> checkpoint_step("runs/x/checkpoint-12")
    12
    """
    return int(Path(checkpoint).name.rpartition("-")[2])


def load_curves(path: Path, up_to: int) -> dict[str, list[tuple[int, float]]]:
    """The curves saved in ``path`` up to step ``up_to`` (empty if missing or unreadable, logged)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {key: [(int(step), float(v)) for step, v in points if int(step) <= up_to]
                for key, points in data.items()}
    except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError) as e:
        log.warning("%s: curves not restored (%s: %s)", path, type(e).__name__, e)
        return {}


class ProgressCallback(TrainerCallback):
    """See the module docstring.

    Args:
        out_dir: the run's output folder.
        config_yaml: the resolved config's YAML text.
        stage: ``sft`` or ``grpo`` (names the plot).
        resume_from: the ``checkpoint-N`` folder the run resumes from: its curves, up to step N, are
            kept (never the output folder's, which may hold later steps of an abandoned run).
    """

    def __init__(self, out_dir: str | Path, config_yaml: str, stage: str, resume_from: str | Path | None = None):
        self.out_dir = Path(out_dir)
        self.config_yaml = config_yaml
        self.stage = stage
        self.history: dict[str, list[tuple[int, float]]] = {}
        if resume_from is not None:
            self.history = load_curves(Path(resume_from) / CURVES_NAME, up_to=checkpoint_step(resume_from))

    # ----- transformers hooks (the main process only: every rank calls them) ----------------------
    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.out_dir / CONFIG_NAME, self.config_yaml.encode("utf-8"))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero:
            return
        logs = logs or {}
        step = int(state.global_step)
        for key, value in logs.items():
            if _finite(value) and (key.startswith(PAIR_PREFIX) or key in ("loss", "reward", "train_loss")):
                series = self.history.setdefault(key, [])
                if not series or series[-1][0] != step:
                    series.append((step, float(value)))
        line = self.format_line(step, state.max_steps, logs)
        if line:
            log.info(line)

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self.write(self.out_dir)
        if checkpoint.is_dir():
            self.write(checkpoint)

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.write(self.out_dir)

    # ----- output -------------------------------------------------------------------------------
    @staticmethod
    def format_line(step: int, max_steps: int, logs: dict) -> str:
        """One progress line (empty for logs without training metrics)."""
        parts = []
        for key in ("loss", "reward", "frac_reward_zero_std"):
            if _finite(logs.get(key)):
                parts.append(f"{key} {logs[key]:.4g}")
        pairs: dict[str, dict[str, float]] = {}
        for key, value in logs.items():
            if key.startswith(PAIR_PREFIX) and _finite(value):
                pair, _, metric = key[len(PAIR_PREFIX):].rpartition("/")
                pairs.setdefault(pair, {})[metric] = value
        for pair, m in sorted(pairs.items()):
            bits = [f"{short} {m[k]:.3f}" for k, short in (("raw", "raw"), ("normalised", "norm"),
                                                           ("zero_std_frac", "0var")) if k in m]
            parts.append(f"{pair}: {' '.join(bits)}")
        if not parts:
            return ""
        return f"step {step}/{max_steps} | " + " | ".join(parts)

    def write(self, folder: Path) -> None:
        """``curves.json``, ``reward_curves.png`` and the config into ``folder``."""
        from mvbench.training.plot import line_panels

        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / CURVES_NAME, {k: [list(p) for p in v] for k, v in self.history.items()})
        atomic_write_bytes(folder / CONFIG_NAME, self.config_yaml.encode("utf-8"))
        panels = []
        for metric, title in (("raw", "raw reward"), ("normalised", "normalised reward"),
                              ("zero_std_frac", "groups with zero reward variance")):
            series = {k[len(PAIR_PREFIX):].rpartition("/")[0]: v for k, v in self.history.items()
                      if k.startswith(PAIR_PREFIX) and k.endswith("/" + metric)}
            if series:
                panels.append((f"{title} per (data_source, task)", series))
        losses = {k: v for k, v in self.history.items() if k in ("loss", "reward")}
        if losses:
            panels.append(("loss and mean reward", losses))
        if panels:
            line_panels(panels, folder / PLOT_NAME, title=f"mvbench train {self.stage}: {folder.name}",
                        x_label="step")
