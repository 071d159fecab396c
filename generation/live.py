"""Live mode: every pending call sent at once, bounded per writer by the client's concurrency.

Each call: take a preparation slot, reserve its upper-bound cost (``--budget-usd``) just before it
is sent, render the instance's frames (in a thread; shared by the instance's two calls), ask the
client (cache first, then the server with retries; an empty answer counts as a transient
failure), journal the answer, settle the cost. A call that fails after its retries is logged and
retried on the next run.

The budget is used up to the cap: a call that does not fit while others are in flight waits for
them to settle (each gives back what it reserved beyond its cost), and the run stops only when
the next call does not fit with nothing in flight (:meth:`~.engine.Engine.reserve`). Once it
stops, or one writer fails too many calls in a row, no new call starts; those in flight end.
"""

from __future__ import annotations

import asyncio

from mvbench.errors import MvbenchError
from mvbench.llm.collector import collector_tuned

from mvbench.generation.accounting import upper_bound_cost
from mvbench.generation.engine import Engine
from mvbench.generation.plan import Call, Instance


async def run_live(engine: Engine, pending: list[tuple[Instance, Call]]) -> None:
    """Answer every pending call (see the module docstring)."""
    with collector_tuned():  # GC scans of the plan would stall the loop (mvbench.llm.collector)
        await _run_live(engine, pending)


async def _run_live(engine: Engine, pending: list[tuple[Instance, Call]]) -> None:
    cfg = engine.cfg
    # twice the in-flight limit is being prepared, so a call in a retry backoff does not starve others
    preparing = asyncio.Semaphore(2 * cfg.concurrency * len(cfg.writers))
    capped = engine.budget.cap is not None

    async def one(inst: Instance, call: Call) -> None:
        if engine.budget.exhausted or engine.aborted:
            return
        async with preparing:
            reserve = 0.0
            if capped:
                reserve = upper_bound_cost(engine.prices, call.writer, call.est_input_tokens, cfg.max_tokens,
                                           batch=False)
            if not await engine.reserve(reserve):
                return
            client = engine.clients[call.writer.variant]
            try:
                if engine.builder.has_frames(inst):  # the instance's other call rendered them
                    req = engine.builder.build(inst, call)
                else:
                    req = await asyncio.to_thread(engine.builder.build, inst, call)
                done = await req.send(client)
            except MvbenchError as e:  # ServerError after retries, or an unreadable frame
                engine.settle(reserve, 0.0)
                await engine.failed(call, f"{type(e).__name__}: {e}")
                return
        cost = await engine.succeeded(call, done, "cache" if done.cached else "live")
        engine.settle(reserve, cost)

    await asyncio.gather(*(one(inst, call) for inst, call in pending))
