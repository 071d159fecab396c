"""What the live and the batch runners share: the clients, the journal, the budget, progress."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mvbench.llm.cache import ResponseCache
from mvbench.llm.gemini_client import GeminiClient
from mvbench.llm.openai_client import OpenAIChatClient
from mvbench.llm.retry import ClientOptions, Completion

from mvbench.generation.accounting import Budget, call_cost
from mvbench.generation.config import GenerateConfig, Writer
from mvbench.generation.journal import Journal
from mvbench.generation.plan import Call, Plan
from mvbench.generation.prices import PriceTable
from mvbench.generation.requests import RequestBuilder

log = logging.getLogger(__name__)

Progress = Callable[[int, float], None]  # (calls finished, their cost in USD)


def make_client(writer: Writer, cfg: GenerateConfig, cache: ResponseCache | None):
    """The client of one writer (keys from the environment; see :mod:`mvbench.llm`)."""
    options = ClientOptions(base_url=writer.base_url, timeout_s=cfg.timeout_s, max_retries=cfg.max_retries,
                            concurrency=cfg.concurrency, retry_base_delay_s=cfg.retry_base_delay_s)
    if writer.provider == "openai":
        return OpenAIChatClient(writer.model, options, cache)
    return GeminiClient(writer.model, options, cache, thinking_budget=cfg.gemini_thinking_budget)


@dataclass
class Engine:
    """The state one run's calls go through.

    Args:
        cfg / plan: the run.
        journal: where finished calls are persisted.
        prices / budget: cost and the cap.
        clients: variant → client.
        builder: makes requests.
        progress: called after every finished call.
    """

    cfg: GenerateConfig
    plan: Plan
    journal: Journal
    prices: PriceTable
    budget: Budget
    clients: dict[str, Any]
    builder: RequestBuilder
    progress: Progress | None = None
    aborted: str | None = None
    streak: dict[str, int] = field(default_factory=dict)

    @property
    def abort_after(self) -> int:
        """Consecutive failures of one writer that stop the run (a dead or misconfigured server)."""
        return max(16, 2 * self.cfg.concurrency)

    async def succeeded(self, call: Call, done: Completion, via: str, cache_key: str | None = None) -> float | None:
        """Journal a finished call (and cache a batch answer); return its cost."""
        if via == "batch" and cache_key is not None:
            client = self.clients[call.writer.variant]
            await asyncio.to_thread(client.store, cache_key, done, call.uid, None, via="batch")
        cost = call_cost(self.prices, call.writer, done.usage, via)
        await self.journal.record_success({
            "call_id": call.call_id, "uid": call.uid, "variant": call.writer.variant,
            "provider": call.writer.provider, "model": call.writer.model, "via": via, "text": done.text,
            "usage": done.usage.to_dict(), "cost_usd": None if cost is None else round(cost, 8),
            "attempts": done.attempts})
        self.streak[call.writer.variant] = 0
        if self.progress is not None:
            self.progress(1, cost or 0.0)
        return cost

    async def failed(self, call: Call, error: str) -> None:
        """Log a failed call (retried on the next run); stop the run after too many in a row."""
        await self.journal.record_failure(call.call_id, call.uid, call.writer.variant, error)
        log.warning("%s answer for %s failed (retried on the next run): %s", call.writer.variant, call.uid, error)
        n = self.streak.get(call.writer.variant, 0) + 1
        self.streak[call.writer.variant] = n
        if n >= self.abort_after and self.aborted is None:
            self.aborted = (f"the {call.writer.variant} writer ({call.writer.model}) failed {n} calls in a row; "
                            f"last error: {error}")
        if self.progress is not None:
            self.progress(1, 0.0)
