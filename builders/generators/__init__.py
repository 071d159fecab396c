"""Task generators: canonical annotations of one video → planned instances, one function per task.

``plan_video`` runs the generators of the tasks a source supports. Generators are shared by all
sources; they read only the canonical form (:class:`mvbench.builders.base.VideoAnnotation`).

Event kinds: TAG uses every event kind; DVC, NAP and VS use the main kind — the builder's
``primary_kind`` (:attr:`~mvbench.builders.base.SourceBuilder.primary_kind`) when the video has
events of it, else the first ``vocab`` key that has events (other kinds may overlap, and a dense
caption lists non-overlapping segments). The builder's ``dvc_struc`` picks the DVC ground-truth shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mvbench.builders.base import SourceBuilder, VideoAnnotation
from mvbench.builders.generators.context import GenConfig, GenContext, PlanReport
from mvbench.builders.generators.scores import generate_cvs, generate_sa
from mvbench.builders.generators.spatial import generate_rc, generate_stg
from mvbench.builders.generators.temporal import generate_dvc, generate_nap, generate_tag, generate_vs
from mvbench.builders.instances import PlannedInstance

GENERATORS: dict[str, Callable[[GenContext], list[PlannedInstance]]] = {
    "TAG": generate_tag, "STG": generate_stg, "DVC": generate_dvc, "VS": generate_vs,
    "RC": generate_rc, "NAP": generate_nap, "SA": generate_sa, "CVS": generate_cvs,
}
# Bump when generator output changes (part of every record's builder_version).
GENERATORS_VERSION = "3"

# Why a video yields no instance of a task (reason code → what it means). The pipeline reports a
# task that a whole source yields none of with these, and the option that changes it.
EMPTY_REASONS: dict[str, str] = {
    "no_events": "no timed events (phases, actions, gestures) in the annotations",
    "one_step": "fewer than two steps: nothing comes next",
    "no_tracks": "no boxes in the annotations",
    "single_box_tracks": "every track holds one box: labelled frames are too far apart to link boxes into tracks",
    "no_scores": "no score windows (GRS / CVS) in the annotations",
    "sparse_store": "the frame store is too sparse: no allowed rate shows the clips without a gap",
    "too_short": "every candidate clip or segment is too short (see the video's anomalies)",
}


def eligible_segments(ann: VideoAnnotation, builder: type[SourceBuilder]) -> dict[str, int]:
    """How many events TAG and DVC must each use (TAG: every event; DVC: the main kind's)."""
    main = GenContext.for_builder(builder, ann, GenConfig()).main_kind()
    return {"TAG": len(ann.events), "DVC": sum(e.kind == main for e in ann.events)}


def plan_video(ann: VideoAnnotation, builder: type[SourceBuilder], tasks: Sequence[str],
               config: GenConfig) -> list[PlannedInstance]:
    """Plan every instance of one video for the given tasks (see :func:`plan_video_report`)."""
    return plan_video_report(ann, builder, tasks, config)[0]


def plan_video_report(ann: VideoAnnotation, builder: type[SourceBuilder], tasks: Sequence[str],
                      config: GenConfig) -> tuple[list[PlannedInstance], PlanReport]:
    """Plan every instance of one video, and report what planning changed or gave up.

    Args:
        ann: the video's canonical annotations (``ann.issues`` may grow: skipped instances, and
            one line per kind of change in the report).
        builder: the source's builder class (name, data_source, ``primary_kind``, ``dvc_struc``).
        tasks: tasks to generate (normally ``builder.tasks``, possibly narrowed by ``--tasks``).
        config: generator options.

    Returns:
        Instances in task order, then generation order (keys are unique), and the plan report
        (lowered / raised rates, skipped instances, dropped segments, and for each task with no
        instance in this video the reason code, :data:`EMPTY_REASONS`).
    """
    ctx = GenContext.for_builder(builder, ann, config)
    out: list[PlannedInstance] = []
    for task in tasks:
        made = GENERATORS[task](ctx)
        if not made:
            ctx.report.empty[task] = empty_reason(task, ctx)
        out += made
    keys = [i.key for i in out]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"duplicate instance key {dup!r}")
    ann.issues.extend(ctx.report.issues())
    return out, ctx.report


def empty_reason(task: str, ctx: GenContext) -> str:
    """Why a video yields no instance of ``task``: a key of :data:`EMPTY_REASONS`."""
    ann = ctx.ann
    if any(t == task and r == "sparse_store" for t, r in ctx.report.skipped):
        return "sparse_store"
    if task in ("TAG", "DVC", "NAP"):
        kind = ctx.main_kind()
        if kind is None:
            return "no_events"
        if task == "NAP" and len({e.label for _, e in ctx.events_of(kind)}) < 2:
            return "one_step"
        return "too_short"
    if task in ("STG", "RC"):
        if not ann.tracks:
            return "no_tracks"
        if all(len(t.boxes) < 2 for t in ann.tracks):
            return "single_box_tracks"
        return "too_short"
    if task == "VS":
        return "no_events" if not ann.events and not ann.tracks else "too_short"
    kind = {"SA": "grs", "CVS": "cvs"}.get(task)
    if kind and not any(s.kind == kind for s in ann.scores):
        return "no_scores"
    return "too_short"


__all__ = ["EMPTY_REASONS", "GENERATORS", "GENERATORS_VERSION", "GenConfig", "GenContext", "PlanReport",
           "eligible_segments", "empty_reason", "plan_video", "plan_video_report"]
