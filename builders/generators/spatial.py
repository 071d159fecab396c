"""Generators for the box tasks: STG (boxes from annotations) and RC (draft caption).

A track's boxes are split into runs (gaps longer than 3 box spacings end a run); each run is cut
into sub-intervals of random length (``GenConfig.track_window``). STG asks for the box every
``stride`` seconds over one sub-interval; RC boxes the object on the first sampled frame of the
sub-interval that has a box and asks what it does until the interval's end.
"""

from __future__ import annotations

import random
from statistics import median

from mvbench.builders.base import Track
from mvbench.builders.generators.context import GenContext, cap, num_text, rel
from mvbench.builders.instances import PlannedInstance
from mvbench.builders.windows import MIN_CLIP_S
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
    best = min(times, key=lambda s: (abs(s - t), s))
    return (best, track.boxes[best]) if abs(best - t) <= tol + 1e-6 else (None, None)


def _clip(ctx: GenContext, rng: random.Random, a: float, b: float) -> tuple[float, float]:
    """A clip window around ``[a, b]``: whole seconds of lead-in, at least MIN_CLIP_S long."""
    start = max(0.0, a - rng.randint(0, 5))
    end = max(b + 1.0, start + min(MIN_CLIP_S, ctx.duration_s))
    return start, min(end, max(ctx.duration_s, b + 1e-3))


def _box(box) -> list[float]:
    return [round(float(v), 2) for v in box]


def generate_stg(ctx: GenContext) -> list[PlannedInstance]:
    """STG: boxes of one object every ``stride`` seconds (keys in seconds from the clip start)."""
    out: list[PlannedInstance] = []
    for track in ctx.ann.tracks:
        for n, times, spacing in _intervals(ctx, track, "STG"):
            key = ctx.key("STG", track.track_id, f"{n:04d}")
            rng = ctx.rng(key)
            a, b = times[0], times[-1]
            strides = [s for s in STRIDES if s >= spacing - 1e-6 and (b - a) / s <= MAX_KEYS]
            stride = rng.choice(strides) if strides else max(spacing, (b - a) / MAX_KEYS)
            start, end = _clip(ctx, rng, a, b)
            bbox: dict[str, list[float]] = {}
            t = a
            while t <= b + 1e-6:
                _, box = _nearest_box(track, times, t, spacing / 2)
                if box is not None:
                    bbox[f"{rel(t, start):.1f}"] = _box(box)
                t += stride
            if not bbox:
                continue
            struc = [{"object": track.label, "start": rel(a, start), "end": rel(b, start),
                      "stride": stride, "bbox_dict": bbox}]
            fps, indices = ctx.sample(rng, start, end)
            q = ctx.question("STG", rng, object=track.label, start=fmt_time(rel(a, start)),
                             end=fmt_time(rel(b, start)), stride=num_text(stride))
            out.append(PlannedInstance(
                key=key, source=ctx.source, data_source=ctx.data_source, task="STG",
                video_id=ctx.video_id, clip_start_s=start, clip_end_s=end, fps=fps,
                frame_indices=indices, question=q, struc_info=struc,
                answer=TASKS.get("STG").format_answer(struc)))
    return cap(out, ctx.config.max_per_video, ctx.rng(ctx.key("STG", "cap")))


def generate_rc(ctx: GenContext) -> list[PlannedInstance]:
    """RC: the object's box on a start frame, and a draft caption of what it does until the end."""
    out: list[PlannedInstance] = []
    kinds = ctx.kinds()
    main = ctx.main_kind()
    for track in ctx.ann.tracks:
        for n, times, spacing in _intervals(ctx, track, "RC"):
            key = ctx.key("RC", track.track_id, f"{n:04d}")
            rng = ctx.rng(key)
            a, b = times[0], times[-1]
            start, end = _clip(ctx, rng, a, b)
            fps, indices = ctx.sample(rng, start, end)
            chosen = None
            for k, idx in enumerate(indices):
                t = start + k / fps
                if t < a - 1e-6 or t > b + 1e-6:
                    continue
                _, box = _nearest_box(track, times, t, spacing / 2)
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
                video_id=ctx.video_id, clip_start_s=start, clip_end_s=end, fps=fps,
                frame_indices=indices, question=q, struc_info=struc,
                answer=TASKS.get("RC").format_answer(caption), rc_start_index=idx,
                rc_bbox=_box(box)))
    return cap(out, ctx.config.max_per_video, ctx.rng(ctx.key("RC", "cap")))
