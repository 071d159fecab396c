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
    """The client of one writer or of the validator (keys from the environment; see :mod:`mvbench.llm`)."""
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
    failures: dict[str, int] = field(default_factory=dict)  # variant -> calls failed in this run
    _freed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def abort_after(self) -> int:
        """Consecutive failures of one writer that stop the run (a dead or misconfigured server)."""
        return max(16, 2 * self.cfg.concurrency)

    async def reserve(self, amount: float) -> bool:
        """Reserve a live call's upper-bound cost just before it is sent (see :class:`~.accounting.Budget`).

        Waits while the cap refuses it and calls are in flight (they free what they reserved beyond
        their cost); stops the run when it still does not fit with nothing in flight.

        Returns:
            False when the call must not be sent (budget stopped, or the run aborted).
        """
        budget = self.budget
        while True:
            if budget.exhausted or self.aborted:
                return False
            if budget.reserve(amount):
                return True
            if not budget.in_flight:
                budget.stop()
                return False
            freed = self._freed
            await freed.wait()

    def settle(self, reserved: float, actual: float | None) -> None:
        """Settle a reservation (:meth:`~.accounting.Budget.settle`) and wake calls waiting for money."""
        self.budget.settle(reserved, actual)
        freed, self._freed = self._freed, asyncio.Event()
        freed.set()

    async def succeeded(self, call: Call, done: Completion, via: str, cache_key: str | None = None,
                        client: Any = None) -> float | None:
        """Journal a finished call (and cache a batch answer with ``client``); return its cost."""
        if via == "batch" and cache_key is not None and client is not None:
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

    async def failed(self, call: Call, error: str, streak: bool = True) -> None:
        """Log a failed call (retried on the next run); stop the run after too many live failures in a row.

        Args:
            streak: count it toward the "N failures in a row" abort (live calls only: an expired or
                failed batch line says nothing about a dead server, it is requeued).
        """
        await self.journal.record_failure(call.call_id, call.uid, call.writer.variant, error)
        self.failures[call.writer.variant] = self.failures.get(call.writer.variant, 0) + 1
        log.warning("%s answer for %s failed (retried on the next run): %s", call.writer.variant, call.uid, error)
        if not streak:
            if self.progress is not None:
                self.progress(1, 0.0)
            return
        n = self.streak.get(call.writer.variant, 0) + 1
        self.streak[call.writer.variant] = n
        if n >= self.abort_after and self.aborted is None:
            self.aborted = (f"the {call.writer.variant} writer ({call.writer.model}) failed {n} calls in a row; "
                            f"last error: {error}")
        if self.progress is not None:
            self.progress(1, 0.0)
