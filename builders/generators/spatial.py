"""Generators for the box tasks: STG (boxes from annotations) and RC (draft caption).

A track's boxes are split into runs (gaps longer than 3 box spacings end a run); each run is cut
into sub-intervals of random length (``GenConfig.track_window``). STG asks for the box every
``stride`` seconds over one sub-interval; RC boxes the object on the first sampled frame of the
sub-interval that has a box of its own and asks what it does until the interval's end.

Frame grid: the sampling rate is chosen first, then the clip starts a whole number of sample
periods before the interval's first box (the lead-in) on a frame that exists, so the first box
time is a sample time; the stride is a whole number of sample periods too. Every STG key is then
a time ``k / fps`` at which the model sees frame ``k`` (the scorer looks predictions up by key),
and its box is the track's box on that very frame (a key whose frame has no box of the track is
left out). RC takes the box of the start frame itself. Where a frame store cannot show the clip at
the drawn rate, the next lower allowed rate is used (reported), else the instance is skipped.

Keyframe STG (``GenConfig.stg_keyframes``): sparse box labels (the AVOS detection CSVs label
frames tens of seconds apart) give tracks of one box, from which no interval can be made. With
the option, each box that no interval uses becomes a question of its own: the box at that
labelled frame, one key.
"""

from __future__ import annotations

import bisect
import math
import random
from statistics import median

from mvbench.builders.base import Track
from mvbench.builders.generators.context import Clip, GenContext, cap, num_text, rel
from mvbench.builders.instances import PlannedInstance
from mvbench.builders.windows import MIN_CLIP_S, align_start, frame_at
from mvbench.tasks import TASKS
from mvbench.tasks.base import fmt_time

STRIDES = (1.0, 2.0, 4.0, 8.0, 16.0)
MAX_KEYS = 16


def _spacing(times: list[float]) -> float:
    diffs = [b - a for a, b in zip(times, times[1:]) if b > a]
    return median(diffs) if diffs else 1.0


def _runs(track: Track) -> tuple[list[list[float]], float]:
    times = sorted(track.boxes)
    spacing = _spacing(times)
    runs: list[list[float]] = []
    for t in times:
        if runs and t - runs[-1][-1] <= 3 * spacing + 1e-6:
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs, spacing


def _intervals(ctx: GenContext, track: Track, task: str) -> list[tuple[int, list[float], float]]:
    """Sub-intervals ``(n, box times, spacing)`` of every run of a track (≥ 2 boxes each)."""
    runs, spacing = _runs(track)
    rng = ctx.rng(ctx.key(task, track.track_id, "intervals"))
    lo, hi = ctx.config.track_window
    out = []
    for run in runs:
        i = 0
        while i < len(run) - 1:
            length = rng.uniform(lo, hi)
            j = i
            while j + 1 < len(run) and run[j + 1] - run[i] <= length:
                j += 1
            if j == i:
                j = i + 1
            out.append((len(out), run[i:j + 1], spacing))
            i = j + 1
    return out


def _nearest_box(track: Track, times: list[float], t: float, tol: float):
    """The box time nearest ``t`` in the sorted ``times`` (the earlier on a tie) and its box, if within ``tol``."""
    pos = bisect.bisect_left(times, t)
    best = min(times[max(pos - 1, 0):pos + 1], key=lambda s: (abs(s - t), s))
    return (best, track.boxes[best]) if abs(best - t) <= tol + 1e-6 else (None, None)


def _grid_unit(fps: float) -> float:
    """The shortest whole number of sample periods that is also a whole number of tenths of a second.

    Keys are written with one decimal: at 3 fps a lead-in of 1/3 s would be written ``0.3``, off the
    grid; whole seconds are on it. ``_grid_unit(0.5) == 2.0``, ``_grid_unit(3.0) == 1.0``.
    """
    j = 1
    while abs(j * 10 / fps - round(j * 10 / fps)) > 1e-6 and j < 100:
        j += 1
    return j / fps


def _clip(ctx: GenContext, rng: random.Random, a: float, b: float, task: str) -> Clip | None:
    """A clip around ``[a, b]``: up to 5 s of lead-in, whole sample periods, at least MIN_CLIP_S long.

    The rate is drawn for the provisional window; the lead-in is then shortened to a whole number
    of grid units (:func:`_grid_unit`) ending on a frame that exists, so that ``a`` is a sample
    time (the clip never grows). When the frames cannot show the clip at that rate (a sparse
    store), lower allowed rates are tried (reported); None (reported) when none can.
    """
    lead = rng.uniform(0.0, 5.0)
    start0 = max(0.0, a - lead)
    end = max(b + 1.0, start0 + min(MIN_CLIP_S, ctx.duration_s))
    end = min(end, max(ctx.duration_s, b + 1e-3))
    drawn = ctx.choose_fps(rng, end - start0)
    first = align_start(ctx.ann.video, 0.0)  # the first frame that exists (stores may skip 0)
    for fps in [drawn] + [f for f in sorted(ctx.allowed_fps, reverse=True) if f < drawn]:
        unit = _grid_unit(fps)
        steps = max(0, min(math.floor((a - start0) / unit + 1e-9), math.floor((a - first) / unit + 1e-9)))
        while steps > 0 and frame_at(ctx.ann.video, a - steps * unit) is None:
            steps -= 1
        start = max(0.0, round(a - steps * unit, 9))
        clip = ctx.clip(rng, start, end, fps=fps, align=False, task=task, lower=False)
        if clip is not None:
            if fps != drawn:
                ctx.report.lowered[(task, drawn, fps)] += 1
            return clip
    ctx.report.skipped[(task, "sparse_store")] += 1
    return None


def _strides(fps: float, spacing: float, length: float) -> list[float]:
    """STG strides: whole grid units, at least the box spacing, at most MAX_KEYS keys, ≤ the interval."""
    unit = _grid_unit(fps)
    cands = sorted({s for s in STRIDES if abs(s / unit - round(s / unit)) < 1e-6} | {unit})
    ok = [s for s in cands if s >= spacing - 1e-6 and length / s <= MAX_KEYS + 1e-9]
    within = [s for s in ok if s <= length + 1e-6]
    if within:
        return within
    if ok:
        return [min(ok)]
    need = max(spacing, length / MAX_KEYS)
    return [math.ceil(need / unit - 1e-9) * unit]


def _box(box) -> list[float]:
    return [round(float(v), 2) for v in box]


def _shown_box(track: Track, times: list[float], clip: Clip, t: float, native_fps: float):
    """The track's box on the frame the clip shows at time ``t`` (a sample time), else None."""
    k = round((t - clip.start_s) * clip.fps)
    if not 0 <= k < len(clip.indices) or abs(clip.start_s + k / clip.fps - t) > 1e-6:
        return None
    return _own_box(track, times, clip.indices[k], native_fps)


def _stg_instance(ctx: GenContext, key: str, rng: random.Random, track: Track, clip: Clip, a: float,
                  stride: float, bbox: dict[str, list[float]], last: float, single: bool = False
                  ) -> PlannedInstance:
    """An STG instance; ``single``: a keyframe question (one key, ``start == end``, stride 0)."""
    start, end = rel(a, clip.start_s), rel(last, clip.start_s)
    struc = [{"object": track.label, "start": start, "end": end, "stride": stride, "bbox_dict": bbox}]
    if single:
        q = ctx.question("STG", rng, object=track.label, t=fmt_time(start))
    else:
        q = ctx.question("STG", rng, object=track.label, start=fmt_time(start), end=fmt_time(end),
                         stride=num_text(stride),
                         every="every second" if stride == 1 else f"every {num_text(stride)} seconds")
    return PlannedInstance(key=key, source=ctx.source, data_source=ctx.data_source, task="STG",
                           video_id=ctx.video_id, clip_start_s=clip.start_s, clip_end_s=clip.end_s,
                           fps=clip.fps, frame_indices=clip.indices, question=q, struc_info=struc,
                           answer=TASKS.get("STG").format_answer(struc))


def generate_stg(ctx: GenContext) -> list[PlannedInstance]:
    """STG: boxes of one object every ``stride`` seconds (keys in seconds from the clip start).

    With ``stg_keyframes``, boxes no interval uses are asked about one at a time (see the module
    docstring).
    """
    out: list[PlannedInstance] = []
    native_fps = ctx.ann.video.native_fps
    for track in ctx.ann.tracks:
        all_times = sorted(track.boxes)
        used: set[float] = set()
        for n, times, spacing in _intervals(ctx, track, "STG"):
            key = ctx.key("STG", track.track_id, f"{n:04d}")
            rng = ctx.rng(key)
            a, b = times[0], times[-1]
            clip = _clip(ctx, rng, a, b, "STG")
            if clip is None:
                continue
            b = min(b, clip.end_s - 1e-6)  # a clip cut to max_frames: only the frames shown
            stride = rng.choice(_strides(clip.fps, spacing, b - a))
            bbox: dict[str, list[float]] = {}
            last = a
            steps = 0
            while (t := a + steps * stride) <= b + 1e-6:
                box = _shown_box(track, all_times, clip, t, native_fps)
                if box is not None:
                    bbox[f"{rel(t, clip.start_s):.1f}"] = _box(box)
                    last = t
                steps += 1
            if not bbox:
                continue
            used.update(times)
            out.append(_stg_instance(ctx, key, rng, track, clip, a, stride, bbox, last))
        if ctx.config.stg_keyframes:
            for t in sorted(set(track.boxes) - used):
                key = ctx.key("STG", track.track_id, f"k{round(t * native_fps):09d}")
                rng = ctx.rng(key)
                clip = _clip(ctx, rng, t, t, "STG")
                box = None if clip is None else _shown_box(track, all_times, clip, t, native_fps)
                if box is None:
                    continue
                bbox = {f"{rel(t, clip.start_s):.1f}": _box(box)}
                out.append(_stg_instance(ctx, key, rng, track, clip, t, 0.0, bbox, t, single=True))
    return cap(out, ctx.config.max_per_video, ctx.rng(ctx.key("STG", "cap")))


def _own_box(track: Track, times: list[float], index: int, native_fps: float):
    """The track's box on native frame ``index`` (its time maps to that index), else None."""
    return _nearest_box(track, times, index / native_fps, 0.5 / native_fps)[1]


def generate_rc(ctx: GenContext) -> list[PlannedInstance]:
    """RC: the object's box on a start frame, and a draft caption of what it does until the end."""
    out: list[PlannedInstance] = []
    kinds = ctx.kinds()
    main = ctx.main_kind()
    native_fps = ctx.ann.video.native_fps
    for track in ctx.ann.tracks:
        for n, times, spacing in _intervals(ctx, track, "RC"):
            key = ctx.key("RC", track.track_id, f"{n:04d}")
            rng = ctx.rng(key)
            a, b = times[0], times[-1]
            clip = _clip(ctx, rng, a, b, "RC")
            if clip is None:
                continue
            start, fps = clip.start_s, clip.fps
            b = min(b, clip.end_s - 1e-6)
            chosen = None
            for k, idx in enumerate(clip.indices):
                t = start + k / fps
                if t < a - 1e-6 or t > b + 1e-6:
                    continue
                box = _own_box(track, times, idx, native_fps)
                if box is not None:
                    chosen = (k, idx, box)
                    break
            if chosen is None:
                continue
            k, idx, box = chosen
            t_rel = round(k / fps, 1)
            # The event (main kind first) overlapping the interval the longest names the activity.
            events = [e for kind in ([main] if main else []) + [x for x in kinds if x != main]
                      for _, e in ctx.events_of(kind) if e.end_s >= a and e.start_s <= b]
            if events:
                ev = max(events, key=lambda e: min(e.end_s, b) - max(e.start_s, a))
                caption = ctx.draft("rc", "with_event", rng, object=track.label, event=ev.label)
            else:
                ev = None
                caption = ctx.draft("rc", "no_event", rng, object=track.label)
            q = ctx.question("RC", rng, t=fmt_time(t_rel), start=fmt_time(t_rel),
                             end=fmt_time(rel(b, start)))
            inner = {"start": t_rel, "end": rel(b, start), "object": track.label,
                     "start_frame": idx, "start_frame_bbox": _box(box)}
            if ev is not None and ev.kind == "phase":
                inner["phase_info"] = {"phase_name": ev.label}
            struc = [{"question": q, "struc_info": inner}]
            out.append(PlannedInstance(
                key=key, source=ctx.source, data_source=ctx.data_source, task="RC",
                video_id=ctx.video_id, clip_start_s=start, clip_end_s=clip.end_s, fps=fps,
                frame_indices=clip.indices, question=q, struc_info=struc,
                answer=TASKS.get("RC").format_answer(caption), rc_start_index=idx,
                rc_bbox=_box(box)))
    return cap(out, ctx.config.max_per_video, ctx.rng(ctx.key("RC", "cap")))
