"""The task registry: 8 tasks, 11 official qa_types (plus the unsuffixed caption forms).

>>> sorted(TASKS)
['CVS', 'DVC', 'NAP', 'RC', 'SA', 'STG', 'TAG', 'VS']
>>> len(OFFICIAL_QA_TYPES)
11
>>> task_for_qa_type("region_caption_gemini").name
'RC'
"""

from __future__ import annotations

from mvbench.registry import Registry
from mvbench.tasks.assessment import CVS, NAP, SA, VS
from mvbench.tasks.base import MetricSpec, Task
from mvbench.tasks.spatial import RC, STG
from mvbench.tasks.temporal import DVC, TAG

TASKS: Registry[Task] = Registry("task")
for _cls in (TAG, STG, DVC, VS, RC, NAP, SA, CVS):
    TASKS.register(_cls.name, _cls())
TASKS.freeze()

# The 11 qa_type values of the published benchmark; the caption tasks carry the GT writer's suffix.
OFFICIAL_QA_TYPES: tuple[str, ...] = tuple(
    q for _, task in TASKS.items() for q in task.qa_types
    if not (task.free_text and q in ("dense_captioning", "video_summary", "region_caption")))

_BY_QA_TYPE = {q: task for _, task in TASKS.items() for q in task.qa_types}


def task_for_qa_type(qa_type: str) -> Task:
    """The task owning a qa_type (caption families matched by prefix, as the official scorer does).

    Raises:
        KeyError: unknown qa_type, listing the known ones.
    """
    if qa_type in _BY_QA_TYPE:
        return _BY_QA_TYPE[qa_type]
    for family in ("dense_captioning", "video_summary", "region_caption"):
        if family in qa_type:
            return _BY_QA_TYPE[family]
    raise KeyError(f"unknown qa_type {qa_type!r}; known: {', '.join(OFFICIAL_QA_TYPES)}")


def qa_type_for(task: str, generator: str) -> str:
    """The qa_type a record of ``task`` gets when ``generator`` wrote its answer.

    >>> qa_type_for("DVC", "gemini-2.5-flash"), qa_type_for("DVC", "template"), qa_type_for("TAG", "template")
    ('dense_captioning_gemini', 'dense_captioning', 'tal')
    """
    t = TASKS.get(task)
    if not t.free_text:
        return t.qa_types[0]
    base = t.qa_types[-1]
    if generator.startswith("gpt"):
        return f"{base}_gpt"
    if generator.startswith("gemini"):
        return f"{base}_gemini"
    return base


__all__ = ["TASKS", "OFFICIAL_QA_TYPES", "Task", "MetricSpec", "task_for_qa_type", "qa_type_for"]
