"""The contract every evaluation backend implements.

A backend turns one :class:`GenerationRequest` (a prompt plus the sampled frames of one sample) into
the model's answer text. Backends never score and never write files: the harness persists every
answer to ``predictions.jsonl`` before any scoring.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol, runtime_checkable

FramesAs = Literal["video", "images"]

# Official inference defaults (MedGRPO-Code run_inference.sh / vision_process_medical.py).
OFFICIAL_MAX_PIXELS = 48 * 28 * 28
OFFICIAL_MIN_PIXELS = 8 * 28 * 28
OFFICIAL_MAX_TOKENS = 256


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


@dataclass(frozen=True)
class GenerationRequest:
    """One sample to answer.

    Args:
        uid: the sample's stable unique id (the key of ``predictions.jsonl``).
        prompt: the question, without the leading ``<video>\\n``.
        frames: paths of the sampled frames, in order.
        fps: the sampling rate of ``frames`` (``metadata.fps``), passed as the video's fps.
        rc_frame: for region captioning, the start frame on which the box is drawn.
        rc_box: for region captioning, ``[x1, y1, x2, y2]`` in that frame's pixels.
        system: optional system prompt.
        examples: one-shot examples as ``(question, answer)`` pairs placed before the question.
        params: decoding and vision settings.
        qa_type: the sample's qa_type (for logs and rule-based baselines; models never see it).
    """

    uid: str
    prompt: str
    frames: tuple[str, ...]
    fps: float = 1.0
    rc_frame: str | None = None
    rc_box: tuple[float, float, float, float] | None = None
    system: str | None = None
    examples: tuple[tuple[str, str], ...] = ()
    params: GenerationParams = field(default_factory=GenerationParams)
    qa_type: str | None = None


@runtime_checkable
class Backend(Protocol):
    """What the harness needs from a backend."""

    name: str

    def fingerprint(self) -> dict:
        """Everything about the backend that changes outputs (model id, revision, server flags)."""
        ...

    async def generate(self, request: GenerationRequest) -> str:
        """Answer one request. Raises :class:`mvbench.errors.ServerError` after retries fail."""
        ...

    async def aclose(self) -> None:
        """Release connections, processes and models."""
        ...
