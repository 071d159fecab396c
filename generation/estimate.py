"""``--estimate``: calls, input images, tokens and cost per writer, before paying (no call is made).

Input tokens: the prompt text at 4 characters per token plus each frame's image tokens as the
provider bills them for the frame's size as sent (OpenAI's tile rule for gpt-4.1; Gemini's 258 per
tile of 768 px). Output tokens: the prompt file's typical answer length (``expected_output_tokens``,
per segment for DVC). Calls already in this output folder's journal are left out.

With ``--validator``, its row is an upper bound: one call per pair (only pairs that pass the rules
and agreement are sent to it), each the validator prompt with both writers' typical answers in,
and its 16-token verdict out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvbench.generation.assemble import validator_call_id
from mvbench.generation.config import VALIDATOR_MAX_TOKENS, GenerateConfig
from mvbench.generation.plan import Plan, text_tokens
from mvbench.generation.prices import PriceTable
from mvbench.generation.prompting import validator_text


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


def estimate(plan: Plan, prices: PriceTable, done: set[str], cfg: GenerateConfig | None = None) -> dict[str, Any]:
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
    validator = cfg.validator_writer if cfg is not None else None
    if validator is not None:
        e = per.setdefault(validator.variant, WriterEstimate(validator.variant, validator.provider, validator.model))
        for inst in plan.instances:
            if validator_call_id(inst, cfg) in done:
                e.done += 1
                continue
            answers = {v: "x" * 4 * c.est_output_tokens for v, c in inst.calls.items()}
            system, user = validator_text(inst.enrichment, answers.get("gpt", ""), answers.get("gemini", ""))
            e.calls += 1
            e.input_tokens += text_tokens(system) + text_tokens(user)
            e.output_tokens += VALIDATOR_MAX_TOKENS
    for e in per.values():
        e.cost_usd = prices.cost(e.model, e.input_tokens, e.output_tokens, batch=False)
        # the validator is always called live, in batch mode too
        e.batch_cost_usd = prices.cost(e.model, e.input_tokens, e.output_tokens, batch=e.variant != "validator")
    order = {"gpt": 0, "gemini": 1, "validator": 2}
    writers = [per[v] for v in sorted(per, key=lambda v: order.get(v, 3))]
    costs = [e.cost_usd for e in writers]
    batch_costs = [e.batch_cost_usd for e in writers]
    return {"instances": len(plan.instances), "by_task": dict(sorted(by_task.items())),
            "writers": [e.to_dict() for e in writers],
            "total_cost_usd": None if None in costs else round(sum(costs), 4),
            "total_batch_cost_usd": None if None in batch_costs else round(sum(batch_costs), 4),
            "prices": {"table": prices.path, "version": prices.version}}
