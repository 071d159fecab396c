"""The task registry: 8 tasks, 11 official qa_types (plus the unsuffixed caption forms).

One module per task (``mvbench/tasks/<task>.py``) owns the task's whole definition; its prompt
file is ``prompts/tasks/<task>.toml``. Tasks are registered in the official leaderboard's column
order, so :data:`LEADERBOARD_KEYS` (and every table derived from the registry) follows it.

>>> list(TASKS)
['CVS', 'NAP', 'SA', 'STG', 'TAG', 'DVC', 'VS', 'RC']
>>> len(OFFICIAL_QA_TYPES)
11
>>> task_for_qa_type("region_caption_gemini").name
'RC'
>>> LEADERBOARD_KEYS[:4]
('cvs_acc', 'nap_acc', 'sa_acc', 'stg_miou')
"""

from __future__ import annotations

from mvbench.errors import UnknownNameError
from mvbench.registry import Registry
from mvbench.tasks.base import SCORING_MODES, MetricSpec, Task, owner_of
from mvbench.tasks.cvs import CVS
from mvbench.tasks.dvc import DVC
from mvbench.tasks.nap import NAP
from mvbench.tasks.rc import RC
from mvbench.tasks.sa import SA
from mvbench.tasks.stg import STG
from mvbench.tasks.tag import TAG
from mvbench.tasks.vs import VS

TASKS: Registry[Task] = Registry("task")
for _cls in (CVS, NAP, SA, STG, TAG, DVC, VS, RC):
    TASKS.register(_cls.name, _cls())
TASKS.freeze()

# The 11 qa_type values of the published benchmark; the caption tasks carry the GT writer's suffix.
OFFICIAL_QA_TYPES: tuple[str, ...] = tuple(
    q for _, task in TASKS.items() for q in task.qa_types
    if not (task.free_text and q in ("dense_captioning", "video_summary", "region_caption")))


def leaderboard_metrics() -> list[tuple[Task, MetricSpec]]:
    """The ten official leaderboard columns, in order, with the task reporting each."""
    return [(task, m) for _, task in TASKS.items() for m in task.metrics if m.leaderboard]


LEADERBOARD_KEYS: tuple[str, ...] = tuple(m.key for _, m in leaderboard_metrics())
METRICS: dict[str, MetricSpec] = {m.key: m for _, task in TASKS.items() for m in task.metrics}


def task_for_qa_type(qa_type: object) -> Task:
    """The task owning a qa_type (caption families matched by substring, as the official scorer does).

    Raises:
        KeyError: unknown qa_type, listing the known ones.
    """
    name = owner_of(qa_type)
    if name is None:
        raise UnknownNameError(f"unknown qa_type {qa_type!r}; known: {', '.join(OFFICIAL_QA_TYPES)}")
    return TASKS.get(name)


VARIANTS = ("gpt", "gemini")  # the caption qa_type suffixes: which writer's slot an answer fills


def qa_type_for(task: str, generator: str, variant: str | None = None) -> str:
    """The qa_type a record of ``task`` gets when ``generator`` wrote its answer.

    Args:
        task: the task name.
        generator: ``template``, ``official`` or the writing model's id.
        variant: ``gpt`` or ``gemini``: the writer slot (provider) the answer fills, which names the
            suffix whatever the model is called (a local model standing in for GPT-4.1 writes
            ``*_gpt`` records). Default: from the model id's prefix.

    >>> qa_type_for("DVC", "gemini-2.5-flash"), qa_type_for("DVC", "template"), qa_type_for("TAG", "template")
    ('dense_captioning_gemini', 'dense_captioning', 'tal')
    >>> qa_type_for("VS", "Qwen/Qwen2.5-VL-72B-Instruct", variant="gpt")
    'video_summary_gpt'
    """
    t = TASKS.get(task)
    if not t.free_text:
        return t.qa_types[0]
    base = t.qa_types[-1]
    if variant is not None:
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
        return f"{base}_{variant}"
    if generator.startswith("gpt"):
        return f"{base}_gpt"
    if generator.startswith("gemini"):
        return f"{base}_gemini"
    return base


__all__ = ["TASKS", "OFFICIAL_QA_TYPES", "LEADERBOARD_KEYS", "METRICS", "SCORING_MODES", "Task", "MetricSpec",
           "leaderboard_metrics", "task_for_qa_type", "qa_type_for", "VARIANTS"]
