"""Generators for the assessment tasks: SA (JIGSAWS GRS) and CVS (Cholec80-CVS criteria)."""

from __future__ import annotations

from mvbench.builders.generators.context import GenContext
from mvbench.builders.instances import PlannedInstance
from mvbench.tasks import TASKS
from mvbench.tasks.cvs import CRITERIA as CVS_CRITERIA
from mvbench.tasks.sa import ASPECTS as SA_ASPECTS

# Cholec80-CVS: the critical view counts as achieved at a total of 5 or 6 (of 3 x 0-2).
CVS_ACHIEVED_TOTAL = 5


def _instance(ctx: GenContext, task: str, key: str, start: float, end: float, q_fields: dict,
              struc) -> PlannedInstance | None:
    rng = ctx.rng(key)
    clip = ctx.clip(rng, start, end, task=task)
    if clip is None:  # reported by ctx.clip
        return None
    q = ctx.question(task, rng, **q_fields)
    return PlannedInstance(key=key, source=ctx.source, data_source=ctx.data_source, task=task,
                           video_id=ctx.video_id, clip_start_s=clip.start_s, clip_end_s=clip.end_s,
                           fps=clip.fps, frame_indices=clip.indices, question=q, struc_info=struc,
                           answer=TASKS.get(task).format_answer(struc))


def generate_sa(ctx: GenContext) -> list[PlannedInstance]:
    """SA: one instance per GRS score window; all six aspects are required (else reported, skipped)."""
    out = []
    for n, s in enumerate(x for x in ctx.ann.scores if x.kind == "grs"):
        missing = [a for a in SA_ASPECTS if a not in s.values]
        if missing:
            ctx.ann.issues.append(f"SA: score window {n} lacks aspect(s) {missing}; skipped")
            continue
        struc_item: dict = {"skill_scores": {a: int(s.values[a]) for a in SA_ASPECTS}}
        if s.level:
            struc_item = {"skill_level": s.level, **struc_item}
        out.append(_instance(ctx, "SA", ctx.key("SA", f"{n:04d}"), s.start_s, s.end_s,
                             {"aspects": ", ".join(SA_ASPECTS)}, [struc_item]))
    return [i for i in out if i is not None]


def generate_cvs(ctx: GenContext) -> list[PlannedInstance]:
    """CVS: one instance per CVS score window (three criteria 0-2, their total, achieved flag)."""
    out = []
    for n, s in enumerate(x for x in ctx.ann.scores if x.kind == "cvs"):
        missing = [k for k, _ in CVS_CRITERIA if k not in s.values]
        if missing:
            ctx.ann.issues.append(f"CVS: score window {n} lacks criteria {missing}; skipped")
            continue
        scores = {k: int(s.values[k]) for k, _ in CVS_CRITERIA}
        total = sum(scores.values())
        struc = [{"cvs_scores": {**scores, "total": total,
                                 "critical_view_achieved": total >= CVS_ACHIEVED_TOTAL}}]
        out.append(_instance(ctx, "CVS", ctx.key("CVS", f"{n:04d}"), s.start_s, s.end_s, {}, struc))
    return [i for i in out if i is not None]
