"""Generators for the event-based tasks: TAG, DVC, NAP (answers from annotations) and VS (draft).

Every event of every kind lands in at least one TAG instance, and every event of the main kind in
at least one DVC instance (:func:`mvbench.builders.windows.covering_windows`). TAG asks, per
window, about each label that has an event wholly inside the window, with every span of that
label overlapping the clip as ground truth (clipped, seconds from the clip start). DVC lists the
main kind only: other kinds (CholecT50 triplet runs, ...) overlap each other and the phases, and
a dense caption is a list of non-overlapping segments.

Spans: a span that rounds to zero length (shorter than :data:`MIN_SPAN_S`) is never ground truth,
and a span cut by the clip edge is dropped when shorter than one sample period (``1 / fps``):
the model cannot see a sliver between two frames. Windows are at most as long as ``max_frames``
frames at the lowest allowed rate, so no clip is truncated after its answer was written.
"""

from __future__ import annotations

from mvbench.builders.base import Event
from mvbench.builders.generators.context import GenContext, cap, join_list, rel
from mvbench.builders.instances import PlannedInstance
from mvbench.builders.windows import covering_windows, store_rate, tiling_windows
from mvbench.tasks import TASKS

MIN_SPAN_S = 0.1


def _overlapping(events: list[tuple[int, Event]], start: float, end: float) -> list[tuple[int, Event]]:
    return [(i, e) for i, e in events if e.end_s > start + 1e-6 and e.start_s < end - 1e-6]


def _kept_spans(events: list[tuple[int, Event]], start: float, end: float,
                fps: float) -> list[tuple[int, Event, dict[str, float]]]:
    """``(index, event, span)`` of the events overlapping ``[start, end]`` whose span is kept.

    A span must be at least :data:`MIN_SPAN_S` long once rounded; one cut by the clip edge must
    also last one sample period.
    """
    out = []
    for i, e in _overlapping(events, start, end):
        span = _span(e, start, end)
        clipped = e.start_s < start - 1e-6 or e.end_s > end + 1e-6
        min_len = max(MIN_SPAN_S, 1.0 / fps) if clipped else MIN_SPAN_S
        if span["end"] - span["start"] >= min_len - 1e-6:
            out.append((i, e, span))
    return out


def _window_limits(ctx: GenContext, lo: float, hi: float) -> tuple[float, float]:
    """Window length range capped so that a window (plus grid alignment) fits ``max_frames``."""
    cap_len = max(ctx.max_len - 1.0 / store_rate(ctx.ann.video), 1.0)
    return min(lo, cap_len), min(hi, cap_len)


def _span(e: Event, start: float, end: float) -> dict[str, float]:
    return {"start": rel(max(e.start_s, start), start), "end": rel(min(e.end_s, end), start)}


def _instance(ctx: GenContext, task: str, key: str, start: float, end: float, fps: float,
              indices: list[int], question: str, struc_info, answer: str,
              covers: list[int] | tuple[int, ...] = ()) -> PlannedInstance:
    return PlannedInstance(key=key, source=ctx.source, data_source=ctx.data_source, task=task,
                           video_id=ctx.video_id, clip_start_s=start, clip_end_s=end, fps=fps,
                           frame_indices=indices, question=question, struc_info=struc_info,
                           answer=answer, covers=list(covers))


def generate_tag(ctx: GenContext) -> list[PlannedInstance]:
    """TAG: one instance per (window, label with an event inside the window)."""
    out: list[PlannedInstance] = []
    lo, hi = _window_limits(ctx, *ctx.config.tag_window)
    for kind in ctx.kinds():
        events = ctx.events_of(kind)
        by_index = dict(events)
        vocab = ctx.vocab(kind)
        windows = covering_windows(events, ctx.duration_s, ctx.rng(ctx.key("TAG", kind, "windows")),
                                   lo, hi)
        for w_i, w in enumerate(windows):
            labels = list(dict.fromkeys(e.label for i, e in events if i in w.covers))
            for label in labels:
                key = ctx.key("TAG", kind, f"{w_i:04d}", label)
                rng = ctx.rng(key)
                clip = ctx.clip(rng, w.start_s, w.end_s)
                kept = _kept_spans([(i, e) for i, e in events if e.label == label],
                                   clip.start_s, clip.end_s, clip.fps)
                if not any(i in w.covers for i, _, _ in kept):
                    short = [i for i in w.covers if by_index[i].label == label]
                    ctx.ann.issues.append(f"TAG: event(s) {short} ({label!r}) shorter than "
                                          f"{MIN_SPAN_S} s; not asked about")
                    continue
                spans = [span for _, _, span in kept]
                item: dict = {"action": label, "spans": spans}
                if ctx.procedure:
                    item = {"procedure": ctx.procedure, "action_list": vocab, **item}
                struc = [item]
                q = ctx.question("TAG", rng, action=label, actions=", ".join(vocab),
                                 actions_or=join_list(vocab, "or"))
                covers = [i for i, _, _ in kept if i in w.covers]
                out.append(_instance(ctx, "TAG", key, clip.start_s, clip.end_s, clip.fps, clip.indices,
                                     q, struc, TASKS.get("TAG").format_answer(struc), covers))
    return out


def generate_dvc(ctx: GenContext) -> list[PlannedInstance]:
    """DVC: one instance per covering window of the main kind, listing its events (draft captions)."""
    out: list[PlannedInstance] = []
    kind = ctx.main_kind()
    if kind is None:
        return out
    lo, hi = _window_limits(ctx, *ctx.config.dvc_window)
    events = ctx.events_of(kind)
    vocab = ctx.vocab(kind)
    windows = covering_windows(events, ctx.duration_s, ctx.rng(ctx.key("DVC", kind, "windows")),
                               lo, hi)
    for w_i, w in enumerate(windows):
        key = ctx.key("DVC", kind, f"{w_i:04d}")
        rng = ctx.rng(key)
        clip = ctx.clip(rng, w.start_s, w.end_s)
        kept = _kept_spans(events, clip.start_s, clip.end_s, clip.fps)
        if not kept:
            ctx.ann.issues.append(f"DVC: window {w_i} holds no event of at least {MIN_SPAN_S} s; skipped")
            continue
        segs = []
        for _, e, span in kept:
            sentence = ctx.draft("dvc", "sentences", rng, label=e.label.lower())
            segs.append({**span, "caption": f"{e.label.lower()}: {sentence}", "action": e.label})
        struc = [{"dc_segments": segs}] if ctx.dvc_struc == "dc_segments" else [segs]
        q = ctx.question("DVC", rng, actions_list=str(vocab), actions=", ".join(vocab))
        covers = [i for i, _, _ in kept if i in w.covers]
        out.append(_instance(ctx, "DVC", key, clip.start_s, clip.end_s, clip.fps, clip.indices, q,
                             struc, TASKS.get("DVC").format_answer(struc), covers))
    return out


def _steps(events: list[tuple[int, Event]]) -> list[tuple[str, float, float]]:
    """Merge consecutive events with the same label into steps ``(label, start, end)``."""
    steps: list[tuple[str, float, float]] = []
    for _, e in events:
        if steps and steps[-1][0] == e.label:
            steps[-1] = (e.label, steps[-1][1], max(steps[-1][2], e.end_s))
        else:
            steps.append((e.label, e.start_s, e.end_s))
    return steps


def generate_nap(ctx: GenContext) -> list[PlannedInstance]:
    """NAP: a clip ending where the next step starts; the answer is that step's label.

    Uses the main event kind; the class list offered is the kind's vocabulary, and a next step
    outside it is skipped and reported in ``ann.issues``. So is a next step that starts together
    with another step: either would be a correct answer.
    """
    kind = ctx.main_kind()
    if kind is None:
        return []
    vocab = ctx.vocab(kind)
    steps = _steps(ctx.events_of(kind))
    lo, hi = _window_limits(ctx, *ctx.config.nap_window)
    out: list[PlannedInstance] = []
    for n in range(len(steps) - 1):
        nxt = steps[n + 1]
        if nxt[0] not in vocab:
            ctx.ann.issues.append(f"NAP: next step {nxt[0]!r} after step {n} is not in the class "
                                  f"list; instance skipped")
            continue
        tied = [s[0] for j, s in enumerate(steps) if j != n + 1 and abs(s[1] - nxt[1]) < 1e-6]
        if tied:
            ctx.ann.issues.append(f"NAP: next step {nxt[0]!r} after step {n} starts together with "
                                  f"{tied}; instance skipped")
            continue
        key = ctx.key("NAP", kind, f"{n:04d}")
        rng = ctx.rng(key)
        end = nxt[1]  # the clip stops where the next step starts
        start = max(0.0, end - rng.uniform(lo, hi))
        if end - start < 2.0:
            continue
        clip = ctx.clip(rng, start, end)
        if abs(clip.end_s - end) > 1e-6:  # cannot happen with capped windows; never cut the end
            continue
        struc = [{"next_action": nxt[0]}]
        # Name the procedure when known: the scorer reads it from the question to pick the class list.
        q = ctx.question("NAP", rng, prefer=("procedure",) if ctx.procedure else (),
                         actions_list=str(vocab))
        out.append(_instance(ctx, "NAP", key, round(clip.start_s, 3), round(end, 3), clip.fps,
                             clip.indices, q, struc, TASKS.get("NAP").format_answer(struc)))
    return cap(out, ctx.config.max_per_video, ctx.rng(ctx.key("NAP", "cap")))


def generate_vs(ctx: GenContext) -> list[PlannedInstance]:
    """VS: windows tiling the video; a draft summary naming the events (or objects) in order."""
    kind = ctx.main_kind()
    events = ctx.events_of(kind) if kind else []
    lo, hi = _window_limits(ctx, *ctx.config.vs_window)
    out: list[PlannedInstance] = []
    for w_i, (start, end) in enumerate(tiling_windows(ctx.duration_s, ctx.rng(ctx.key("VS", "windows")),
                                                      lo, hi)):
        key = ctx.key("VS", f"{w_i:04d}")
        rng = ctx.rng(key)
        clip = ctx.clip(rng, start, end)
        labels = [lab for lab, _, _ in _steps([(i, e) for i, e, _ in
                                              _kept_spans(events, clip.start_s, clip.end_s, clip.fps)])]
        if labels:
            text = ", then ".join(labels)
            summary = ctx.draft("vs", "sentences", rng, events=text)
        else:
            objects = sorted({t.label for t in ctx.ann.tracks
                              if any(clip.start_s <= ts < clip.end_s for ts in t.boxes)})
            if not objects:
                continue
            summary = ctx.draft("vs", "no_events", rng, events=join_list(objects))
        q = ctx.question("VS", rng)
        out.append(_instance(ctx, "VS", key, clip.start_s, clip.end_s, clip.fps, clip.indices, q,
                             summary, TASKS.get("VS").format_answer(summary)))
    return cap(out, ctx.config.max_per_video, ctx.rng(ctx.key("VS", "cap")))
