"""Frame helpers for model requests: Qwen's ``smart_resize``, PNG/JPEG encoding and data URLs, hashes, the RC box.

``smart_resize`` follows Qwen2-VL's rule (``qwen_vl_utils.vision_process`` and transformers'
``Qwen2VLImageProcessor``): round each side to a multiple of ``factor`` (28), then, if the area
leaves ``[min_pixels, max_pixels]``, rescale both sides by one factor ``beta`` (flooring when
shrinking, ceiling when growing) so the aspect ratio is kept as closely as the grid allows.
Frames of a video use a grid of 56, as the official inference's frame-list path does
(:data:`VIDEO_FRAME_FACTOR`): 854x480 becomes 224x112 under the official 48*28*28 budget.

The region-captioning box follows the official MedGRPO inference (its
``vision_process_medical.fetch_video``), quirks included, so answers are comparable with the
leaderboard's: the start frame is the frame of the clip's own frame list whose path equals
``RC_info.start_frame`` (no box is drawn when none does); that frame, already resized with
``smart_resize`` like every frame, is rotated 270° if portrait (PIL ``rotate(270, expand=True)``),
then gets a green (0, 255, 0) rectangle of width 8 at ``start_frame_bbox`` taken as is: the
coordinates are the original frame's pixels and are neither scaled to the resized frame nor
rotated, so on a ~200 px frame a box often lies partly or wholly off the image. The boxed frame
replaces the start frame inside the video (or image list); it is not sent as an extra image.

Frames are encoded as PNG (lossless, the default: the official inference gives vLLM the resized
pixels themselves) or JPEG quality 95 (:data:`mvbench.inference.DEFAULT_FRAME_ENCODING` says why).
"""

from __future__ import annotations

from collections.abc import Sequence

import base64
import hashlib
import io
import math
from pathlib import Path

from PIL import Image, ImageDraw

from mvbench.errors import InputError
from mvbench.inference import DEFAULT_FRAME_ENCODING, FRAME_ENCODINGS

IMAGE_FACTOR = 28
MAX_ASPECT_RATIO = 200
BOX_COLOR = (0, 255, 0)
BOX_WIDTH = 8
JPEG_QUALITY = 95
PNG_COMPRESS_LEVEL = 1  # zlib level: ~10% larger than level 6 and several times faster; lossless either way
MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}


def _round_by_factor(number: float, factor: int) -> int:
    return round(number / factor) * factor


def _ceil_by_factor(number: float, factor: int) -> int:
    return math.ceil(number / factor) * factor


def _floor_by_factor(number: float, factor: int) -> int:
    return math.floor(number / factor) * factor


def smart_resize(
    height: int, width: int, factor: int = IMAGE_FACTOR, min_pixels: int = 8 * 28 * 28,
    max_pixels: int = 48 * 28 * 28,
) -> tuple[int, int]:
    """Qwen2-VL's target size for an image of ``height`` x ``width``.

    Args:
        height: original height in pixels.
        width: original width in pixels.
        factor: both outputs are multiples of it (28 = patch 14 x merge 2).
        min_pixels: lower bound on the output area.
        max_pixels: upper bound on the output area.

    Returns:
        ``(new_height, new_width)``.

    Raises:
        ValueError: a non-positive side, or an aspect ratio above 200 (Qwen refuses those).

    >>> smart_resize(1080, 1920)
    (140, 252)
    >>> smart_resize(28, 28)
    (84, 84)
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(f"aspect ratio of {height}x{width} exceeds {MAX_ASPECT_RATIO}")
    h_bar = max(factor, _round_by_factor(height, factor))
    w_bar = max(factor, _round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, _floor_by_factor(height / beta, factor))
        w_bar = max(factor, _floor_by_factor(width / beta, factor))
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = _ceil_by_factor(height * beta, factor)
        w_bar = _ceil_by_factor(width * beta, factor)
    return h_bar, w_bar


def load_frame(path: str | Path) -> Image.Image:
    """Open a frame as RGB.

    Args:
        path: an image file.

    Returns:
        The decoded RGB image.

    Raises:
        InputError: missing or undecodable file (naming it).
    """
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError:
        raise InputError("frame not found", path=path) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot decode frame: {exc}", path=path) from None


# Frames of a frame-list video are resized as qwen-vl-utils' ``fetch_video`` does (the code behind
# the official ``vision_process_medical.py``): each frame goes through ``fetch_image(ele,
# image_factor)``, whose second parameter is the *patch* size, so the grid factor becomes
# 28 * 2 = 56. The later whole-video resize (factor 28, same pixel budget) keeps that size.
VIDEO_FRAME_FACTOR = 2 * IMAGE_FACTOR


def resize_frame(img: Image.Image, min_pixels: int, max_pixels: int,
                 factor: int = VIDEO_FRAME_FACTOR) -> Image.Image:
    """Resize a video frame as the official inference does (see :data:`VIDEO_FRAME_FACTOR`), bicubic.

    Args:
        img: the frame.
        min_pixels: lower area bound.
        max_pixels: upper area bound.
        factor: the size grid (56 for frames of a video, as the official inference; 28 for images).

    Returns:
        The resized frame (the same object if the size already matches).

    >>> resize_frame(Image.new("RGB", (854, 480)), 8 * 28 * 28, 48 * 28 * 28).size
    (224, 112)
    """
    h, w = smart_resize(img.height, img.width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    if (w, h) == img.size:
        return img
    return img.resize((w, h), Image.Resampling.BICUBIC)


def encode_jpeg(img: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of an RGB image (deterministic for a given image and quality)."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def encode_png(img: Image.Image) -> bytes:
    """PNG bytes of an RGB image (lossless; deterministic for a given image)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def encode_frame(img: Image.Image, encoding: str = DEFAULT_FRAME_ENCODING) -> bytes:
    """Encode a frame for a model server.

    Args:
        img: the RGB frame, already resized.
        encoding: ``png`` (lossless) or ``jpeg`` (quality :data:`JPEG_QUALITY`).

    Returns:
        The encoded bytes.

    Raises:
        ValueError: an unknown encoding.

    >>> img = Image.new("RGB", (4, 2), (10, 200, 30))
    >>> encode_frame(img, "png")[:4], encode_frame(img, "jpeg")[:2]
    (b'\\x89PNG', b'\\xff\\xd8')
    """
    if encoding == "png":
        return encode_png(img)
    if encoding == "jpeg":
        return encode_jpeg(img)
    raise ValueError(f"frame encoding must be one of {', '.join(FRAME_ENCODINGS)}, not {encoding!r}")


def mime_type(encoding: str) -> str:
    """The image MIME type of an encoding (``image/png`` or ``image/jpeg``)."""
    return MIME_TYPES[encoding]


def b64(data: bytes) -> str:
    """Base64 text of ``data`` (no line breaks)."""
    return base64.b64encode(data).decode("ascii")


def jpeg_data_url(data: bytes) -> str:
    """``data:image/jpeg;base64,...`` URL for JPEG bytes."""
    return f"data:image/jpeg;base64,{b64(data)}"


def image_data_url(data: bytes, encoding: str = DEFAULT_FRAME_ENCODING) -> str:
    """``data:image/png;base64,...`` (or ``image/jpeg``) URL for frame bytes of ``encoding``."""
    return f"data:{mime_type(encoding)};base64,{b64(data)}"


def hash_bytes(data: bytes) -> str:
    """Hex sha256 of image bytes, for cache keys."""
    return hashlib.sha256(data).hexdigest()


def prepare_frame(path: str | Path, min_pixels: int, max_pixels: int,
                  encoding: str = DEFAULT_FRAME_ENCODING) -> bytes:
    """Load, smart-resize and encode one frame.

    Args:
        path: the frame file.
        min_pixels: lower area bound.
        max_pixels: upper area bound.
        encoding: ``png`` (lossless) or ``jpeg`` (:func:`encode_frame`).

    Returns:
        The encoded bytes of the resized frame.
    """
    return encode_frame(resize_frame(load_frame(path), min_pixels, max_pixels), encoding)


def draw_rc_box(resized: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    """The official region-captioning start frame (see the module docstring).

    Args:
        resized: the start frame, already resized with ``smart_resize``.
        box: ``start_frame_bbox`` as given, ``[x1, y1, x2, y2]``; drawn unscaled.

    Returns:
        A new image: rotated 270° if portrait, with a green width-8 rectangle at ``box``.

    Raises:
        ValueError: a box that is not four numbers with x1 <= x2 and y1 <= y2.
    """
    if len(box) != 4:
        raise ValueError(f"RC box must be [x1, y1, x2, y2], got {box!r}")
    x1, y1, x2, y2 = (float(v) for v in box)
    if x2 < x1 or y2 < y1:
        raise ValueError(f"RC box corners are out of order: {box!r}")
    out = resized.copy()
    if out.height > out.width:
        out = out.rotate(270, expand=True)
    ImageDraw.Draw(out).rectangle([x1, y1, x2, y2], outline=BOX_COLOR, width=BOX_WIDTH)
    return out


def rc_position(frames: Sequence[str], rc_frame: str | None) -> int | None:
    """Where the RC start frame sits in the request's frame list (path equality), or None.

    >>> rc_position(["a.jpg", "b.jpg"], "b.jpg"), rc_position(["a.jpg"], "z.jpg")
    (1, None)
    """
    if rc_frame is None:
        return None
    try:
        return list(frames).index(rc_frame)
    except ValueError:
        return None


def prepare_rc_frame(
    path: str | Path, box: tuple[float, float, float, float], min_pixels: int, max_pixels: int,
    encoding: str = DEFAULT_FRAME_ENCODING,
) -> bytes:
    """Load a start frame, resize it, draw the RC box (:func:`draw_rc_box`) and encode it (:func:`encode_frame`).

    Raises:
        InputError: unreadable frame or a malformed box (naming the frame).
    """
    img = resize_frame(load_frame(path), min_pixels, max_pixels)
    try:
        boxed = draw_rc_box(img, box)
    except ValueError as exc:
        raise InputError(str(exc), path=path) from None
    return encode_frame(boxed, encoding)
