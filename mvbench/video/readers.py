"""Video readers with one small API over decord, PyAV, OpenCV and folders of frame images.

A reader has an ``info`` (:class:`VideoInfo`) and ``iter_frames(indices)``, which decodes the
video **once, in order**, and yields ``(index, frame)`` for the requested indices only (sorted,
de-duplicated), each frame an (H, W, 3) RGB uint8 array. Frame ``i`` is the ``i``-th decoded
frame, i.e. the one shown at ``t = i / fps``.

Backends, tried in this order when none is forced (argument, or the ``MVBENCH_VIDEO_BACKEND``
environment variable): ``pyav`` (FFmpeg frame-threaded decode that seeks over GOPs holding no
wanted frame; unwanted frames are never colour-converted), ``decord`` (``get_batch`` in chunks,
also keyframe-aware), ``opencv`` (``grab`` everything, convert only wanted frames). PyAV comes
first because it was the fastest in ``bench/frames.py`` (720p h264, 1 and 2 fps sampling, GOP 60
and 250: 1.0-2.9x ffmpeg's own throughput, ahead of decord in every case) and it installs on every
platform, while decord is x86_64-only. All backends return identical frame indices (tested).
A folder of images, or an explicit list of image paths, is read by :class:`ImageSequence` at a
given fps.

Every problem with the file itself (missing, zero-length, unreadable, no frames, index past the
end) raises :class:`mvbench.errors.VideoError` naming the file.
"""

from __future__ import annotations

import bisect
import importlib.util
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from mvbench.errors import MvbenchError, VideoError

BACKENDS: tuple[str, ...] = ("pyav", "decord", "opencv")
BACKEND_ENV_VAR = "MVBENCH_VIDEO_BACKEND"
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
_BACKEND_MODULES = {"decord": "decord", "pyav": "av", "opencv": "cv2"}
# Frames per decord get_batch call: bounds memory (32 x 1080p RGB = 200 MB).
DECORD_CHUNK = 32


@dataclass(frozen=True)
class VideoInfo:
    """What a reader knows about a video before decoding it.

    Attributes:
        path: the file (or frame folder) read.
        num_frames: number of frames.
        fps: native frame rate.
        width: frame width in pixels.
        height: frame height in pixels.
        duration_s: ``num_frames / fps``.
        backend: ``"decord"``, ``"pyav"``, ``"opencv"`` or ``"images"``.
    """

    path: str
    num_frames: int
    fps: float
    width: int
    height: int
    duration_s: float
    backend: str


def available_backends() -> list[str]:
    """Video backends importable here, in order of preference.

    Returns:
        A sub-list of :data:`BACKENDS`.
    """
    return [b for b in BACKENDS if importlib.util.find_spec(_BACKEND_MODULES[b]) is not None]


def resolve_backend(backend: str | None = None) -> str:
    """Pick the backend: the argument, else ``$MVBENCH_VIDEO_BACKEND``, else the first available.

    Args:
        backend: a name from :data:`BACKENDS`, or None.

    Returns:
        The backend name.

    Raises:
        ValueError: an unknown backend name.
        MvbenchError: the requested backend (or every backend) is not installed.
    """
    name = backend or os.environ.get(BACKEND_ENV_VAR) or None
    if name is None:
        found = available_backends()
        if not found:
            raise MvbenchError(f"no video backend installed: install one of {', '.join(BACKENDS)}")
        return found[0]
    name = name.strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"unknown video backend {name!r}; known: {', '.join(BACKENDS)}")
    if importlib.util.find_spec(_BACKEND_MODULES[name]) is None:
        raise MvbenchError(f"video backend {name!r} is not installed (pip install {_BACKEND_MODULES[name]})")
    return name


class VideoReader(ABC):
    """Common interface: ``info``, ``iter_frames(indices)``, ``close()``; usable as a context manager."""

    info: VideoInfo

    @abstractmethod
    def iter_frames(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Decode once, in order, yielding ``(index, RGB uint8 frame)`` for the wanted indices.

        Args:
            indices: frame indices, in any order, duplicates allowed.

        Returns:
            An iterator over ``(index, (H, W, 3) uint8 array)`` in increasing index order, each
            index once.

        Raises:
            VideoError: an index is outside ``[0, num_frames)`` or cannot be decoded.
        """

    def close(self) -> None:
        """Release the underlying decoder (a no-op for readers that hold nothing open)."""

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wanted(self, indices: Sequence[int]) -> list[int]:
        """Sorted unique indices, checked against the frame count before any decoding."""
        wanted = sorted({int(i) for i in indices})
        if wanted and (wanted[0] < 0 or wanted[-1] >= self.info.num_frames):
            bad = wanted[0] if wanted[0] < 0 else wanted[-1]
            raise VideoError(f"frame index {bad} is out of range: the video has "
                             f"{self.info.num_frames} frames (0..{self.info.num_frames - 1})",
                             path=self.info.path)
        return wanted

    def _ended_early(self, index: int, decoded: int) -> VideoError:
        return VideoError(f"frame index {index} could not be decoded: the stream ended after "
                          f"{decoded} frames (header says {self.info.num_frames})", path=self.info.path)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError("video file not found", path=path)
    if path.is_dir():
        raise VideoError("is a folder, not a video file (pass fps= to read it as frame images)", path=path)
    if path.stat().st_size == 0:
        raise VideoError("video file is empty (0 bytes)", path=path)


def _make_info(path: Path, num_frames: int, fps: float, width: int, height: int, backend: str) -> VideoInfo:
    if num_frames <= 0:
        raise VideoError("video has no frames", path=path)
    if not fps or fps <= 0 or not np.isfinite(fps):
        raise VideoError(f"video has no usable frame rate ({fps!r})", path=path)
    return VideoInfo(path=str(path), num_frames=int(num_frames), fps=float(fps), width=int(width),
                     height=int(height), duration_s=num_frames / fps, backend=backend)


class DecordReader(VideoReader):
    """decord backend: ``get_batch`` over the sorted wanted indices, :data:`DECORD_CHUNK` at a time.

    decord walks forward through the stream and only seeks (to the keyframe before a frame) when
    that frame lies past the next keyframe, so one sorted pass never decodes a frame twice and
    skips whole GOPs that hold no wanted frame.
    """

    def __init__(self, path: str | Path, num_threads: int = 0):
        import decord

        self._path = Path(path)
        _check_file(self._path)
        try:
            self._vr = decord.VideoReader(str(self._path), ctx=decord.cpu(0), num_threads=num_threads)
            num_frames = len(self._vr)
            fps = self._vr.get_avg_fps()
            height, width = self._vr[0].shape[:2] if num_frames else (0, 0)
            self._vr.seek(0)
        except (RuntimeError, decord.DECORDError) as e:
            raise VideoError(f"cannot read video with decord: {_first_line(e)}", path=self._path) from e
        self.info = _make_info(self._path, num_frames, fps, width, height, "decord")

    def iter_frames(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        import decord

        wanted = self._wanted(indices)
        for start in range(0, len(wanted), DECORD_CHUNK):
            chunk = wanted[start:start + DECORD_CHUNK]
            try:
                batch = self._vr.get_batch(chunk).asnumpy()
            except (RuntimeError, decord.DECORDError) as e:
                raise VideoError(f"cannot decode frames {chunk[0]}..{chunk[-1]} with decord: "
                                 f"{_first_line(e)}", path=self._path) from e
            for i, frame in zip(chunk, batch):
                yield i, frame

    def close(self) -> None:
        self._vr = None


class PyAVReader(VideoReader):
    """PyAV backend: threaded decode that seeks over whole GOPs holding no wanted frame.

    The first ``iter_frames`` call demuxes the stream once (packets only, no decoding: cheap)
    to map each presentation timestamp to its frame index and to find the keyframes. Decoding
    then jumps to the keyframe before the next wanted frame whenever that keyframe lies ahead
    of the decoder, like decord's ``get_batch``, but with FFmpeg's frame threads. Frames that
    are decoded but not wanted are never converted to RGB. Streams without usable timestamps
    are decoded sequentially, counting frames.
    """

    # Seek only when at least this many frames would otherwise be decoded for nothing: a seek
    # flushes the threaded decoder, which costs a few frames of latency.
    MIN_SEEK_GAIN = 8

    def __init__(self, path: str | Path):
        import av

        self._path = Path(path)
        _check_file(self._path)
        self._timeline: tuple[dict[int, int], list[int], list[int]] | None = None
        try:
            with av.open(str(self._path)) as container:
                if not container.streams.video:
                    raise VideoError("file has no video stream", path=self._path)
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate
                fps = float(Fraction(rate)) if rate else 0.0
                num_frames = stream.frames
                if num_frames <= 0:  # some containers do not store a count: count packets instead
                    num_frames = sum(1 for p in container.demux(stream) if p.size and not p.is_discard)
                width, height = stream.codec_context.width, stream.codec_context.height
        except av.error.FFmpegError as e:
            raise VideoError(f"cannot read video with PyAV: {_first_line(e)}", path=self._path) from e
        self.info = _make_info(self._path, num_frames, fps, width, height, "pyav")

    def _scan(self, container, stream) -> tuple[dict[int, int], list[int], list[int]] | None:
        """(pts -> frame index, keyframe indices, pts by index) from one demux pass, or None."""
        packets = [(p.pts, p.is_keyframe) for p in container.demux(stream)
                   if p.size and not p.is_discard]
        if not packets or any(pts is None for pts, _ in packets):
            return None
        packets.sort()
        pts_sorted = [pts for pts, _ in packets]
        if len(set(pts_sorted)) != len(pts_sorted):
            return None
        keyframes = [i for i, (_, key) in enumerate(packets) if key]
        if not keyframes or keyframes[0] != 0:
            return None
        return {pts: i for i, pts in enumerate(pts_sorted)}, keyframes, pts_sorted

    def iter_frames(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        import av

        wanted = self._wanted(indices)
        if not wanted:
            return
        try:
            if self._timeline is None:
                with av.open(str(self._path)) as container:
                    self._timeline = self._scan(container, container.streams.video[0]) or ({}, [], [])
            with av.open(str(self._path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                if self._timeline[0]:
                    yield from self._iter_seeking(container, stream, wanted)
                else:
                    yield from self._iter_counting(container, stream, wanted)
        except av.error.FFmpegError as e:
            raise VideoError(f"cannot decode video with PyAV: {_first_line(e)}", path=self._path) from e

    def _iter_counting(self, container, stream, wanted: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        position, decoded = 0, 0
        for frame in container.decode(stream):
            if decoded == wanted[position]:
                yield decoded, frame.to_ndarray(format="rgb24")
                position += 1
                if position == len(wanted):
                    return
            decoded += 1
        raise self._ended_early(wanted[position], decoded)

    def _iter_seeking(self, container, stream, wanted: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        assert self._timeline is not None
        pts_to_index, keyframes, pts_by_index = self._timeline
        if wanted[-1] >= len(pts_by_index):
            raise self._ended_early(wanted[-1], len(pts_by_index))
        position, last = 0, -1  # next wanted entry; last frame index the decoder produced
        while position < len(wanted):
            target = wanted[position]
            keyframe = keyframes[bisect.bisect_right(keyframes, target) - 1]
            if keyframe - last > self.MIN_SEEK_GAIN or target <= last:
                container.seek(pts_by_index[keyframe], backward=True, any_frame=False, stream=stream)
                last = keyframe - 1
            for frame in container.decode(stream):
                index = pts_to_index.get(frame.pts)
                if index is None or index <= last:
                    continue  # e.g. leading frames of an open GOP after a seek
                last = index
                if index < target:
                    continue
                if index > target:  # should not happen: timestamps lied
                    raise VideoError(f"frame index {target} was skipped by the decoder "
                                     f"(got frame {index})", path=self._path)
                yield index, frame.to_ndarray(format="rgb24")
                position += 1
                if position == len(wanted):
                    return
                target = wanted[position]
                nxt = keyframes[bisect.bisect_right(keyframes, target) - 1]
                if nxt - last > self.MIN_SEEK_GAIN:
                    break  # the next wanted frame is past a later keyframe: seek there
            else:
                raise self._ended_early(target, last + 1)


class OpenCVReader(VideoReader):
    """OpenCV backend: ``grab()`` every frame, ``retrieve()`` and convert only the wanted ones."""

    def __init__(self, path: str | Path):
        import cv2

        self._path = Path(path)
        _check_file(self._path)
        cap = cv2.VideoCapture(str(self._path))
        try:
            if not cap.isOpened():
                raise VideoError("cannot read video with OpenCV (unknown format or corrupt file)",
                                 path=self._path)
            num_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            fps = float(cap.get(cv2.CAP_PROP_FPS))
            width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
            height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        finally:
            cap.release()
        self.info = _make_info(self._path, num_frames, fps, width, height, "opencv")

    def iter_frames(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        import cv2

        wanted = self._wanted(indices)
        if not wanted:
            return
        wanted_set = set(wanted)
        cap = cv2.VideoCapture(str(self._path))
        try:
            for decoded in range(wanted[-1] + 1):
                if not cap.grab():
                    raise self._ended_early(next(i for i in wanted if i >= decoded), decoded)
                if decoded in wanted_set:
                    ok, bgr = cap.retrieve()
                    if not ok:
                        raise VideoError(f"cannot decode frame {decoded} with OpenCV", path=self._path)
                    yield decoded, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()


def _natural_key(name: str) -> list[object]:
    """Sort key that orders ``frame_2`` before ``frame_10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class ImageSequence(VideoReader):
    """A folder of frame images (or an ordered list of image paths) read as a video at ``fps``.

    Frame ``i`` is the ``i``-th image in natural name order (``2.png`` before ``10.png``), or the
    ``i``-th path of the list. Serves the frame-folder sources (CholecT50 ``VIDxx/000000.png``,
    CholecTrack20 ``Frames/*.png``, CoPESD keyframes, EgoSurgery ``VV_S_FFFF.jpg``).

    Args:
        source: a folder, or a sequence of image paths in frame order.
        fps: the rate the images were sampled at.
        pattern: glob for the folder's images; by default every file with an image extension.
    """

    def __init__(self, source: str | Path | Sequence[str | Path], fps: float, pattern: str | None = None):
        if isinstance(source, (str, os.PathLike)):
            folder = Path(source)
            if not folder.is_dir():
                raise VideoError("frame folder not found", path=folder)
            candidates = folder.glob(pattern) if pattern else folder.iterdir()
            paths = [p for p in candidates if p.is_file()
                     and (pattern is not None or p.suffix.lower() in IMAGE_EXTENSIONS)]
            paths.sort(key=lambda p: _natural_key(p.name))
            label = folder
        else:
            paths = [Path(p) for p in source]
            label = paths[0].parent if paths else Path("<empty image list>")
        if not paths:
            raise VideoError("no frame images found", path=label)
        self._paths = paths
        width, height = self._image_size(paths[0])
        self.info = _make_info(label, len(paths), fps, width, height, "images")

    @property
    def paths(self) -> list[Path]:
        """The image files, in frame order."""
        return list(self._paths)

    @staticmethod
    def _image_size(path: Path) -> tuple[int, int]:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                return image.size
        except (OSError, UnidentifiedImageError) as e:
            raise VideoError(f"cannot read frame image: {_first_line(e)}", path=path) from e

    def iter_frames(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        from PIL import Image, UnidentifiedImageError

        for i in self._wanted(indices):
            path = self._paths[i]
            try:
                with Image.open(path) as image:
                    frame = np.asarray(image.convert("RGB"))
            except (OSError, UnidentifiedImageError) as e:
                raise VideoError(f"cannot read frame image {i}: {_first_line(e)}", path=path) from e
            yield i, frame


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


_READERS = {"decord": DecordReader, "pyav": PyAVReader, "opencv": OpenCVReader}


def open_video(path: str | Path | Sequence[str | Path], backend: str | None = None, *,
               fps: float | None = None) -> VideoReader:
    """Open a video file, a folder of frame images, or an ordered list of image paths.

    Args:
        path: a video file; or a frame folder / list of image paths (then ``fps`` is required).
        backend: force ``"decord"``, ``"pyav"`` or ``"opencv"`` for a video file; default: the
            ``MVBENCH_VIDEO_BACKEND`` environment variable, else the first installed backend.
        fps: the frame rate of a frame folder or image list (ignored for video files, whose
            rate is read from the file).

    Returns:
        A :class:`VideoReader`.

    Raises:
        VideoError: the file is missing, empty, unreadable or has no frames.
        ValueError: a frame folder or image list without ``fps``, or an unknown backend.
    """
    if not isinstance(path, (str, os.PathLike)) or Path(path).is_dir():
        if fps is None:
            raise ValueError(f"{path}: frame images need fps= (the rate they were sampled at)")
        return ImageSequence(path, fps=fps)
    return _READERS[resolve_backend(backend)](path)


def probe(path: str | Path | Sequence[str | Path], backend: str | None = None, *,
          fps: float | None = None) -> VideoInfo:
    """Read a video's frame count, rate and size without decoding frames (beyond the first).

    Args:
        path: as for :func:`open_video`.
        backend: as for :func:`open_video`.
        fps: as for :func:`open_video`.

    Returns:
        The :class:`VideoInfo`.
    """
    with open_video(path, backend, fps=fps) as reader:
        return reader.info
