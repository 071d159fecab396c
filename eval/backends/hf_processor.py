"""The torchvision-free Qwen2/2.5-VL processor, re-exported from core.

The processor, its patch layout and its loader live in :mod:`mvbench.qwen_inputs`, the one
definition of model inputs that evaluation and training share; this module keeps the eval-side
import path.
"""

from __future__ import annotations

from mvbench import qwen_inputs
from mvbench.qwen_inputs import (IMAGE_TOKEN, VIDEO_TOKEN, load_frames_processor, load_processor,
                                 video_patches)

QwenFramesProcessor = qwen_inputs.QwenFramesProcessor

__all__ = ["IMAGE_TOKEN", "VIDEO_TOKEN", "QwenFramesProcessor", "load_frames_processor", "load_processor",
           "video_patches"]
