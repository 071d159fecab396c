"""Clip windows, sampling rates and frame indices for task instances.

Sampling rate: each instance draws its fps from the paper's distribution (:data:`FPS_WEIGHTS`:
0.5 fps ≈ 63 %, 1 fps ≈ 22 %, 2 fps ≈ 7.5 %, small bins at 0.1, 0.2, 0.25 and 3 fps). Only the
bins the video's frames can serve are used (:func:`allowed_fps`): never faster than the rate the
frames really exist at (:func:`store_rate`; a 0.5-fps frame store never gets 1 fps, which would
repeat every frame), and on sparse stores only rates whose sample period is a whole number of
store frames (0.2 fps on a 0.5-fps store would show frames 1 s away from their sample times). A
drawn rate that is not allowed is lowered to the nearest allowed bin; the rate is then moved to
the nearest allowed bin that keeps the frame count within ``[min_frames, max_frames]`` (long
clips go down to 0.1 fps, very short ones up).

Frames of a clip (:func:`clip_indices`): sample times are ``start + k / fps`` below the clip end
(:func:`mvbench.video.sampling.sample_times`). A video file shows the frame at each time
(:func:`mvbench.video.sampling.sample_indices`). A frame store shows, for each sample time, the
stored frame nearest to it within half a sample period (the frame no other sample time is
nearer to); a clip whose store has no frame that close to some sample time cannot be shown at
that rate (``None``: the generators lower the rate or skip the instance and report it). So a
record never shows a frame twice, and the frame at list position ``k`` is shown at
``start + k / fps`` give or take half a sample period (exactly, on a regular store at an allowed
rate).

Frame grid: clip starts are moved onto a frame that exists (:func:`align_start`), so the first
frame shown is the frame at the clip start and answer times count from it. A clip never holds
more than ``max_frames`` frames at the lowest allowed rate (:func:`max_clip_len`); generators
shorten longer windows before computing answers, so no answer talks about frames the model
never sees.

Windows for TAG/DVC (:func:`covering_windows`) are built so that every event lands in at least
one window: walk the events by start time; an event not yet inside a window opens a new one
starting a random pad before it, of a random length, stretched to the end of the event (capped at
``max_len``). Every event that lies wholly inside a window is covered by it.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path  # noqa: F401 - used by the doctests
from statistics import median

from mvbench.builders.base import Event, VideoMeta
from mvbench.video.sampling import sample_indices, sample_times

# Paper (PAGE): 0.5 fps 63.3 %, 1.0 fps 22.0 %, 2.0 fps 7.5 %; the remaining 7.2 % over small bins.
FPS_WEIGHTS: dict[float, float] = {0.5: 0.633, 1.0: 0.22, 2.0: 0.075, 0.1: 0.02, 0.2: 0.02,
                                   0.25: 0.02, 3.0: 0.012}
FPS_BINS: tuple[float, ...] = tuple(sorted(FPS_WEIGHTS))
MIN_CLIP_S = 20.0
MAX_CLIP_S = 1800.0
# A rate whose sample times fall between store frames is tolerated while the nearest frame is at
# most this far away (stores of >= 10 fps: 2 fps on a 15-fps store is off by 1/30 s at most).
GRID_TOLERANCE_S = 0.05


def store_rate(meta: VideoMeta) -> float:
    """Frames per second at which the video's frames really exist.

    A video file: ``native_fps``. A frame store: ``native_fps`` divided by the median step
    between stored frame numbers (CholecTrack20's 1-fps PNGs numbered at 25 fps give 1.0).
    """
    if meta.frame_files is None or len(meta.frame_files) < 2:
        return meta.native_fps
    keys = sorted(meta.frame_files)
    return meta.native_fps / median(b - a for a, b in zip(keys, keys[1:]))


def allowed_fps(meta: VideoMeta) -> tuple[float, ...]:
    """The :data:`FPS_BINS` a video's frames can serve (see the module docstring).

    >>> from pathlib import Path
    >>> store = VideoMeta("v", 0.5, 10, 20.0, frame_files={k: Path(f"{k}.jpg") for k in range(10)})
    >>> allowed_fps(store)
    (0.1, 0.25, 0.5)
    """
    rate = store_rate(meta)
    out = []
    for f in FPS_BINS:
        if f > rate * (1 + 1e-9):
            continue
        ratio = rate / f
        if abs(ratio - round(ratio)) > 1e-6 and 0.5 / rate > GRID_TOLERANCE_S:
            continue
        out.append(f)
    return tuple(out) or (FPS_BINS[0],)


def max_clip_len(max_frames: int, allowed: Sequence[float] = FPS_BINS) -> float:
    """The longest clip (seconds) whose frames fit ``max_frames`` at the lowest allowed rate."""
    return max_frames / min(allowed)


def align_start(meta: VideoMeta, t: float) -> float:
    """The time of the last existing frame at or before ``t`` (the first frame if none).

    >>> align_start(VideoMeta("v", 30.0, 900, 30.0, path=Path("v.mp4")), 2.51)
    2.5
    """
    if meta.frame_files is None:
        index = min(max(math.floor(t * meta.native_fps + 1e-6), 0), meta.num_frames - 1)
        return index / meta.native_fps
    keys = sorted(meta.frame_files)
    pos = bisect.bisect_right(keys, t * meta.native_fps + 1e-6)
    return keys[max(pos - 1, 0)] / meta.native_fps


def instance_rng(seed: int, key: str) -> random.Random:
    """A RNG seeded from the build seed and an instance (or window) key: stable across runs."""
    digest = hashlib.sha256(f"{seed}:{key}".encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def choose_fps(rng: random.Random, duration_s: float, min_frames: int = 4,
               max_frames: int = 256, allowed: Sequence[float] = FPS_BINS) -> float:
    """Draw a sampling rate from :data:`FPS_WEIGHTS`, then fit it to the frame budget.

    Args:
        rng: the instance's RNG.
        duration_s: clip length in seconds.
        min_frames / max_frames: the frame-count budget per instance.
        allowed: the bins the video can serve (:func:`allowed_fps`); a drawn rate above them is
            lowered to the nearest allowed bin below it.

    Returns:
        One of ``allowed``: the drawn rate if its frame count fits, else the closest allowed bin
        that fits (the lowest if none reaches ``min_frames`` without passing ``max_frames``).
    """
    bins = tuple(sorted(allowed))
    drawn = rng.choices(list(FPS_WEIGHTS), weights=list(FPS_WEIGHTS.values()))[0]
    if drawn not in bins:
        drawn = max((f for f in bins if f <= drawn), default=bins[0])

    def count(f: float) -> int:
        return max(1, int(duration_s * f + 1 - 1e-9))

    if min_frames <= count(drawn) <= max_frames:
        return drawn
    fitting = [f for f in bins if min_frames <= count(f) <= max_frames]
    if fitting:
        return min(fitting, key=lambda f: (abs(bins.index(f) - bins.index(drawn)), f))
    under = [f for f in bins if count(f) <= max_frames]
    return max(under) if under else bins[0]


def clip_indices(meta: VideoMeta, start_s: float, end_s: float, fps: float,
                 max_frames: int = 256) -> list[int] | None:
    """Native frame indices of a clip: one per sample time, never a frame twice.

    Args:
        meta: the video (``frame_files`` keys are the frames that exist, for frame folders).
        start_s / end_s: the clip window in seconds; ``start_s`` should be a frame's time
            (:func:`align_start`), so that the first frame shown is the frame at the clip start.
        fps: sampling rate.
        max_frames: hard cap (the first ``max_frames`` samples are kept).

    Returns:
        Strictly increasing native indices, one per sample time; None when the video cannot show
        the clip at this rate: a sample time with no stored frame within half a sample period, a
        first frame that is not the frame at ``start_s``, or (a video file) a rate above the
        native one.

    >>> store = VideoMeta("v", 25.0, 1000, 40.0, frame_files={25 * i: Path(f"{i}.png") for i in range(40)})
    >>> clip_indices(store, 0.0, 4.0, 1.0), clip_indices(store, 0.0, 4.0, 2.0)
    ([0, 25, 50, 75], None)
    """
    if meta.frame_files is None:
        indices = sample_indices(start_s, end_s, fps, meta.native_fps, meta.num_frames)[:max_frames]
        if any(b <= a for a, b in pairwise(indices)):
            return None
        return indices
    available = sorted(meta.frame_files)
    half = 0.5 * meta.native_fps / fps  # half a sample period, in native frames
    out: list[int] = []
    for k, t in enumerate(sample_times(start_s, end_s, fps)[:max_frames]):
        at = t * meta.native_fps
        lo = bisect.bisect_left(available, at - half - 1e-9)
        hi = bisect.bisect_left(available, at + half - 1e-9)  # [at - half, at + half): no frame twice
        if lo == hi:
            return None
        ideal = math.floor(at + 0.5)  # the frame a video file shows (time_to_index)
        best = ideal if ideal in meta.frame_files and available[lo] <= ideal <= available[hi - 1] \
            else min(available[lo:hi], key=lambda i: (abs(i - at), i))
        if k == 0 and abs(best - at) > 0.5 + 1e-6:
            return None  # the first frame shown must be the frame at the clip start
        out.append(best)
    return out


def frame_at(meta: VideoMeta, t: float) -> int | None:
    """The existing native frame shown at time ``t`` exactly (within half a native frame), else None.

    >>> store = VideoMeta("v", 1.0, 40, 40.0, frame_files={k: Path(f"{k}.png") for k in (0, 8, 16)})
    >>> frame_at(store, 8.0), frame_at(store, 9.0)
    (8, None)
    """
    index = math.floor(t * meta.native_fps + 0.5)
    if abs(index - t * meta.native_fps) > 0.5 + 1e-6 or not 0 <= index < meta.num_frames:
        return None
    if meta.frame_files is not None and index not in meta.frame_files:
        return None
    return index


@dataclass(frozen=True)
class Window:
    """A clip window and the events it covers (indices into the annotation's events)."""

    start_s: float
    end_s: float
    covers: tuple[int, ...]

    @property
    def length_s(self) -> float:
        return self.end_s - self.start_s


def covering_windows(events: Sequence[tuple[int, Event]], duration_s: float, rng: random.Random,
                     min_len: float, max_len: float, pad_s: float = 5.0) -> list[Window]:
    """Windows such that every given event lies wholly inside at least one (see module docstring).

    An event longer than ``max_len`` gets a window of ``max_len`` from its start and counts as
    covered by it (its span is clipped to the window).

    Args:
        events: ``(index, event)`` pairs (index into ``VideoAnnotation.events``).
        duration_s: the video length; windows stay inside ``[0, duration_s]``.
        rng: window RNG.
        min_len / max_len: the random window length range (before stretching to an event end).
        pad_s: at most this much context before the first event of a window.

    Returns:
        Windows in start order.
    """
    ordered = sorted(events, key=lambda p: (p[1].start_s, p[1].end_s, p[0]))
    covered: set[int] = set()
    windows: list[Window] = []
    max_len = min(max_len, MAX_CLIP_S)
    for idx, ev in ordered:
        if idx in covered:
            continue
        start = max(0.0, ev.start_s - rng.uniform(0.0, pad_s))
        length = rng.uniform(min_len, max(min_len, max_len * 0.5))
        end = max(start + length, min(ev.end_s + rng.uniform(0.0, pad_s), start + max_len))
        end = min(end, start + max_len, max(duration_s, ev.start_s))
        if end - start < min(MIN_CLIP_S, duration_s) and duration_s > 0:
            # Too short near the video end: extend backwards to the minimum length.
            start = max(0.0, min(start, end - min(MIN_CLIP_S, duration_s)))
        end = max(end, start + 1e-3)
        inside = tuple(sorted(i for i, e in ordered if e.start_s >= start - 1e-6
                              and e.end_s <= end + 1e-6))
        if idx not in inside:  # longer than max_len: covered by its clipped span
            inside = tuple(sorted((*inside, idx)))
        covered.update(inside)
        windows.append(Window(round(start, 3), round(end, 3), inside))
    return windows


def tiling_windows(duration_s: float, rng: random.Random, min_len: float,
                   max_len: float) -> list[tuple[float, float]]:
    """Consecutive windows of random length in ``[min_len, max_len]`` tiling ``[0, duration_s]``.

    The last window is merged into the previous one when it would be shorter than ``min_len``.
    """
    out: list[tuple[float, float]] = []
    t = 0.0
    while t < duration_s - 1e-6:
        end = min(duration_s, t + rng.uniform(min_len, max_len))
        if duration_s - end < min_len and duration_s - t <= min(MAX_CLIP_S, 1.5 * max_len):
            end = duration_s  # absorb a too-short remainder
        out.append((round(t, 3), round(end, 3)))
        t = end
    return out
