"""Synthetic test videos whose frames say which frame they are.

Every frame ``i`` carries its number twice:

* **machine-readable**: the top half of the frame is a 2 x 8 grid of black/white cells holding
  the 16 bits of ``i`` (most significant bit first, row by row). Cells are large (1/8 of the width,
  1/4 of the height) and read at their centre, so they survive h264/mpeg4, yuv420p chroma
  subsampling, JPEG and resizing. :func:`read_frame_number` decodes them.
* **human-readable**: the digits are printed in the bottom half, over a seeded noise background
  that drifts from frame to frame (so the codec has real work to do, as with real footage).

Videos are written by piping raw RGB frames into ``ffmpeg`` (``libx264 -pix_fmt yuv420p`` or
``mpeg4``); without an ``ffmpeg`` binary, OpenCV's ``mp4v`` VideoWriter is used instead.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from mvbench.video.readers import VideoInfo

GRID_ROWS = 2
GRID_COLS = 8
NUM_BITS = GRID_ROWS * GRID_COLS
MAX_FRAME_NUMBER = 2**NUM_BITS - 1

# A cell whose centre mean falls between these grey levels is neither black nor white.
_DARK_MAX = 90
_LIGHT_MIN = 165


def _cell_box(row: int, col: int, height: int, width: int) -> tuple[int, int, int, int]:
    """Pixel box (y0, y1, x0, x1) of one bit cell in a frame of the given size."""
    band = height // 2
    y0, y1 = row * band // GRID_ROWS, (row + 1) * band // GRID_ROWS
    x0, x1 = col * width // GRID_COLS, (col + 1) * width // GRID_COLS
    return y0, y1, x0, x1


def draw_frame_number(frame: np.ndarray, number: int) -> np.ndarray:
    """Draw ``number`` on an RGB frame in place: the bit grid (top half) and digits (bottom half).

    Args:
        frame: (H, W, 3) uint8 RGB array, at least 16 x 16 pixels.
        number: 0 .. 65535.

    Returns:
        The same array, for chaining.
    """
    if not 0 <= number <= MAX_FRAME_NUMBER:
        raise ValueError(f"frame number {number} does not fit in {NUM_BITS} bits")
    height, width = frame.shape[:2]
    for bit in range(NUM_BITS):
        row, col = divmod(bit, GRID_COLS)
        y0, y1, x0, x1 = _cell_box(row, col, height, width)
        on = (number >> (NUM_BITS - 1 - bit)) & 1
        frame[y0:y1, x0:x1] = 255 if on else 0
    scale = max(0.25, height / 200)
    thickness = max(1, int(round(scale * 2)))
    text_y = height - max(2, height // 10)
    cv2.putText(frame, str(number), (max(1, width // 20), text_y), cv2.FONT_HERSHEY_SIMPLEX,
                scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(frame, str(number), (max(1, width // 20), text_y), cv2.FONT_HERSHEY_SIMPLEX,
                scale, (255, 255, 0), thickness, cv2.LINE_AA)
    return frame


def read_frame_number(image: np.ndarray) -> int:
    """Decode the frame number drawn by :func:`draw_frame_number` (RGB or BGR, any size).

    Each cell is judged by the mean grey level of its central half, which is robust to block
    artefacts and blur at cell edges.

    Args:
        image: (H, W, 3) or (H, W) uint8 array, a frame of a synthetic video, possibly
            re-encoded or resized.

    Returns:
        The frame number.

    Raises:
        ValueError: a cell is neither clearly dark nor clearly light (not a synthetic frame, or
            damaged beyond recognition).
    """
    grey = image.mean(axis=2) if image.ndim == 3 else image.astype(np.float64)
    height, width = grey.shape
    number = 0
    for bit in range(NUM_BITS):
        row, col = divmod(bit, GRID_COLS)
        y0, y1, x0, x1 = _cell_box(row, col, height, width)
        dy, dx = max(1, (y1 - y0) // 4), max(1, (x1 - x0) // 4)
        level = float(grey[y0 + dy:y1 - dy, x0 + dx:x1 - dx].mean())
        if _DARK_MAX < level < _LIGHT_MIN:
            raise ValueError(f"bit cell {bit} has grey level {level:.0f}: not a synthetic frame number")
        number = (number << 1) | int(level >= _LIGHT_MIN)
    return number


def _background(width: int, height: int, seed: int) -> np.ndarray:
    """A seeded, smooth colour texture twice the frame width, so that shifting it looks like motion."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 216, size=(max(2, height // 8), max(2, width // 4), 3), dtype=np.uint8)
    return cv2.resize(small, (2 * width, height), interpolation=cv2.INTER_LINEAR)


def _frames(num_frames: int, width: int, height: int, seed: int) -> Iterator[np.ndarray]:
    background = _background(width, height, seed)
    for i in range(num_frames):
        shift = (i * 3) % width
        frame = np.ascontiguousarray(background[:, shift:shift + width])
        yield draw_frame_number(frame, i)


def _check_size(width: int, height: int) -> None:
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ValueError(f"frame size {width}x{height}: width and height must be even and >= 16")


def make_test_video(path: str | Path, duration_s: float, fps: float, width: int, height: int,
                    codec: str = "h264", seed: int = 0, gop: int | None = None) -> Path:
    """Write a synthetic video whose frame ``i`` shows the number ``i`` (see module docstring).

    Args:
        path: output file (``.mp4`` recommended); parent folders are created.
        duration_s: length in seconds; the video has ``round(duration_s * fps)`` frames (at least 1).
        fps: frame rate.
        width: frame width in pixels (even, >= 16).
        height: frame height in pixels (even, >= 16).
        codec: ``"h264"`` (libx264, yuv420p) or ``"mpeg4"``. Without ffmpeg both fall back to
            OpenCV's ``mp4v`` (MPEG-4 part 2).
        seed: seed of the background texture.
        gop: keyframe interval in frames; ``None`` keeps the encoder default (x264: 250).

    Returns:
        The path written.
    """
    if codec not in ("h264", "mpeg4"):
        raise ValueError(f"codec must be 'h264' or 'mpeg4', not {codec!r}")
    _check_size(width, height)
    num_frames = max(1, int(round(duration_s * fps)))
    if num_frames - 1 > MAX_FRAME_NUMBER:
        raise ValueError(f"{num_frames} frames: at most {MAX_FRAME_NUMBER + 1} can be numbered")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return _write_with_opencv(path, num_frames, fps, width, height, seed)

    if codec == "h264":
        codec_args = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
    else:
        codec_args = ["-c:v", "mpeg4", "-q:v", "3", "-pix_fmt", "yuv420p"]
    if gop is not None:
        codec_args += ["-g", str(gop)]
    cmd = [ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{width}x{height}", "-framerate", repr(float(fps)), "-i", "pipe:0",
           *codec_args, str(path)]
    # The context manager closes every pipe and waits, even on an error (no unclosed file left).
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        try:
            for frame in _frames(num_frames, width, height, seed):
                proc.stdin.write(frame.tobytes())
        except BrokenPipeError:
            pass  # ffmpeg stopped reading: its error is reported below
        finally:
            proc.stdin.close()
        stderr = proc.stderr.read().decode(errors="replace")
        proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed writing {path}: {stderr.strip()}")
    return path


def _write_with_opencv(path: Path, num_frames: int, fps: float, width: int, height: int,
                       seed: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path} (no ffmpeg binary either)")
    try:
        for frame in _frames(num_frames, width, height, seed):
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def make_frame_folder(dir: str | Path, n: int, fps: float, size: tuple[int, int],
                      pattern: str = "{:06d}.png", names: Sequence[str] | None = None,
                      seed: int = 0) -> VideoInfo:
    """Write ``n`` numbered frames as images, like the frame-folder sources (CholecT50, CoPESD...).

    Image ``i`` (in sorted name order) shows the number ``i``.

    Args:
        dir: output folder (created).
        n: number of frames.
        fps: the rate the frames stand for (recorded in the returned info).
        size: (width, height) in pixels.
        pattern: file name pattern, formatted with the frame position ``i``; the extension picks
            the format (``.png``, ``.jpg``...).
        names: explicit file names instead of ``pattern`` (``len(names) == n``), e.g. the
            25-fps frame numbers CholecTrack20 uses (``000001.png``, ``000026.png``...).
        seed: seed of the background texture.

    Returns:
        A :class:`VideoInfo` describing the folder as a video (backend ``"images"``).
    """
    width, height = size
    _check_size(width, height)
    if names is not None and len(names) != n:
        raise ValueError(f"{len(names)} names given for {n} frames")
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(_frames(n, width, height, seed)):
        name = names[i] if names is not None else pattern.format(i)
        if not cv2.imwrite(str(out / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
            raise RuntimeError(f"cannot write image {out / name}")
    return VideoInfo(path=str(out), num_frames=n, fps=float(fps), width=width, height=height,
                     duration_s=n / fps, backend="images")
