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

VideoTiming = Literal["official", "record"]
# The video fps behind the temporal positions of the leaderboard's runs. The official inference
# (MedGRPO-Code vllm_infer.py) gives vLLM a frame list and no fps: it computes ``video_kwargs`` but
# never passes them. vLLM 0.10/0.11 (the Nov 2025 releases, with transformers 4.5x) drop video
# metadata (vllm/multimodal/parse.py 0.11.0 l.381-382, 480-487) and pass no fps, so the HF
# Qwen2.5-VL processor default applied: fps 2.0 (transformers 4.57.1 processing_qwen2_5_vl.py
# l.154; 4.49.0 l.44, 133), i.e. second_per_grid_ts = temporal_patch_size / fps = 2 / 2 = 1.0 for
# every video, whatever its sampling rate. Later stacks differ (transformers 5.x falls back to
# ``fps or 24``, video_utils.py l.109-113; vLLM >= 0.20 labels data-URL frame lists 1 fps,
# media/video.py l.147; vLLM >= 0.31 requires metadata), so mvbench always states the rate.
OFFICIAL_VIDEO_FPS = 2.0

FrameEncoding = Literal["png", "jpeg"]
# How resized frames travel to a model server (vLLM's OpenAI-compatible API, OpenAI, Gemini). The
# official inference hands vLLM the resized pixels themselves, so the default is lossless PNG:
# JPEG q95 (4:2:0 chroma) changes ~90% of the pixels of a 224x112 frame, by 2-3 levels on average
# and up to ~50 at edges such as the green RC box. PNG frames are ~4x larger (~45 kB against
# ~12 kB at the official budget), which a local server does not notice; "jpeg" remains for remote
# APIs where upload size matters. The in-process HF backend passes pixels and encodes nothing.
FRAME_ENCODINGS: tuple[str, ...] = ("png", "jpeg")
DEFAULT_FRAME_ENCODING: FrameEncoding = "png"


def timing_fps(timing: VideoTiming, record_fps: float) -> float:
    """The fps a video's temporal positions are computed with.

    ``official`` (the default) reproduces the leaderboard's runs (:data:`OFFICIAL_VIDEO_FPS` for
    every video); ``record`` uses the record's own sampling rate (``metadata.fps``), which places
    frames at their true times but differs from the leaderboard for any record not at 2 fps.

    >>> timing_fps("official", 0.5), timing_fps("record", 0.5)
    (2.0, 0.5)
    """
    if timing == "official":
        return OFFICIAL_VIDEO_FPS
    if timing == "record":
        return float(record_fps)
    raise ValueError(f"video timing must be 'official' or 'record', not {timing!r}")


@dataclass(frozen=True)
class GenerationParams:
    """Decoding and vision settings that change a model's output (all part of the cache key).

    Args:
        temperature: 0 means greedy, as the official inference.
        max_tokens: the generation budget.
        seed: sampling seed (ignored by greedy decoding, kept in the key).
        max_pixels / min_pixels: per-frame pixel budget, as Qwen's ``smart_resize``.
        frames_as: send frames as one video (Qwen's frame-list data-URL recipe) or as an image list.
        video_timing: the fps behind a video's temporal positions (:func:`timing_fps`):
            ``official`` as the leaderboard's runs, or ``record`` (each record's own fps).
        frame_encoding: how frames are encoded for a model server: ``png`` (lossless, the
            default: the pixels the official inference gives vLLM) or ``jpeg`` (quality 95).
    """

    temperature: float = 0.0
    max_tokens: int = OFFICIAL_MAX_TOKENS
    seed: int = 0
    max_pixels: int = OFFICIAL_MAX_PIXELS
    min_pixels: int = OFFICIAL_MIN_PIXELS
    frames_as: FramesAs = "video"
    video_timing: VideoTiming = "official"
    frame_encoding: FrameEncoding = DEFAULT_FRAME_ENCODING

    def __post_init__(self) -> None:
        timing_fps(self.video_timing, 1.0)  # rejects an unknown timing
        if self.frame_encoding not in FRAME_ENCODINGS:
            raise ValueError(f"frame encoding must be one of {', '.join(FRAME_ENCODINGS)}, not {self.frame_encoding!r}")

    def to_dict(self) -> dict:
        """Plain dict, with temperature 0.0 normalised so 0 and 0.0 give one cache key."""
        d = asdict(self)
        d["temperature"] = float(d["temperature"])
        return d
