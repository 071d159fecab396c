"""The official MedGRPO inference defaults and the generation parameters every model call carries.

Defaults follow UII-AI/MedGRPO-Code (``run_inference.sh``, ``vllm_infer.py``,
``vision_process_medical.py``; medvidbench-format.md §8): per-frame pixels 8·28·28 .. 48·28·28,
greedy decoding, 256 new tokens, ``max_model_len`` 32768, each record's frames sent as one video.
Evaluation (``mvbench.eval``) and training (``mvbench.training``) read them from here, so a model
is trained on the inputs it is evaluated on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

FramesAs = Literal["video", "images"]

OFFICIAL_MAX_PIXELS = 48 * 28 * 28
OFFICIAL_MIN_PIXELS = 8 * 28 * 28
OFFICIAL_MAX_TOKENS = 256
OFFICIAL_MAX_MODEL_LEN = 32768
# A record without metadata.fps is taken to be sampled at 1 frame per second (frame i ↔ i s).
FALLBACK_FPS = 1.0


@dataclass(frozen=True)
class GenerationParams:
    """Decoding and vision settings that change a model's output (all part of the cache key).

    Args:
        temperature: 0 means greedy, as the official inference.
        max_tokens: the generation budget.
        seed: sampling seed (ignored by greedy decoding, kept in the key).
        max_pixels / min_pixels: per-frame pixel budget, as Qwen's ``smart_resize``.
        frames_as: send frames as one video (Qwen's frame-list data-URL recipe) or as an image list.
    """

    temperature: float = 0.0
    max_tokens: int = OFFICIAL_MAX_TOKENS
    seed: int = 0
    max_pixels: int = OFFICIAL_MAX_PIXELS
    min_pixels: int = OFFICIAL_MIN_PIXELS
    frames_as: FramesAs = "video"

    def to_dict(self) -> dict:
        """Plain dict, with temperature 0.0 normalised so 0 and 0.0 give one cache key."""
        d = asdict(self)
        d["temperature"] = float(d["temperature"])
        return d
