"""``mvbench generate`` end to end: plan → (estimate | calls → validator → assemble).

Safe to interrupt anywhere: answers are journalled as they arrive (and cached), batch jobs are
recorded before they are polled, and the dataset is rewritten only at the end, from the journal.
Rerunning the same command resumes; it asks only for what is missing.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mvbench import prompts
from mvbench.errors import InputError, MvbenchError, ServerError
from mvbench.llm.cache import ResponseCache
from mvbench.llm.openai_client import OpenAIChatClient
from mvbench.llm.retry import ClientOptions
from mvbench.redact import redact, register_secret

from mvbench.generation.accounting import Budget, check_budget_prices, totals_from_journal
from mvbench.generation.assemble import assemble, evaluate_pair, validator_call_id
from mvbench.generation.batch import run_batch
from mvbench.generation.config import GenerateConfig, Writer
from mvbench.generation.engine import Engine, Progress, make_client
from mvbench.generation.estimate import estimate, journalled_ids
from mvbench.generation.journal import Journal
from mvbench.generation.live import run_live
from mvbench.generation.plan import STATE_DIR, Call, make_plan
from mvbench.generation.prices import PriceTable
from mvbench.generation.prompting import VALIDATOR_FILE, validator_text
from mvbench.generation.requests import RequestBuilder

log = logging.getLogger(__name__)
KEY_VARS = {"openai": ("OPENAI_API_KEY",), "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY")}


def load_dotenv(path: str | Path = ".env") -> list[str]:
    """Set variables from a ``.env`` file that the environment does not set yet (keys only live there).

    Lines are ``NAME=value`` (optionally ``export NAME=value``, quoted values); ``#`` starts a comment.

    Returns:
        The names set.
    """
    path = Path(path)
    if not path.is_file():
        return []
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = line.removeprefix("export ").split("=", 1)
        name, value = name.strip(), value.strip().strip("'\"")
        if name and name not in os.environ:
            os.environ[name] = value
            if name.endswith(("_KEY", "_TOKEN")):
                register_secret(value)
            names.append(name)
    return names


def check_keys(writers: list[Writer]) -> None:
    """Each writer on a provider's own endpoint needs its key in the environment (or ``.env``).

    Raises:
        InputError: naming the variable to set.
    """
    for w in writers:
        if w.base_url:
            continue
        if not any(os.environ.get(v) for v in KEY_VARS[w.provider]):
            raise InputError(f"the {w.variant} writer ({w.model}) needs {' or '.join(KEY_VARS[w.provider])} in "
                             f"the environment or a .env file (or --{w.provider}-base-url for another server)")


def _scope_ids(plan) -> set[str]:
    return {c.call_id for c in plan.calls}


async def _validate_pairs(engine: Engine, cache: ResponseCache | None) -> None:
    """The optional LLM validator on every pair that passed the rules and agreement."""
    cfg = engine.cfg
    client = OpenAIChatClient(cfg.validator_model, ClientOptions(
        base_url=cfg.validator_base_url, timeout_s=cfg.timeout_s, max_retries=cfg.max_retries,
        concurrency=cfg.concurrency, retry_base_delay_s=cfg.retry_base_delay_s), cache)
    writer = Writer("validator", "openai", cfg.validator_model, cfg.validator_base_url)
    rules_only = GenerateConfig(**{**cfg.__dict__, "validator_model": None, "validator_base_url": None})

    async def one(inst) -> None:
        vid = validator_call_id(inst, cfg)
        if engine.journal.done(vid) or engine.aborted:
            return
        outcome = evaluate_pair(inst, engine.journal, rules_only)
        if outcome.status != "accepted":
            return
        system, user = validator_text(inst.enrichment, engine.journal.get(inst.calls["gpt"].call_id)["text"],
                                      engine.journal.get(inst.calls["gemini"].call_id)["text"])
        call = Call(vid, inst.template.uid, writer, 0, 0, 0)
        try:
            done = await client.call([{"role": "system", "content": system}, {"role": "user", "content": user}],
                                     uid=inst.template.uid, retry_empty=True, temperature=0.0, max_tokens=16)
        except MvbenchError as e:
            await engine.failed(call, f"{type(e).__name__}: {e}")
            return
        await engine.succeeded(call, done, "cache" if done.cached else "live")

    try:
        await asyncio.gather(*(one(inst) for inst in engine.plan.instances))
    finally:
        await client.aclose()


def run_generate(cfg: GenerateConfig, progress_factory: Callable[[int], Progress] | None = None) -> dict[str, Any]:
    """Run one generation (or its estimate) and return its summary.

    Args:
        cfg: the options.
        progress_factory: called with the number of calls to make; returns the progress callback.

    Returns:
        ``{"estimate": ...}`` with ``cfg.estimate``; else ``{"counts", "accounting", "manifest",
        "stopped", "failed_calls", "out"}``.

    Raises:
        InputError: bad dataset, options, missing keys (before any call).
        ServerError: a writer kept failing (what was answered is saved and assembled first).
    """
    plan, planner = make_plan(cfg)
    prices = PriceTable.load(cfg.prices)
    state_dir = cfg.out / STATE_DIR
    if cfg.estimate:
        return {"estimate": estimate(plan, prices, journalled_ids(state_dir))}
    writers = cfg.writers + ([Writer("validator", "openai", cfg.validator_model, cfg.validator_base_url)]
                             if cfg.validator_model else [])
    check_budget_prices(prices, writers, cfg.budget_usd)
    check_keys(writers)
    journal = Journal(state_dir)
    cache = ResponseCache(cfg.cache_dir) if cfg.cache_dir else None
    pending = [(inst, call) for inst in plan.instances for call in inst.calls.values()
               if not journal.done(call.call_id)]
    budget = Budget(cfg.budget_usd, journal.spent_usd())
    progress = progress_factory(len(pending)) if progress_factory and pending else None
    run_counters: dict[str, dict[str, int]] = {}

    async def go() -> Engine:
        clients = {w.variant: make_client(w, cfg, cache) for w in cfg.writers}
        builder = RequestBuilder(cfg, clients)
        engine = Engine(cfg, plan, journal, prices, budget, clients, builder, progress)
        try:
            if cfg.batch:
                await run_batch(engine, pending)
            else:
                await run_live(engine, pending)
            if cfg.validator_model and not engine.aborted:
                await _validate_pairs(engine, cache)
        finally:
            for w, client in clients.items():
                run_counters[f"{w}:{client.model}"] = dict(client.counters.__dict__, usage=client.counters.usage.to_dict())
                await client.aclose()
        return engine

    try:
        engine = asyncio.run(go())
        stopped = "budget" if budget.exhausted else ("aborted" if engine.aborted else None)
        info = {
            "mode": "batch" if cfg.batch else "live",
            "writers": [{"variant": w.variant, "provider": w.provider, "model": w.model,
                         "endpoint": redact(w.base_url) if w.base_url else "provider default"} for w in cfg.writers],
            "prompt_versions": plan.prompt_versions,
            "prompt_hash": prompts.prompt_hash(*sorted(plan.prompt_versions), VALIDATOR_FILE),
            "params": cfg.params(),
            "thresholds": cfg.thresholds(),
            "prices": {"table": prices.path, "version": prices.version, "verified": False},
            "accounting": {k: v.to_dict() for k, v in totals_from_journal(list(journal.calls.entries.values())).items()},
            "this_run": run_counters,
            "budget_usd": cfg.budget_usd,
            "stopped": stopped,
        }
        manifest, counts = assemble(plan, planner, journal, cfg, info)
        failed_calls = {k: v for k, v in journal.failures.entries.items()
                        if not journal.done(k) and k in _scope_ids(plan) | {validator_call_id(i, cfg)
                                                                           for i in plan.instances}}
    finally:
        journal.close()
        if cache is not None:
            cache.close()
    summary = {"counts": counts, "accounting": info["accounting"], "this_run": run_counters, "stopped": stopped,
               "failed_calls": len(failed_calls), "out": str(cfg.out), "content_hash": manifest["content_hash"],
               "spent_usd": round(budget.spent, 6)}
    if engine.aborted:
        raise ServerError(f"stopped: {engine.aborted}. Answers so far are saved and assembled in {cfg.out}; "
                          "fix the cause and rerun the same command to resume")
    return summary
