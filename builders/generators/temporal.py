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

DVC and its metric: the leaderboard scores a DVC answer on ``int(t * fps)`` frame numbers and
flattens overlapping predicted segments. So that the gold answer scores full marks on its own
metric (F1 = 1.0), DVC ground truth is

- one timeline (:func:`timeline`): where main-kind events overlap (NurViD actions may), the
  shorter event holds the shared time and the longer one keeps the rest (before and after it);
  touching pieces with one label are joined;
- sampled fast enough that every segment holds a sampled frame (``int(start * fps) <
  int(end * fps)``): when the drawn rate leaves a segment between two frames, the next allowed
  rate that still fits the frame budget is used; if none, such segments are left out of that
  answer, and events left out of every answer get a shorter window of their own at a faster rate
  (a second pass). Every change is counted in the plan report.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from mvbench.builders.base import Event
from mvbench.builders.generators.context import Clip, GenContext, cap, join_list, rel
from mvbench.builders.instances import PlannedInstance, fps_text
from mvbench.builders.windows import covering_windows, store_rate, tiling_windows
from mvbench.tasks import TASKS
from mvbench.tasks import nap as nap_task

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
                clip = ctx.clip(rng, w.start_s, w.end_s, task="TAG")
                if clip is None:
                    continue
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


@dataclass(frozen=True)
class Piece:
    """A stretch of the DVC timeline: one event holds ``[start_s, end_s)``.

    ``owners``: the events this stretch stands for (the holder, and same-label events joined into it).
    """

    label: str
    start_s: float
    end_s: float
    owners: frozenset[int]


def timeline(events: list[tuple[int, Event]]) -> list[Piece]:
    """Events of one kind as non-overlapping pieces (see the module docstring).

    At any time the shortest event running holds (on a tie the later start, then the lower
    index), so a short event is never hidden by a long one around it; consecutive stretches with
    one label are joined.

    >>> a, b, c = Event("position", 0.0, 26.0), Event("underpad", 15.0, 24.0), Event("wash", 25.0, 40.0)
    >>> [(p.label, p.start_s, p.end_s) for p in timeline([(0, a), (1, b), (2, c)])]
    [('position', 0.0, 15.0), ('underpad', 15.0, 24.0), ('position', 24.0, 25.0), ('wash', 25.0, 40.0)]
    """
    points = sorted({t for _, e in events for t in (e.start_s, e.end_s)})
    pieces: list[Piece] = []
    for lo, hi in pairwise(points):
        active = [(i, e) for i, e in events if e.start_s <= lo + 1e-9 and e.end_s >= hi - 1e-9]
        if not active:
            continue
        _, ev = min(active, key=lambda p: (p[1].end_s - p[1].start_s, -p[1].start_s, p[0]))
        owners = frozenset(i for i, e in active if e.label == ev.label)
        last = pieces[-1] if pieces else None
        if last is not None and last.label == ev.label and abs(last.end_s - lo) < 1e-9:
            pieces[-1] = Piece(ev.label, last.start_s, hi, last.owners | owners)
        else:
            pieces.append(Piece(ev.label, lo, hi, owners))
    return pieces


def _dvc_spans(pieces: list[Piece], clip: Clip) -> list[tuple[Piece, dict[str, float]]]:
    """Pieces overlapping the clip, with their spans (seconds from the clip start), by the span rules."""
    out = []
    for p in pieces:
        if p.end_s <= clip.start_s + 1e-6 or p.start_s >= clip.end_s - 1e-6:
            continue
        span = {"start": rel(max(p.start_s, clip.start_s), clip.start_s),
                "end": rel(min(p.end_s, clip.end_s), clip.start_s)}
        clipped = p.start_s < clip.start_s - 1e-6 or p.end_s > clip.end_s + 1e-6
        min_len = max(MIN_SPAN_S, 1.0 / clip.fps) if clipped else MIN_SPAN_S
        if span["end"] - span["start"] >= min_len - 1e-6:
            out.append((p, span))
    return out


def collapses(span: dict[str, float], fps: float) -> bool:
    """Whether the scorer's ``int(t * fps)`` maps a span to zero length (no sampled frame inside it).

    ``fps`` is taken as the record writes it (``metadata.fps``).

    >>> collapses({"start": 0.0, "end": 1.8}, 0.5), collapses({"start": 0.0, "end": 1.8}, 1.0)
    (True, False)
    """
    f = float(fps_text(fps))
    return int(float(span["start"]) * f) >= int(float(span["end"]) * f)


def _frame_count(length_s: float, fps: float) -> int:
    return max(1, int(length_s * fps + 1 - 1e-9))


def _dvc_clip(ctx: GenContext, rng, start: float, end: float, pieces: list[Piece]
              ) -> tuple[Clip, list[tuple[Piece, dict[str, float]]]] | None:
    """The clip of one DVC window and its spans, at a rate where no kept span collapses."""
    clip = ctx.clip(rng, start, end, task="DVC")
    if clip is None:
        return None
    spans = _dvc_spans(pieces, clip)
    if not any(collapses(span, clip.fps) for _, span in spans):
        return clip, spans
    for rate in sorted(f for f in ctx.allowed_fps if f > clip.fps):
        if _frame_count(clip.end_s - clip.start_s, rate) > ctx.config.max_frames:
            break  # a faster rate would cut the clip short
        faster = ctx.clip(rng, clip.start_s, clip.end_s, fps=rate, align=False, task="DVC", lower=False)
        if faster is None:
            continue
        faster_spans = _dvc_spans(pieces, faster)
        if not any(collapses(span, rate) for _, span in faster_spans):
            ctx.report.raised[("DVC", clip.fps, rate)] += 1
            return faster, faster_spans
    kept = [(p, span) for p, span in spans if not collapses(span, clip.fps)]
    ctx.report.dropped["DVC"] += len(spans) - len(kept)
    return clip, kept


def generate_dvc(ctx: GenContext) -> list[PlannedInstance]:
    """DVC: one instance per covering window of the main kind, listing its timeline (draft captions).

    A second pass gives events that no answer holds (too short for the rate of every window they
    are in) windows of their own, short enough for the fastest allowed rate.
    """
    out: list[PlannedInstance] = []
    kind = ctx.main_kind()
    if kind is None:
        return out
    events = ctx.events_of(kind)
    pieces = timeline(events)
    vocab = ctx.vocab(kind)
    covered: set[int] = set()

    def make(key: str, w) -> None:
        rng = ctx.rng(key)
        planned = _dvc_clip(ctx, rng, w.start_s, w.end_s, pieces)
        if planned is None:
            return
        clip, spans = planned
        if not spans:
            ctx.ann.issues.append(f"DVC: window {key.rsplit('/', 1)[-1]} holds no segment of at least "
                                  f"{MIN_SPAN_S} s with a sampled frame; skipped")
            return
        segs = []
        for piece, span in spans:
            sentence = ctx.draft("dvc", "sentences", rng, label=piece.label.lower())
            segs.append({**span, "caption": f"{piece.label.lower()}: {sentence}", "action": piece.label})
        struc = [{"dc_segments": segs}] if ctx.dvc_struc == "dc_segments" else [segs]
        q = ctx.question("DVC", rng, actions_list=str(vocab), actions=", ".join(vocab))
        covers = sorted({i for piece, _ in spans for i in piece.owners if i in w.covers})
        covered.update(covers)
        out.append(_instance(ctx, "DVC", key, clip.start_s, clip.end_s, clip.fps, clip.indices, q,
                             struc, TASKS.get("DVC").format_answer(struc), covers))

    lo, hi = _window_limits(ctx, *ctx.config.dvc_window)
    for w_i, w in enumerate(covering_windows(events, ctx.duration_s, ctx.rng(ctx.key("DVC", kind, "windows")),
                                             lo, hi)):
        make(ctx.key("DVC", kind, f"{w_i:04d}"), w)
    left = [(i, e) for i, e in events if i not in covered and e.end_s - e.start_s >= MIN_SPAN_S]
    if left:
        fastest = max(ctx.allowed_fps)
        cap_len = max(ctx.config.max_frames / fastest - 1.0 / store_rate(ctx.ann.video), 1.0)
        lo2, hi2 = min(lo, cap_len), min(hi, cap_len)
        for w_i, w in enumerate(covering_windows(left, ctx.duration_s,
                                                 ctx.rng(ctx.key("DVC", kind, "short-windows")), lo2, hi2)):
            make(ctx.key("DVC", kind, f"s{w_i:04d}"), w)
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
    with another step (either would be a correct answer), and one outside the class list the
    leaderboard scores the question against (:func:`mvbench.tasks.nap.classes_of`: NurViD's
    official per-procedure lists are subsets of the release's actions): the scorer would skip it.
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
        clip = ctx.clip(rng, start, end, task="NAP")
        if clip is None or abs(clip.end_s - end) > 1e-6:  # capped windows: never cut the end
            continue
        struc = [{"next_action": nxt[0]}]
        # Name the procedure when known: the scorer reads it from the question to pick the class list.
        q = ctx.question("NAP", rng, prefer=("procedure",) if ctx.procedure else (),
                         actions_list=str(vocab))
        answer = TASKS.get("NAP").format_answer(struc)
        scored_as = {"question": q, "data_source": ctx.data_source, "gnd": answer,
                     "metadata": {"video_id": ctx.video_id}}
        if nap_task.normalize_action(answer, ctx.data_source) not in nap_task.classes_of(scored_as):
            ctx.ann.issues.append(f"NAP: next step {nxt[0]!r} after step {n} is not in the leaderboard's class "
                                  f"list for this question (the scorer would skip it); instance skipped")
            continue
        out.append(_instance(ctx, "NAP", key, round(clip.start_s, 3), round(end, 3), clip.fps,
                             clip.indices, q, struc, answer))
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
        clip = ctx.clip(rng, start, end, task="VS")
        if clip is None:
            continue
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
