"""The gold check: every record's own answer, scored by its own task, must reach the task's maximum.

A build validates its ground truth against the leaderboard metrics: each record's gold answer is
put in the official evaluator's merged form (``{metadata, qa_type, struc_info, question, gnd,
answer, data_source}`` with ``answer = gnd``) and scored by its task through the task registry
(``task.score_sample`` with ``task.build_context`` over every record of the task, then
``task.aggregate`` of that one record), as ``mvbench score`` would. Every structured leaderboard
metric of the task (``MetricSpec.leaderboard`` and not ``judge``: TAG mIoU@0.3/0.5, STG mIoU, NAP,
SA and CVS accuracy, DVC F1) must reach its maximum, 1.0. A record the metric does not count
(``task.counted`` false, or a None metric) is below too: the leaderboard would drop it.

Caption tasks without a structured metric (VS, RC: the LLM judge only) are skipped, by name,
with the reason. The result goes to the manifest's ``gold_check``, per source and task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mvbench.records import Record
from mvbench.tasks import TASKS, Task

MAX_EXAMPLES = 5
_TOL = 1e-9


def merged_gold(record: Record) -> dict[str, Any]:
    """The official merged form of a record whose prediction is its own gold answer."""
    return record.merged(record.answer or "")


def structured_metrics(task: Task) -> list[str]:
    """The leaderboard metric keys of a task that are computed from the answer alone (no judge)."""
    return [m.key for m in task.metrics if m.leaderboard and not m.judge]


def gold_check(records: Sequence[Record], source_of: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Score every record's gold answer with its own task (see the module docstring).

    Args:
        records: the build's records.
        source_of: data_source → source (builder) name, for grouping.

    Returns:
        ``{source: {task: report}}``; a report is ``{"checked", "at_max", "below", "metrics",
        "examples"}`` (examples: up to five records below the maximum, with the metric and value),
        or ``{"skipped": reason}`` for a task without a structured metric.
    """
    by_task: dict[str, list[Record]] = {}
    for r in records:
        by_task.setdefault(r.task, []).append(r)
    out: dict[str, dict[str, Any]] = {}
    for task_name, recs in sorted(by_task.items()):
        task = TASKS.get(task_name)
        keys = structured_metrics(task)
        if not keys:
            for r in recs:
                out.setdefault(source_of.get(r.data_source, r.data_source), {})[task_name] = {
                    "skipped": f"{task_name} is a caption task scored only by the LLM judge "
                               f"({', '.join(m.key for m in task.metrics if m.leaderboard)}): no structured gold score"}
            continue
        merged = [merged_gold(r) for r in recs]
        context = task.build_context(merged)
        for r, m in zip(recs, merged):
            report = out.setdefault(source_of.get(r.data_source, r.data_source), {}).setdefault(
                task_name, {"checked": 0, "at_max": 0, "below": 0, "metrics": keys, "examples": []})
            sample = task.score_sample(m, context)
            values = task.aggregate([m], [sample])
            low = [(k, values.get(k)) for k in keys
                   if not task.counted(sample) or values.get(k) is None or values[k] < 1.0 - _TOL]
            report["checked"] += 1
            if low:
                report["below"] += 1
                if len(report["examples"]) < MAX_EXAMPLES:
                    report["examples"].append({"uid": r.uid, "video": r.source_video, "metric": low[0][0],
                                               "value": low[0][1], "counted": task.counted(sample)})
            else:
                report["at_max"] += 1
    return {s: dict(sorted(t.items())) for s, t in sorted(out.items())}


def below(report: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str, int]]:
    """``(source, task, records below the maximum)`` for every group with any."""
    return [(s, t, r["below"]) for s, tasks in report.items() for t, r in tasks.items() if r.get("below")]
