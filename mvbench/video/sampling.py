"""The one rule mvbench uses to pick frames from a clip.

Given a clip window ``[start_s, end_s]`` (seconds in the source video), a sampling rate ``fps``,
the video's native rate ``native_fps`` and its frame count ``num_frames``:

1. sample times ``t_k = start_s + k / fps`` for ``k = 0, 1, ...`` while ``t_k < end_s``; there is
   always at least one sample (``t_0 = start_s``), even for an empty or inverted window;
2. frame index ``i_k = floor(t_k * native_fps + 0.5)`` (round half up, never banker's rounding),
   clamped to ``[0, num_frames - 1]``.

Sample ``k`` of a clip then stands for ``k / fps`` seconds after the clip start, as in MedVidBench
records (frame ``i`` of ``video`` <-> ``t = i / fps`` within the clip). Comparisons allow
:data:`EPSILON` (1 ns) of floating-point noise, so ``0.7 + 3 / 10`` counts as reaching 1.0 and
``2.4999999999999996`` rounds like 2.5.

Worked example: a 30-fps video of 300 frames, clip 2.5 s to 5.0 s sampled at 2 fps:

* times: 2.5, 3.0, 3.5, 4.0, 4.5 (5.0 is not < 5.0)
* indices: 2.5 * 30 = 75, 90, 105, 120, 135

With a 25-fps video and 0.3 fps from 0.1 s, t_1 = 0.1 + 1/0.3 = 3.4333 s and
3.4333 * 25 = 85.83, so index 86.

>>> sample_times(2.5, 5.0, fps=2)
[2.5, 3.0, 3.5, 4.0, 4.5]
>>> sample_indices(2.5, 5.0, fps=2, native_fps=30, num_frames=300)
[75, 90, 105, 120, 135]
>>> sample_indices(0.1, 4.0, fps=0.3, native_fps=25, num_frames=1000)
[3, 86]
>>> sample_indices(0.0, 0.0, fps=1, native_fps=30, num_frames=10)  # empty window: one frame
[0]
>>> sample_indices(9.0, 12.0, fps=1, native_fps=1, num_frames=10)  # past the end: clamped
[9, 9, 9]
>>> pad_even([75, 90, 105])
[75, 90, 105, 105]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

EPSILON = 1e-9


def sample_times(start_s: float, end_s: float, fps: float) -> list[float]:
    """Sample times ``start_s + k / fps`` for k = 0, 1, ... while below ``end_s`` (at least one).

    Args:
        start_s: clip start, seconds.
        end_s: clip end, seconds (exclusive).
        fps: sampling rate, frames per second (> 0).

    Returns:
        The times in seconds, increasing; ``[start_s]`` if the window is empty.

    >>> sample_times(0, 3, fps=1)
    [0.0, 1.0, 2.0]
    >>> sample_times(0.7, 1.0, fps=10)  # 0.7 + 3/10 is 0.99999... in floats: not a 4th sample
    [0.7, 0.8, 0.9]
    """
    if not fps > 0:
        raise ValueError(f"sampling fps must be > 0, not {fps!r}")
    times = [float(start_s)]
    k = 1
    while (t := start_s + k / fps) < end_s - EPSILON:
        times.append(round(t, 9))
        k += 1
    return times


def time_to_index(t: float, native_fps: float, num_frames: int) -> int:
    """Frame index shown at time ``t``: ``floor(t * native_fps + 0.5)`` clamped to the video.

    Args:
        t: seconds from the video start.
        native_fps: the video's frame rate.
        num_frames: the video's frame count (>= 1).

    Returns:
        An index in ``[0, num_frames - 1]``.

    >>> time_to_index(0.5, native_fps=3, num_frames=10)  # 1.5 rounds up
    2
    >>> time_to_index(0.0166, native_fps=30, num_frames=10)  # 0.498 rounds down
    0
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, not {num_frames}")
    index = math.floor(t * native_fps + 0.5 + EPSILON)
    return min(max(index, 0), num_frames - 1)


def sample_indices(start_s: float, end_s: float, fps: float, native_fps: float,
                   num_frames: int) -> list[int]:
    """Frame indices for a clip, by the module's rule (one per sample time).

    Args:
        start_s: clip start, seconds in the source video.
        end_s: clip end, seconds (exclusive).
        fps: sampling rate.
        native_fps: the video's frame rate.
        num_frames: the video's frame count.

    Returns:
        One index per :func:`sample_times` entry, non-decreasing. Indices repeat when sampling
        faster than the native rate or past the end of the video (clamping); readers
        de-duplicate, so a repeat costs nothing to decode.
    """
    return [time_to_index(t, native_fps, num_frames) for t in sample_times(start_s, end_s, fps)]


def index_to_time(index: int, native_fps: float) -> float:
    """Time in seconds at which frame ``index`` is shown: ``index / native_fps``.

    The inverse of :func:`time_to_index` for in-range indices; applied to a position ``k`` in a
    sampled frame list with the sampling ``fps``, it gives the time within the clip.

    Args:
        index: frame index (or sample position).
        native_fps: frame rate of that sequence.

    Returns:
        Seconds.

    >>> index_to_time(75, 30)
    2.5
    >>> time_to_index(index_to_time(1234, 29.97), 29.97, 5000)
    1234
    """
    if not native_fps > 0:
        raise ValueError(f"fps must be > 0, not {native_fps!r}")
    return index / native_fps


def pad_even(indices: Sequence[int]) -> list[int]:
    """Pad a frame list to an even length by repeating the last entry, as official inference does.

    Args:
        indices: frame indices (or any items).

    Returns:
        A new list of even length; an empty input stays empty.

    >>> pad_even([1, 2])
    [1, 2]
    >>> pad_even([7])
    [7, 7]
    """
    out = list(indices)
    if len(out) % 2:
        out.append(out[-1])
    return out
