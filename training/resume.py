"""Resuming a full fine-tune of a Qwen-VL model without silently losing its weights.

transformers 5.25 saves Qwen2.5-VL weights under their legacy names (``visual.*``,
``model.layers.*``) but ``Trainer._load_from_checkpoint`` loads a checkpoint with a plain
``load_state_dict(strict=False)``, without the renaming ``from_pretrained`` applies: every key
misses, a warning is logged, and training "resumes" from the initial weights (seen on the tiny
Qwen2.5-VL: the resumed step-2 loss differed). So the runner loads the model of a full fine-tune
from the checkpoint with ``from_pretrained`` and the trainers skip the weight reload for that
checkpoint (optimizer, scheduler, RNG and trainer state are still restored by ``Trainer``).
LoRA checkpoints hold the adapter only and go through PEFT's own loading, unchanged.
"""

from __future__ import annotations

from pathlib import Path


class ResumeFromPretrained:
    """Trainer mixin: ``weights_from`` names the checkpoint the model was already loaded from."""

    weights_from: str | None = None

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        if self.weights_from and Path(resume_from_checkpoint).resolve() == Path(self.weights_from).resolve():
            return None  # already loaded by from_pretrained (renamed keys); see the module docstring
        return super()._load_from_checkpoint(resume_from_checkpoint, model)
