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
from mvbench.builders.generators.context import GenConfig, GenContext
from mvbench.builders.generators.scores import generate_cvs, generate_sa
from mvbench.builders.generators.spatial import generate_rc, generate_stg
from mvbench.builders.generators.temporal import generate_dvc, generate_nap, generate_tag, generate_vs
from mvbench.builders.instances import PlannedInstance

GENERATORS: dict[str, Callable[[GenContext], list[PlannedInstance]]] = {
    "TAG": generate_tag, "STG": generate_stg, "DVC": generate_dvc, "VS": generate_vs,
    "RC": generate_rc, "NAP": generate_nap, "SA": generate_sa, "CVS": generate_cvs,
}
# Bump when generator output changes (part of every record's builder_version).
GENERATORS_VERSION = "2"


def eligible_segments(ann: VideoAnnotation, builder: type[SourceBuilder]) -> dict[str, int]:
    """How many events TAG and DVC must each use (TAG: every event; DVC: the main kind's)."""
    main = GenContext.for_builder(builder, ann, GenConfig()).main_kind()
    return {"TAG": len(ann.events), "DVC": sum(e.kind == main for e in ann.events)}


def plan_video(ann: VideoAnnotation, builder: type[SourceBuilder], tasks: Sequence[str],
               config: GenConfig) -> list[PlannedInstance]:
    """Plan every instance of one video for the given tasks.

    Args:
        ann: the video's canonical annotations (``ann.issues`` may grow: skipped instances).
        builder: the source's builder class (name, data_source, ``primary_kind``, ``dvc_struc``).
        tasks: tasks to generate (normally ``builder.tasks``, possibly narrowed by ``--tasks``).
        config: generator options.

    Returns:
        Instances in task order, then generation order; keys are unique.
    """
    ctx = GenContext.for_builder(builder, ann, config)
    out: list[PlannedInstance] = []
    for task in tasks:
        out += GENERATORS[task](ctx)
    keys = [i.key for i in out]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"duplicate instance key {dup!r}")
    return out


__all__ = ["GENERATORS", "GENERATORS_VERSION", "GenConfig", "GenContext", "eligible_segments", "plan_video"]
