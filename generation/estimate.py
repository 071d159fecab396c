"""``--estimate``: calls, input images, tokens and cost per writer, before paying (no call is made).

Input tokens: the prompt text at 4 characters per token plus each frame's image tokens as the
provider bills them for the frame's size as sent (OpenAI's tile rule for gpt-4.1; Gemini's 258 per
tile of 768 px). Output tokens: the prompt file's typical answer length (``expected_output_tokens``,
per segment for DVC). Calls already in this output folder's journal are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvbench.generation.plan import Plan
from mvbench.generation.prices import PriceTable


@dataclass
class WriterEstimate:
    """One writer's share of a run."""

    variant: str
    provider: str
    model: str
    calls: int = 0
    done: int = 0
    images: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    batch_cost_usd: float | None = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for k in ("cost_usd", "batch_cost_usd"):
            d[k] = None if d[k] is None else round(d[k], 4)
        return d


def journalled_ids(state_dir: Path) -> set[str]:
    """Call ids already answered in an output folder (read only; nothing is created)."""
    path = state_dir / "calls.jsonl"
    if not path.is_file():
        return set()
    ids = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            ids.add(json.loads(line)["call_id"])
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    return ids


def estimate(plan: Plan, prices: PriceTable, done: set[str]) -> dict[str, Any]:
    """The estimate of a run (see the module docstring).

    Returns:
        ``{"writers": [WriterEstimate dicts], "instances", "by_task", "total_cost_usd",
        "total_batch_cost_usd", "prices"}``; costs are None when a model has no price.
    """
    per: dict[str, WriterEstimate] = {}
    by_task: dict[str, int] = {}
    for inst in plan.instances:
        by_task[inst.template.task] = by_task.get(inst.template.task, 0) + 1
        for call in inst.calls.values():
            w = call.writer
            e = per.setdefault(w.variant, WriterEstimate(w.variant, w.provider, w.model))
            if call.call_id in done:
                e.done += 1
                continue
            e.calls += 1
            e.images += call.images
            e.input_tokens += call.est_input_tokens
            e.output_tokens += call.est_output_tokens
    for e in per.values():
        e.cost_usd = prices.cost(e.model, e.input_tokens, e.output_tokens, batch=False)
        e.batch_cost_usd = prices.cost(e.model, e.input_tokens, e.output_tokens, batch=True)
    writers = [per[v] for v in sorted(per, key=lambda v: v != "gpt")]
    costs = [e.cost_usd for e in writers]
    batch_costs = [e.batch_cost_usd for e in writers]
    return {"instances": len(plan.instances), "by_task": dict(sorted(by_task.items())),
            "writers": [e.to_dict() for e in writers],
            "total_cost_usd": None if None in costs else round(sum(costs), 4),
            "total_batch_cost_usd": None if None in batch_costs else round(sum(batch_costs), 4),
            "prices": {"table": prices.path, "version": prices.version}}
