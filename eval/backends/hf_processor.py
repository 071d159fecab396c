"""A Qwen2/2.5-VL processor that works without torchvision.

The stock ``Qwen2_5_VLProcessor`` builds a torchvision-backed video processor, and torchvision
cannot be installed beside torch+cpu here (see machine-notes). :class:`QwenFramesProcessor` keeps
the stock text and image paths (``Qwen2VLImageProcessorPil``) and builds the video inputs
(``pixel_values_videos``, ``video_grid_thw``, ``second_per_grid_ts``) by hand from a list of
frames, exactly as Qwen's video processor lays out patches. A video is a list of PIL images (or
HxWx3 uint8 arrays); all its frames are resized to the first frame's ``smart_resize`` size and the
frame count is padded to a multiple of the temporal patch size by repeating the last frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from transformers.feature_extraction_utils import BatchFeature
from transformers.models.qwen2_5_vl import Qwen2_5_VLProcessor
from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize
from transformers.processing_utils import ProcessorMixin

from mvbench.inference import OFFICIAL_VIDEO_FPS

IMAGE_TOKEN = "<|image_pad|>"
VIDEO_TOKEN = "<|video_pad|>"


class QwenFramesProcessor(Qwen2_5_VLProcessor):
    """``Qwen2_5_VLProcessor`` with a hand-built video path and no video-processor sub-object.

    Call it like the stock processor: ``processor(text=[...], images=[...], videos=[[frames]],
    fps=[fps per video], return_tensors="pt")``. ``apply_chat_template`` works as usual.
    """

    # Present (so ProcessorMixin routes ``videos=`` to :meth:`_process_videos`) but never used.
    video_processor = None

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = IMAGE_TOKEN
        self.video_token = VIDEO_TOKEN
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        self.video_token_id = tokenizer.convert_tokens_to_ids(VIDEO_TOKEN)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    def _process_videos(self, videos, **kwargs):
        """Patchify each video (a list of frames) and build its placeholder text."""
        fps = kwargs.get("fps") or OFFICIAL_VIDEO_FPS
        fps_list = list(fps) if isinstance(fps, (list, tuple)) else [fps] * len(videos)
        if len(fps_list) != len(videos):
            raise ValueError(f"got {len(fps_list)} fps values for {len(videos)} videos")
        size = kwargs.get("size") or self.image_processor.size
        max_pixels, min_pixels = _pixel_budget(size)
        ip = self.image_processor
        patches, grids = [], []
        for frames in videos:
            flat, grid = video_patches(
                frames, max_pixels=max_pixels, min_pixels=min_pixels, patch_size=ip.patch_size,
                merge_size=ip.merge_size, temporal_patch_size=ip.temporal_patch_size,
                image_mean=ip.image_mean, image_std=ip.image_std)
            patches.append(flat)
            grids.append(grid)
        grid_thw = np.array(grids, dtype=np.int64)
        data = {
            "pixel_values_videos": np.concatenate(patches, axis=0),
            "video_grid_thw": grid_thw,
            "second_per_grid_ts": [ip.temporal_patch_size / float(f) for f in fps_list],
        }
        merge_length = ip.merge_size ** 2
        replacements = [VIDEO_TOKEN * int(g.prod() // merge_length) for g in grid_thw]
        return BatchFeature(data), replacements


def video_patches(frames: Sequence, *, max_pixels: int, min_pixels: int, patch_size: int = 14,
                  merge_size: int = 2, temporal_patch_size: int = 2,
                  image_mean: Sequence[float] = (0.48145466, 0.4578275, 0.40821073),
                  image_std: Sequence[float] = (0.26862954, 0.26130258, 0.27577711)):
    """Qwen2-VL's video patch layout for a list of frames.

    Args:
        frames: PIL images or HxWx3 uint8 arrays, in order (at least one).
        max_pixels / min_pixels: per-frame pixel budget for ``smart_resize``.
        patch_size / merge_size / temporal_patch_size: the vision tower's layout.
        image_mean / image_std: normalisation (CLIP's, as Qwen).

    Returns:
        ``(flat_patches, [grid_t, grid_h, grid_w])`` with ``flat_patches`` of shape
        ``(grid_t * grid_h * grid_w, 3 * temporal_patch_size * patch_size**2)`` (float32).
    """
    if not frames:
        raise ValueError("a video needs at least one frame")
    images = [_to_rgb(f) for f in frames]
    width, height = images[0].size
    h, w = smart_resize(height, width, factor=patch_size * merge_size,
                        min_pixels=min_pixels, max_pixels=max_pixels)
    arrays = [np.asarray(im.resize((w, h), Image.BICUBIC) if im.size != (w, h) else im,
                         dtype=np.float32) for im in images]
    while len(arrays) % temporal_patch_size:
        arrays.append(arrays[-1])
    video = np.stack(arrays) / 255.0                                   # (T, H, W, C)
    video = (video - np.asarray(image_mean, np.float32)) / np.asarray(image_std, np.float32)
    video = video.transpose(0, 3, 1, 2).astype(np.float32)             # (T, C, H, W)
    channels = video.shape[1]
    grid_t, grid_h, grid_w = len(arrays) // temporal_patch_size, h // patch_size, w // patch_size
    patches = video.reshape(grid_t, temporal_patch_size, channels,
                            grid_h // merge_size, merge_size, patch_size,
                            grid_w // merge_size, merge_size, patch_size)
    patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    flat = patches.reshape(grid_t * grid_h * grid_w,
                           channels * temporal_patch_size * patch_size * patch_size)
    return np.ascontiguousarray(flat), [grid_t, grid_h, grid_w]


def load_frames_processor(model_dir: str | Path) -> QwenFramesProcessor:
    """Load a :class:`QwenFramesProcessor` from a Qwen2/2.5-VL directory (offline, no torchvision).

    Args:
        model_dir: a directory with tokenizer files and ``preprocessor_config.json``.

    Returns:
        The processor, with the tokenizer's chat template (or the directory's ``chat_template.json``).
    """
    from transformers import AutoTokenizer

    model_dir = Path(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(model_dir)
    template = tokenizer.chat_template
    if template is None and (model_dir / "chat_template.json").is_file():
        import json

        template = json.loads((model_dir / "chat_template.json").read_text())["chat_template"]
    return QwenFramesProcessor(image_processor, tokenizer, chat_template=template)


def _pixel_budget(size) -> tuple[int, int]:
    """(max_pixels, min_pixels) from an image-processor ``size`` (dict or SizeDict)."""
    get = size.get if isinstance(size, dict) else (lambda k: getattr(size, k, None))
    return int(get("longest_edge") or get("max_pixels")), int(get("shortest_edge") or get("min_pixels"))


def _to_rgb(frame) -> Image.Image:
    if isinstance(frame, Image.Image):
        return frame.convert("RGB")
    return Image.fromarray(np.asarray(frame, dtype=np.uint8)).convert("RGB")
