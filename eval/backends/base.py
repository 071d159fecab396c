"""The contract every evaluation backend implements.

A backend turns one :class:`GenerationRequest` (a prompt plus the sampled frames of one sample) into
the model's answer text. Backends never score and never write files: the harness persists every
answer to ``predictions.jsonl`` before any scoring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from mvbench.inference import (OFFICIAL_MAX_PIXELS, OFFICIAL_MAX_TOKENS, OFFICIAL_MIN_PIXELS, FramesAs,
                               GenerationParams)

__all__ = ["Backend", "FramesAs", "GenerationParams", "GenerationRequest", "OFFICIAL_MAX_PIXELS",
           "OFFICIAL_MAX_TOKENS", "OFFICIAL_MIN_PIXELS"]


@dataclass(frozen=True)
class GenerationRequest:
    """One sample to answer.

    Args:
        uid: the sample's stable unique id (the key of ``predictions.jsonl``).
        prompt: the question, without the leading ``<video>\\n``.
        frames: paths of the sampled frames, in order.
        fps: the sampling rate of ``frames`` (``metadata.fps``); the video fps sent to the model follows
            ``params.video_timing`` (:func:`mvbench.inference.timing_fps`: 2.0 for the official timing).
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
