"""What every task generator shares: the video, the options, seeded RNGs, frames, questions, drafts."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mvbench import prompts
from mvbench.builders.base import DvcStruc, Event, SourceBuilder, VideoAnnotation
from mvbench.builders.windows import (align_start, allowed_fps, choose_fps, clip_indices, instance_rng,
                                     max_clip_len)
from mvbench.tasks import TASKS
from mvbench.tasks.base import fmt_time


@dataclass(frozen=True)
class GenConfig:
    """Options of the task generators.

    Args:
        seed: seeds windows, sampling rates and phrasings (per instance key).
        max_frames / min_frames: frame budget per instance (the fps is fitted to it).
        max_per_video: cap on STG, RC, VS and NAP instances per video and task (drawn with the
            seed); TAG and DVC are never capped, so that every segment is used.
        tag_window / dvc_window / vs_window / nap_window / track_window: (min, max) window
            lengths in seconds.
        stg_keyframes: also ask STG about boxes that have no neighbour close enough to form a
            track (sparse keyframe labels, e.g. the AVOS detection CSVs): one question per such
            box, answered at its labelled frame.
    """

    seed: int = 0
    max_frames: int = 256
    min_frames: int = 4
    max_per_video: int = 100
    tag_window: tuple[float, float] = (20.0, 300.0)
    dvc_window: tuple[float, float] = (60.0, 600.0)
    vs_window: tuple[float, float] = (60.0, 600.0)
    nap_window: tuple[float, float] = (20.0, 180.0)
    track_window: tuple[float, float] = (10.0, 60.0)
    stg_keyframes: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.min_frames <= self.max_frames:
            raise ValueError("need 1 <= min_frames <= max_frames")


@dataclass(frozen=True)
class Clip:
    """A clip as the model sees it: start on the frame grid, rate, end, and native frame indices.

    The frame at list position ``k`` is shown at ``start_s + k / fps`` (see
    :mod:`mvbench.builders.windows`); every sample time is below ``end_s``.
    """

    start_s: float
    end_s: float
    fps: float
    indices: list[int]


@dataclass
class PlanReport:
    """What planning one video changed or gave up, for the manifest (counts, no per-instance lists).

    Attributes:
        lowered: ``(task, drawn fps, used fps)`` → clips shown at a lower rate because the frame
            store has no frame near some sample time at the drawn one.
        raised: ``(task, drawn fps, used fps)`` → DVC clips sampled faster so that no segment
            falls between two sampled frames.
        skipped: ``(task, reason)`` → instances not made (``sparse_store``: no allowed rate can
            show the clip without a gap).
        dropped: task → segments left out of an answer because no sampled frame lies inside them.
        empty: task → why this video yields no instance of it (a reason code, see
            :data:`mvbench.builders.generators.EMPTY_REASONS`).
    """

    lowered: Counter = field(default_factory=Counter)
    raised: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    empty: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (string keys ``"TAG 0.5>0.25"``), empty parts left out."""
        out: dict[str, Any] = {}
        for name, counter in (("lowered", self.lowered), ("raised", self.raised)):
            if counter:
                out[name] = {f"{t} {a:g}>{b:g}": n for (t, a, b), n in sorted(counter.items())}
        if self.skipped:
            out["skipped"] = {f"{t} {r}": n for (t, r), n in sorted(self.skipped.items())}
        if self.dropped:
            out["dropped"] = dict(sorted(self.dropped.items()))
        if self.empty:
            out["empty"] = dict(sorted(self.empty.items()))
        return out

    def issues(self) -> list[str]:
        """One readable line per kind of change, for the manifest's anomalies."""
        lines = []
        for (task, a, b), n in sorted(self.lowered.items()):
            lines.append(f"{task}: {n} clip(s) shown at {b:g} fps instead of {a:g} fps (the frame store has "
                         f"no frame near some sample times at {a:g} fps)")
        for (task, a, b), n in sorted(self.raised.items()):
            lines.append(f"{task}: {n} clip(s) sampled at {b:g} fps instead of {a:g} fps so that every "
                         f"segment holds a sampled frame")
        for (task, reason), n in sorted(self.skipped.items()):
            lines.append(f"{task}: {n} instance(s) skipped ({reason})")
        for task, n in sorted(self.dropped.items()):
            lines.append(f"{task}: {n} segment(s) left out of an answer: no sampled frame lies inside them")
        return lines


@dataclass
class GenContext:
    """One video being planned.

    Args:
        source / data_source: builder name and official data_source.
        ann: the video's canonical annotations.
        config: generator options.
        primary_kind: the event kind for DVC/NAP/VS (default: the first ``vocab`` key with events).
        dvc_struc: the DVC ``struc_info`` shape (:attr:`SourceBuilder.dvc_struc`).
    """

    source: str
    data_source: str
    ann: VideoAnnotation
    config: GenConfig
    primary_kind: str | None = None
    dvc_struc: DvcStruc = "list"
    report: PlanReport = field(default_factory=PlanReport)

    @classmethod
    def for_builder(cls, builder: type[SourceBuilder], ann: VideoAnnotation, config: GenConfig) -> GenContext:
        """The context of one video of ``builder``'s source (its name, data_source and quirks)."""
        return cls(source=builder.name, data_source=builder.data_source, ann=ann, config=config,
                   primary_kind=builder.primary_kind, dvc_struc=builder.dvc_struc)

    @property
    def video_id(self) -> str:
        return self.ann.video.video_id

    @property
    def duration_s(self) -> float:
        return self.ann.video.duration_s

    def key(self, task: str, *parts: object) -> str:
        """The instance key ``source/video/task/part/...``."""
        return "/".join([self.source, self.video_id, task, *(str(p) for p in parts)])

    def rng(self, key: str) -> random.Random:
        return instance_rng(self.config.seed, key)

    @property
    def allowed_fps(self) -> tuple[float, ...]:
        """Sampling rates this video's frames can serve (:func:`~mvbench.builders.windows.allowed_fps`)."""
        return allowed_fps(self.ann.video)

    @property
    def max_len(self) -> float:
        """The longest clip whose frames fit ``max_frames`` at the lowest allowed rate."""
        return max_clip_len(self.config.max_frames, self.allowed_fps)

    def choose_fps(self, rng: random.Random, duration_s: float) -> float:
        """A sampling rate for a clip of ``duration_s`` (allowed by the video, within budget)."""
        return choose_fps(rng, duration_s, self.config.min_frames, self.config.max_frames,
                          self.allowed_fps)

    def clip(self, rng: random.Random, start_s: float, end_s: float, fps: float | None = None,
             align: bool = True, task: str = "", lower: bool = True) -> Clip | None:
        """The clip for a window: start moved onto the frame grid, rate drawn, end fitted.

        Args:
            rng: the instance RNG (draws the rate when ``fps`` is None).
            start_s / end_s: the wanted window.
            fps: a rate already chosen (STG/RC choose it before placing the clip start).
            align: move ``start_s`` back to the last existing frame at or before it.
            task: the task asking (for the plan report).
            lower: when the frames cannot show the clip at the rate (a sparse frame store), try
                the lower allowed rates, and report it; with ``lower=False`` return None at once.

        Returns:
            The clip; its end is pulled in when the window holds more than ``max_frames``
            samples, so that answers computed on ``[start_s, end_s]`` cover only frames shown.
            None (reported as a skipped instance when ``lower``) when no rate can show it.
        """
        meta = self.ann.video
        start = align_start(meta, start_s) if align else start_s
        end = max(end_s, start)
        if fps is None:
            fps = self.choose_fps(rng, end - start)
        rates = [fps] + ([f for f in sorted(self.allowed_fps, reverse=True) if f < fps] if lower else [])
        for rate in rates:
            clip_end = min(end, start + self.config.max_frames / rate)
            indices = clip_indices(meta, start, clip_end, rate, self.config.max_frames)
            if indices is not None:
                if rate != fps:
                    self.report.lowered[(task, fps, rate)] += 1
                return Clip(start, clip_end, rate, indices)
        if lower:
            self.report.skipped[(task, "sparse_store")] += 1
        return None

    def question(self, task: str, rng: random.Random, prefer: tuple[str, ...] = (), **fields: Any) -> str:
        """A question from the task's prompt templates (the source's preamble + a phrasing).

        ``prefer``: field names the phrasing should use when one can (see ``Task.question``).
        """
        procedure = self.procedure
        if procedure and "procedure" not in fields:
            fields["procedure"] = procedure
        task_name = self.ann.video.attrs.get("task_name") or self.ann.video.attrs.get("task")
        if task_name and "task_name" not in fields:
            fields["task_name"] = str(task_name)
        return TASKS.get(task).question(self.data_source, rng, prefer=prefer, **fields)

    # ----- events ---------------------------------------------------------------------------
    def kinds(self) -> list[str]:
        """Event kinds present, in ``vocab`` order first."""
        present = list(dict.fromkeys(e.kind for e in self.ann.events))
        ordered = [k for k in self.ann.vocab if k in present]
        return ordered + [k for k in present if k not in ordered]

    def events_of(self, kind: str) -> list[tuple[int, Event]]:
        """``(index, event)`` pairs of one kind, by start time."""
        pairs = [(i, e) for i, e in enumerate(self.ann.events) if e.kind == kind]
        return sorted(pairs, key=lambda p: (p[1].start_s, p[1].end_s, p[0]))

    def vocab(self, kind: str) -> list[str]:
        """The label list questions offer for a kind (the builder's, else the labels present)."""
        if self.ann.vocab.get(kind):
            return list(self.ann.vocab[kind])
        return sorted({e.label for e in self.ann.events if e.kind == kind})

    def main_kind(self) -> str | None:
        """The kind DVC, NAP and VS use: ``primary_kind`` if it has events, else the first kind."""
        kinds = self.kinds()
        if self.primary_kind in kinds:
            return self.primary_kind
        return kinds[0] if kinds else None

    # ----- text -----------------------------------------------------------------------------
    @property
    def procedure(self) -> str | None:
        value = self.ann.video.attrs.get("procedure")
        return str(value) if value else None

    def context_phrase(self) -> str:
        """``"<procedure> procedure"`` when the video names one, else the source's phrase."""
        table = prompts.load("drafts")["context"]
        if self.procedure:
            return table["procedure"].format(procedure=self.procedure)
        return table.get(self.data_source, "procedure")

    def draft(self, section: str, variant: str, rng: random.Random, **fields: Any) -> str:
        """An annotation-derived draft sentence from ``prompts/drafts.toml``."""
        choices = prompts.load("drafts")[section][variant]
        return rng.choice(choices).format(context=self.context_phrase(), **fields)


def rel(t: float, start_s: float) -> float:
    """Seconds from the clip start, one decimal (as answers write them)."""
    return round(max(0.0, t - start_s), 1)


def num_text(v: float) -> str:
    """A time/stride for question text: ``4`` for whole numbers, else one decimal."""
    return str(int(round(v))) if abs(v - round(v)) < 1e-9 else fmt_time(v)


def join_list(items: list[str], conj: str = "and") -> str:
    """``a, b, and c`` (``a`` / ``a and b`` for shorter lists)."""
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} {conj} {items[1]}"
    return f"{', '.join(items[:-1])}, {conj} {items[-1]}"


def cap(items: list, limit: int, rng: random.Random) -> list:
    """At most ``limit`` items, drawn with ``rng``, in their original order."""
    if len(items) <= limit:
        return items
    keep = sorted(rng.sample(range(len(items)), limit))
    return [items[i] for i in keep]
