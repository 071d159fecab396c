"""Generators for the event-based tasks: TAG, DVC, NAP (answers from annotations) and VS (draft).

Every event of every kind lands in at least one TAG and one DVC instance
(:func:`mvbench.builders.windows.covering_windows`); TAG asks, per window, about each label that
has an event wholly inside the window, with every span of that label overlapping the window as
ground truth (clipped, seconds from the clip start).
"""

from __future__ import annotations

from mvbench.builders.base import Event
from mvbench.builders.generators.context import GenContext, cap, join_list, rel
from mvbench.builders.instances import PlannedInstance
from mvbench.builders.windows import covering_windows, tiling_windows
from mvbench.tasks import TASKS


def _overlapping(events: list[tuple[int, Event]], start: float, end: float) -> list[tuple[int, Event]]:
    return [(i, e) for i, e in events if e.end_s >= start and e.start_s <= end]


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
    lo, hi = ctx.config.tag_window
    for kind in ctx.kinds():
        events = ctx.events_of(kind)
        vocab = ctx.vocab(kind)
        windows = covering_windows(events, ctx.duration_s, ctx.rng(ctx.key("TAG", kind, "windows")),
                                   lo, hi)
        for w_i, w in enumerate(windows):
            inside = {i for i in w.covers}
            labels = list(dict.fromkeys(e.label for i, e in events if i in inside))
            for label in labels:
                key = ctx.key("TAG", kind, f"{w_i:04d}", label)
                rng = ctx.rng(key)
                spans_ev = [(i, e) for i, e in _overlapping(events, w.start_s, w.end_s)
                            if e.label == label]
                spans = [_span(e, w.start_s, w.end_s) for _, e in spans_ev]
                item: dict = {"action": label, "spans": spans}
                if ctx.procedure:
                    item = {"procedure": ctx.procedure, "action_list": vocab, **item}
                struc = [item]
                fps, indices = ctx.sample(rng, w.start_s, w.end_s)
                q = ctx.question("TAG", rng, action=label, actions=", ".join(vocab),
                                 actions_or=join_list(vocab, "or"))
                covers = [i for i, _ in spans_ev if i in inside]
                out.append(_instance(ctx, "TAG", key, w.start_s, w.end_s, fps, indices, q, struc,
                                     TASKS.get("TAG").format_answer(struc), covers))
    return out


def generate_dvc(ctx: GenContext) -> list[PlannedInstance]:
    """DVC: one instance per covering window, listing every event of the kind in it (draft captions)."""
    out: list[PlannedInstance] = []
    lo, hi = ctx.config.dvc_window
    for kind in ctx.kinds():
        events = ctx.events_of(kind)
        vocab = ctx.vocab(kind)
        windows = covering_windows(events, ctx.duration_s, ctx.rng(ctx.key("DVC", kind, "windows")),
                                   lo, hi)
        for w_i, w in enumerate(windows):
            key = ctx.key("DVC", kind, f"{w_i:04d}")
            rng = ctx.rng(key)
            segs = []
            for _, e in _overlapping(events, w.start_s, w.end_s):
                sentence = ctx.draft("dvc", "sentences", rng, label=e.label.lower())
                segs.append({**_span(e, w.start_s, w.end_s),
                             "caption": f"{e.label.lower()}: {sentence}", "action": e.label})
            struc = [{"dc_segments": segs}] if ctx.data_source == "NurViD" else [segs]
            fps, indices = ctx.sample(rng, w.start_s, w.end_s)
            q = ctx.question("DVC", rng, actions_list=str(vocab), actions=", ".join(vocab))
            out.append(_instance(ctx, "DVC", key, w.start_s, w.end_s, fps, indices, q, struc,
                                 TASKS.get("DVC").format_answer(struc), w.covers))
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
    outside it is skipped and reported in ``ann.issues``.
    """
    kind = ctx.main_kind()
    if kind is None:
        return []
    vocab = ctx.vocab(kind)
    steps = _steps(ctx.events_of(kind))
    lo, hi = ctx.config.nap_window
    out: list[PlannedInstance] = []
    for n in range(len(steps) - 1):
        nxt = steps[n + 1]
        if nxt[0] not in vocab:
            ctx.ann.issues.append(f"NAP: next step {nxt[0]!r} after step {n} is not in the class "
                                  f"list; instance skipped")
            continue
        key = ctx.key("NAP", kind, f"{n:04d}")
        rng = ctx.rng(key)
        end = nxt[1]  # the clip stops where the next step starts
        start = max(0.0, end - rng.uniform(lo, hi))
        if end - start < 2.0:
            continue
        struc = [{"next_action": nxt[0]}]
        fps, indices = ctx.sample(rng, start, end)
        q = ctx.question("NAP", rng, actions_list=str(vocab))
        out.append(_instance(ctx, "NAP", key, round(start, 3), round(end, 3), fps, indices, q,
                             struc, TASKS.get("NAP").format_answer(struc)))
    return cap(out, ctx.config.max_per_video, ctx.rng(ctx.key("NAP", "cap")))


def generate_vs(ctx: GenContext) -> list[PlannedInstance]:
    """VS: windows tiling the video; a draft summary naming the events (or objects) in order."""
    kind = ctx.main_kind()
    events = ctx.events_of(kind) if kind else []
    lo, hi = ctx.config.vs_window
    out: list[PlannedInstance] = []
    for w_i, (start, end) in enumerate(tiling_windows(ctx.duration_s, ctx.rng(ctx.key("VS", "windows")),
                                                      lo, hi)):
        key = ctx.key("VS", f"{w_i:04d}")
        rng = ctx.rng(key)
        labels = [lab for lab, _, _ in _steps(_overlapping(events, start, end))]
        if labels:
            text = ", then ".join(labels)
            summary = ctx.draft("vs", "sentences", rng, events=text)
        else:
            objects = sorted({t.label for t in ctx.ann.tracks
                              if any(start <= ts <= end for ts in t.boxes)})
            if not objects:
                continue
            summary = ctx.draft("vs", "no_events", rng, events=join_list(objects))
        fps, indices = ctx.sample(rng, start, end)
        q = ctx.question("VS", rng)
        out.append(_instance(ctx, "VS", key, start, end, fps, indices, q, summary,
                             TASKS.get("VS").format_answer(summary)))
    return cap(out, ctx.config.max_per_video, ctx.rng(ctx.key("VS", "cap")))
