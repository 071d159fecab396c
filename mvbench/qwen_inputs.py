"""One definition of what a Qwen-VL model sees for a sample, shared by evaluation and training.

``mvbench eval --backend hf`` (``eval/backends/hf_backend.py``), the SFT collator and the GRPO
trainer (``training/``) all build their model inputs here, so a model is trained on exactly the
token layout it is evaluated on (medvidbench-format.md §8):

1. **Messages** (:func:`chat_messages`): optional system turn and one-shot examples, then one user
   turn whose content is one ``{"type": "video"}`` part (or one ``{"type": "image"}`` part per
   frame) followed by the question text. Parts carry only ``type``/``text`` keys, so the messages
   can live in an Arrow column.
2. **Frames** (:func:`load_frames`): each frame resized with Qwen's ``smart_resize`` on the
   official 56-pixel frame grid under the pixel budget; for region captioning the box is drawn on
   the start frame in place (:mod:`mvbench.llm.images`).
3. **Processor call** (:func:`processor_inputs`): the chat-template text and the frames as one
   video whose temporal positions use :func:`mvbench.inference.timing_fps` (``official``: 2 fps,
   ``second_per_grid_ts`` 1.0). The result always holds ``mm_token_type_ids``: without it
   transformers 5.x silently computes 1-D positions instead of Qwen's 3-D M-RoPE.

For Qwen2-VL/Qwen2.5-VL checkpoints the processor is :class:`QwenFramesProcessor` (built by
:func:`load_frames_processor`): the stock text and image paths plus a hand-built video path that
needs no torchvision (the stock video processor imports torchvision, which cannot be installed
beside torch+cpu here). Its patch layout equals the stock one (a static video equals the image
processor's output bit for bit). It *saves* in the stock layout (:func:`stock_processor_configs`),
so a training checkpoint loads with ``AutoProcessor`` and vLLM as the stock processor, with the
same pixel budget and patch layout. Other model types (Qwen3-VL) get the stock ``AutoProcessor``,
which needs torchvision; that path is not exercised on CPU.

transformers is imported lazily, inside functions: core must import without the ``train`` extra.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mvbench.errors import InputError
from mvbench.inference import OFFICIAL_VIDEO_FPS, GenerationParams, timing_fps
from mvbench.llm.images import draw_rc_box, load_frame, rc_position, resize_frame

IMAGE_TOKEN = "<|image_pad|>"
VIDEO_TOKEN = "<|video_pad|>"
# The per-video tensors of a Qwen2/2.5-VL processor output (Qwen3-VL has no second_per_grid_ts).
VIDEO_KEYS = ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts")
# mm_token_type_ids values, as Qwen's processors write them.
MM_TEXT, MM_IMAGE, MM_VIDEO = 0, 1, 2
FRAMES_PROCESSOR_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl")
# What a checkpoint's processor files name, so that stock loaders (AutoProcessor, vLLM) build the stock
# processor: per model type the processor class, and the video processor both model types use.
STOCK_PROCESSOR_CLASSES = {"qwen2_vl": "Qwen2VLProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor"}
STOCK_VIDEO_PROCESSOR_TYPE = "Qwen2VLVideoProcessor"
# The image-processor settings the stock video processor takes over: same patch layout, normalisation
# and per-frame pixel budget (``size``), so stock video inputs equal QwenFramesProcessor's.
VIDEO_SETTINGS_FROM_IMAGE = ("do_convert_rgb", "do_normalize", "do_rescale", "do_resize", "image_mean", "image_std",
                             "merge_size", "patch_size", "resample", "rescale_factor", "size", "temporal_patch_size")


# ----- 1. messages ------------------------------------------------------------------------------
def chat_messages(prompt: str, *, frames_as: str = "video", n_frames: int = 1, system: str | None = None,
                  examples: Sequence[tuple[str, str]] = ()) -> list[dict]:
    """The chat messages of one sample, before any frame is attached.

    Args:
        prompt: the question (the human turn without ``<video>\\n``).
        frames_as: ``video`` (one video part) or ``images`` (one image part per frame).
        n_frames: frames of the sample (only used for ``images``).
        system: optional system prompt.
        examples: one-shot ``(question, answer)`` pairs placed before the question.

    Returns:
        Messages; the user turn's parts carry only ``type`` and ``text``.

    >>> chat_messages("What next?")[-1]["content"]
    [{'type': 'video', 'text': None}, {'type': 'text', 'text': 'What next?'}]
    """
    messages: list[dict] = []
    if system:
        messages.append({"role": "system", "content": system})
    for question, answer in examples:
        messages.append({"role": "user", "content": question})
        messages.append({"role": "assistant", "content": answer})
    if frames_as == "video":
        media = [{"type": "video", "text": None}]
    elif frames_as == "images":
        media = [{"type": "image", "text": None} for _ in range(n_frames)]
    else:
        raise ValueError(f"frames_as must be 'video' or 'images', not {frames_as!r}")
    messages.append({"role": "user", "content": [*media, {"type": "text", "text": prompt}]})
    return messages


def prompt_text(processor: Any, messages: list[dict]) -> str:
    """The chat-template text of ``messages`` ending with the assistant header (unexpanded placeholders)."""
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def answer_text(processor: Any, messages: list[dict], answer: str) -> str:
    """The chat-template text of ``messages`` plus the assistant's ``answer`` (for SFT).

    The text starts with exactly :func:`prompt_text`, so the prompt tokens of a training example
    are the evaluation request's.

    Raises:
        InputError: the chat template renders the prompt differently once an answer follows.
    """
    prompt = prompt_text(processor, messages)
    full = processor.apply_chat_template(
        [*messages, {"role": "assistant", "content": [{"type": "text", "text": answer}]}], tokenize=False)
    if not full.startswith(prompt):
        raise InputError("the chat template renders the prompt differently when an answer follows it; "
                         "SFT prompts would not match evaluation prompts")
    return full


# ----- 2. frames --------------------------------------------------------------------------------
def load_frames(paths: Sequence[str | Path], *, min_pixels: int, max_pixels: int, rc_frame: str | None = None,
                rc_box: Sequence[float] | None = None, uid: str | None = None) -> list[Image.Image]:
    """Load and resize a sample's frames as the official inference does; box the RC start frame.

    Args:
        paths: frame files, in order.
        min_pixels / max_pixels: per-frame pixel budget (``smart_resize`` on the 56-pixel grid).
        rc_frame: for region captioning, the start frame (one of ``paths``, compared as strings).
        rc_box: for region captioning, ``[x1, y1, x2, y2]`` drawn on that frame.
        uid: the sample, named in errors.

    Returns:
        The frames, resized (the RC start frame boxed in place).

    Raises:
        InputError: no frames, a missing or undecodable frame, or a malformed RC box.
    """
    if not paths:
        raise InputError("sample has no frames", record=uid)
    frames = [resize_frame(load_frame(p), min_pixels, max_pixels) for p in paths]
    pos = rc_position([str(p) for p in paths], rc_frame) if rc_box is not None else None
    if pos is not None:
        try:
            frames[pos] = draw_rc_box(frames[pos], tuple(float(v) for v in rc_box))
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc), path=rc_frame, record=uid) from None
    return frames


# ----- 3. processor call ------------------------------------------------------------------------
def pixel_size(params: GenerationParams) -> dict[str, int]:
    """The processor ``size`` for a per-frame pixel budget.

    :func:`processor_inputs` passes it to every image path and to :class:`QwenFramesProcessor`'s
    video path (the checkpoint's default may differ). The stock video path (Qwen3-VL) does not get
    it: there ``size`` bounds the pixels of the whole video, not of a frame. That processor takes
    the frames :func:`load_frames` already resized to this budget and applies the checkpoint's own
    video budget to them (32-pixel grid); that path is not exercised on CPU.
    """
    return {"longest_edge": params.max_pixels, "shortest_edge": params.min_pixels}


def processor_inputs(processor: Any, texts: list[str], *, params: GenerationParams,
                     videos: list[list[Image.Image]] | None = None, images: list[Image.Image] | None = None,
                     record_fps: Sequence[float] | None = None, return_tensors: str | None = "pt",
                     **kwargs: Any):
    """The one processor call: texts with unexpanded placeholders plus their frames.

    Args:
        processor: :class:`QwenFramesProcessor` or a stock Qwen-VL processor.
        texts: chat-template texts, one per sample.
        params: pixel budget and video timing.
        videos: per sample, its frames as one video (already :func:`load_frames`-resized).
        images: all image-list frames, in order.
        record_fps: per video, the record's ``metadata.fps``; the temporal positions use
            ``timing_fps(params.video_timing, fps)``.
        return_tensors: ``pt``, or None for lists (TRL's unpadded prompt ids).
        **kwargs: passed to the processor (``padding``, ``padding_side``...).

    Returns:
        The processor's ``BatchFeature`` with ``input_ids``, ``attention_mask``,
        ``mm_token_type_ids`` and the vision tensors.
    """
    size = pixel_size(params)
    call: dict[str, Any] = {"text": texts, "images_kwargs": {"size": size}, **kwargs}
    if return_tensors is not None:
        call["return_tensors"] = return_tensors
    if images:
        call["images"] = images
    if videos:
        fps = [timing_fps(params.video_timing, f) for f in (record_fps or [OFFICIAL_VIDEO_FPS] * len(videos))]
        if len(fps) != len(videos):
            raise ValueError(f"got {len(fps)} fps values for {len(videos)} videos")
        call["videos"] = videos
        if is_frames_processor(processor):
            call["videos_kwargs"] = {"size": size, "fps": fps}
        else:
            # Stock processors (transformers 5.x) take the video's rate from its metadata only.
            call["videos_kwargs"] = {"do_sample_frames": False, "video_metadata": [
                {"fps": f, "total_num_frames": len(v), "frames_indices": list(range(len(v)))}
                for f, v in zip(fps, videos)]}
    out = processor(**call)
    if "mm_token_type_ids" not in out:
        out["mm_token_type_ids"] = mm_token_type_ids(out["input_ids"], image_token_id=processor.image_token_id,
                                                     video_token_id=processor.video_token_id)
    return out


def encode(processor: Any, messages: list[dict], frames: list[Image.Image], *, params: GenerationParams,
           record_fps: float, return_tensors: str | None = "pt"):
    """Model inputs for one sample's prompt (what ``generate`` gets).

    Args:
        processor: see :func:`processor_inputs`.
        messages: :func:`chat_messages` of the sample.
        frames: :func:`load_frames` of the sample.
        params: pixel budget, ``frames_as`` and video timing.
        record_fps: the record's ``metadata.fps``.
        return_tensors: ``pt`` or None.

    Returns:
        The processor's ``BatchFeature`` (batch of one).
    """
    text = prompt_text(processor, messages)
    if params.frames_as == "video":
        return processor_inputs(processor, [text], params=params, videos=[frames], record_fps=[record_fps],
                                return_tensors=return_tensors)
    return processor_inputs(processor, [text], params=params, images=frames, return_tensors=return_tensors)


def mm_token_type_ids(input_ids: Any, *, image_token_id: int, video_token_id: int):
    """Qwen's ``mm_token_type_ids`` for token ids: 1 on image placeholders, 2 on video ones, else 0.

    Args:
        input_ids: a torch tensor, a numpy array, or a list of id lists.

    Returns:
        The same kind of object (a list of lists for list input).

    >>> mm_token_type_ids([[5, 6, 6, 7]], image_token_id=5, video_token_id=6)
    [[1, 2, 2, 0]]
    """
    if isinstance(input_ids, list):
        return [[MM_IMAGE if t == image_token_id else MM_VIDEO if t == video_token_id else MM_TEXT for t in row]
                for row in input_ids]
    image, video = input_ids == image_token_id, input_ids == video_token_id
    if hasattr(image, "long"):  # torch
        return image.long() * MM_IMAGE + video.long() * MM_VIDEO
    return image.astype(np.int64) * MM_IMAGE + video.astype(np.int64) * MM_VIDEO


def unexpanded_ids(processor: Any, text: str) -> list[int]:
    """Token ids of a chat-template text with one placeholder per video/image (what vLLM must get).

    vLLM expands each ``<|video_pad|>`` itself; sending processor-expanded ids expands them twice
    (trl#6401).
    """
    tokenizer = getattr(processor, "tokenizer", processor)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


# ----- the torchvision-free Qwen2/2.5-VL processor -----------------------------------------------
def uniform_frames(frames: Sequence, size: tuple[int, int]) -> list[Image.Image]:
    """A video's frames at one ``(width, height)``: frames of another size are resized (bicubic).

    Qwen's video processors take one size per video; the RC start frame of a portrait clip,
    rotated by :func:`mvbench.llm.images.draw_rc_box`, has another. Frames already at ``size`` are
    kept as they are.

    Args:
        frames: PIL images or HxWx3 uint8 arrays, in order.
        size: the video's ``(width, height)``.
    """
    images = [_to_rgb(f) for f in frames]
    return [im if im.size == tuple(size) else im.resize(tuple(size), Image.BICUBIC) for im in images]


def stock_processor_configs(image_processor: dict, processor_class: str) -> dict[str, dict]:
    """The processor files of a stock Qwen2/2.5-VL checkpoint, from its image-processor settings.

    transformers 5.x reads the nested ``processor_config.json`` first; ``preprocessor_config.json``
    and ``video_preprocessor_config.json`` are the per-component files older loaders (and the
    published Qwen checkpoints) use. The video processor gets the image processor's patch layout,
    normalisation and pixel budget, and ``do_sample_frames: false`` (the frames are the record's).

    Args:
        image_processor: the image processor's ``to_dict()``.
        processor_class: the stock processor class (:data:`STOCK_PROCESSOR_CLASSES`).

    Returns:
        File name → JSON object.

    >>> files = stock_processor_configs({"size": {"longest_edge": 9}, "image_processor_type": "Qwen2VLImageProcessor"},
    ...                                 "Qwen2_5_VLProcessor")
    >>> sorted(files), files["video_preprocessor_config.json"]["size"]
    (['preprocessor_config.json', 'processor_config.json', 'video_preprocessor_config.json'], {'longest_edge': 9})
    """
    image = {k: v for k, v in image_processor.items() if k != "processor_class"}
    video = {k: image[k] for k in VIDEO_SETTINGS_FROM_IMAGE if k in image}
    video.update(do_sample_frames=False, video_processor_type=STOCK_VIDEO_PROCESSOR_TYPE)
    return {"processor_config.json": {"image_processor": image, "video_processor": video,
                                      "processor_class": processor_class},
            "preprocessor_config.json": {**image, "processor_class": processor_class},
            "video_preprocessor_config.json": {**video, "processor_class": processor_class}}


def video_patches(frames: Sequence, *, max_pixels: int, min_pixels: int, patch_size: int = 14,
                  merge_size: int = 2, temporal_patch_size: int = 2,
                  image_mean: Sequence[float] = (0.48145466, 0.4578275, 0.40821073),
                  image_std: Sequence[float] = (0.26862954, 0.26130258, 0.27577711)):
    """Qwen2-VL's video patch layout for a list of frames.

    All frames are resized to the first frame's ``smart_resize`` size (:func:`uniform_frames`; that
    is the first frame's own size for frames from :func:`load_frames`, and a no-op for all but a
    rotated RC frame); the frame count is padded to a multiple of ``temporal_patch_size`` by
    repeating the last frame, as Qwen's video processor does.

    Args:
        frames: PIL images or HxWx3 uint8 arrays, in order (at least one).
        max_pixels / min_pixels: per-frame pixel budget for ``smart_resize``.
        patch_size / merge_size / temporal_patch_size: the vision tower's layout.
        image_mean / image_std: normalisation (CLIP's, as Qwen).

    Returns:
        ``(flat_patches, [grid_t, grid_h, grid_w])`` with ``flat_patches`` of shape
        ``(grid_t * grid_h * grid_w, 3 * temporal_patch_size * patch_size**2)`` (float32).
    """
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    if not frames:
        raise ValueError("a video needs at least one frame")
    first = _to_rgb(frames[0])
    h, w = smart_resize(first.height, first.width, factor=patch_size * merge_size, min_pixels=min_pixels,
                        max_pixels=max_pixels)
    arrays = [np.asarray(im, dtype=np.float32) for im in uniform_frames(frames, (w, h))]
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
    flat = patches.reshape(grid_t * grid_h * grid_w, channels * temporal_patch_size * patch_size * patch_size)
    return np.ascontiguousarray(flat), [grid_t, grid_h, grid_w]


@cache
def _frames_processor_class() -> type:
    from transformers.feature_extraction_utils import BatchFeature
    from transformers.models.qwen2_5_vl import Qwen2_5_VLProcessor
    from transformers.processing_utils import ProcessorMixin

    class QwenFramesProcessor(Qwen2_5_VLProcessor):
        """``Qwen2_5_VLProcessor`` with a hand-built video path and no video-processor sub-object.

        Call it like the stock processor: ``processor(text=[...], images=[...], videos=[[frames]],
        videos_kwargs={"fps": [fps per video], "size": {...}}, return_tensors="pt")``.
        ``apply_chat_template`` works as usual. ``second_per_grid_ts`` is
        ``temporal_patch_size / fps`` (fps defaults to :data:`OFFICIAL_VIDEO_FPS`).

        :meth:`save_pretrained` writes the stock processor's files (``stock_class``, default
        ``Qwen2_5_VLProcessor``), never this class's name: checkpoints load anywhere.
        """

        # Present (so ProcessorMixin routes ``videos=`` to :meth:`_process_videos`) but never used.
        video_processor = None

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None,
                     stock_class: str = STOCK_PROCESSOR_CLASSES["qwen2_5_vl"], **kwargs):
            self.image_token = IMAGE_TOKEN
            self.video_token = VIDEO_TOKEN
            self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
            self.video_token_id = tokenizer.convert_tokens_to_ids(VIDEO_TOKEN)
            self.stock_class = stock_class
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

        def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
            """Save as the stock processor would: tokenizer files, ``chat_template.jinja`` and
            :func:`stock_processor_configs` (what ``AutoProcessor`` and vLLM load)."""
            from mvbench.dataset_io import atomic_write_bytes, atomic_write_json

            if push_to_hub:
                raise ValueError("QwenFramesProcessor.save_pretrained does not push: upload the saved folder")
            directory = Path(save_directory)
            directory.mkdir(parents=True, exist_ok=True)
            self.tokenizer._set_processor_class(self.stock_class)
            self.tokenizer.save_pretrained(str(directory))
            if isinstance(self.chat_template, str):
                atomic_write_bytes(directory / "chat_template.jinja", self.chat_template.encode("utf-8"))
            files = stock_processor_configs(self.image_processor.to_dict(), self.stock_class)
            for name, content in files.items():
                atomic_write_json(directory / name, content)
            return [str(directory / name) for name in files]

        def _process_videos(self, videos, **kwargs):
            """Patchify each video (a list of frames) and build its placeholder text."""
            fps = kwargs.get("fps") or OFFICIAL_VIDEO_FPS
            fps_list = list(fps) if isinstance(fps, (list, tuple)) else [fps] * len(videos)
            if len(fps_list) != len(videos):
                raise ValueError(f"got {len(fps_list)} fps values for {len(videos)} videos")
            max_pixels, min_pixels = _pixel_budget(kwargs.get("size") or self.image_processor.size)
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
            data = {"pixel_values_videos": np.concatenate(patches, axis=0), "video_grid_thw": grid_thw,
                    "second_per_grid_ts": [ip.temporal_patch_size / float(f) for f in fps_list]}
            merge_length = ip.merge_size ** 2
            replacements = [VIDEO_TOKEN * int(g.prod() // merge_length) for g in grid_thw]
            return BatchFeature(data), replacements

    # Pickled by reference as mvbench.qwen_inputs.QwenFramesProcessor (module __getattr__ below).
    QwenFramesProcessor.__module__ = __name__
    QwenFramesProcessor.__qualname__ = "QwenFramesProcessor"
    return QwenFramesProcessor


def __getattr__(name: str):
    if name == "QwenFramesProcessor":
        return _frames_processor_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_frames_processor(processor: Any) -> bool:
    """Whether ``processor`` is a :class:`QwenFramesProcessor` (without importing transformers needlessly)."""
    return type(processor).__name__ == "QwenFramesProcessor" and type(processor).__module__ == __name__


def load_frames_processor(model_dir: str | Path):
    """Load a :class:`QwenFramesProcessor` from a Qwen2/2.5-VL directory (offline, no torchvision).

    Args:
        model_dir: a directory with tokenizer files and ``preprocessor_config.json`` (or a
            ``processor_config.json`` holding the image processor, as transformers 5 saves it).

    Returns:
        The processor, with the tokenizer's chat template (or the directory's ``chat_template.json``);
        it saves as the stock processor of the directory's ``model_type``.
    """
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

    model_dir = Path(model_dir)
    config = model_dir / "config.json"
    model_type = json.loads(config.read_text()).get("model_type") if config.is_file() else None
    stock_class = STOCK_PROCESSOR_CLASSES.get(model_type, STOCK_PROCESSOR_CLASSES["qwen2_5_vl"])
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if (model_dir / "preprocessor_config.json").is_file():
        image_processor = Qwen2VLImageProcessorPil.from_pretrained(model_dir)
    else:
        nested = _nested_image_processor_config(model_dir)
        image_processor = Qwen2VLImageProcessorPil(**nested) if nested is not None else \
            Qwen2VLImageProcessorPil.from_pretrained(model_dir)
    template = tokenizer.chat_template
    if template is None and (model_dir / "chat_template.json").is_file():
        template = json.loads((model_dir / "chat_template.json").read_text())["chat_template"]
    return _frames_processor_class()(image_processor, tokenizer, chat_template=template, stock_class=stock_class)


def load_processor(model_dir: str | Path, model_type: str | None = None):
    """The processor for a checkpoint: :class:`QwenFramesProcessor` for Qwen2/2.5-VL, else ``AutoProcessor``.

    Args:
        model_dir: a local checkpoint directory.
        model_type: the checkpoint's ``model_type`` (read from ``config.json`` if None).

    Raises:
        InputError: no ``config.json``.
    """
    model_dir = Path(model_dir)
    if model_type is None:
        config = model_dir / "config.json"
        if not config.is_file():
            raise InputError("not a model directory (no config.json)", path=model_dir)
        model_type = json.loads(config.read_text()).get("model_type")
    if model_type in FRAMES_PROCESSOR_MODEL_TYPES:
        return load_frames_processor(model_dir)
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(model_dir)


def _nested_image_processor_config(model_dir: Path) -> dict | None:
    path = model_dir / "processor_config.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    nested = data.get("image_processor")
    if not isinstance(nested, dict):
        return None
    return {k: v for k, v in nested.items() if k not in ("image_processor_type", "processor_class")}


def _pixel_budget(size) -> tuple[int, int]:
    """(max_pixels, min_pixels) from an image-processor ``size`` (dict or SizeDict)."""
    get = size.get if isinstance(size, dict) else (lambda k: getattr(size, k, None))
    return int(get("longest_edge") or get("max_pixels")), int(get("shortest_edge") or get("min_pixels"))


def _to_rgb(frame) -> Image.Image:
    if isinstance(frame, Image.Image):
        return frame.convert("RGB")
    return Image.fromarray(np.asarray(frame, dtype=np.uint8)).convert("RGB")
