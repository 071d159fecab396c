"""``mvbench generate`` end to end: plan → (estimate | calls → validator → assemble).

Safe to interrupt anywhere: answers are journalled as they arrive (and cached), batch jobs are
recorded before they are polled, and the dataset is rewritten only at the end, from the journal.
Rerunning the same command resumes; it asks only for what is missing. Every paid call, the
validator's included, goes through the same budget (``--budget-usd``) and the same accounting.
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
from mvbench.llm.collector import collector_tuned
from mvbench.llm.openai_client import OpenAIChatClient
from mvbench.redact import register_secret

from mvbench.generation.accounting import Budget, check_budget_prices, totals_from_journal, upper_bound_cost
from mvbench.generation.assemble import PairOutcome, assemble, rule_outcome, validator_call_id
from mvbench.generation.batch import run_batch
from mvbench.generation.config import VALIDATOR_MAX_TOKENS, GenerateConfig, Writer
from mvbench.generation.engine import Engine, Progress, make_client
from mvbench.generation.estimate import estimate, journalled_ids
from mvbench.generation.journal import Journal
from mvbench.generation.live import run_live
from mvbench.generation.plan import STATE_DIR, Call, make_plan, text_tokens
from mvbench.generation.prices import PriceTable
from mvbench.generation.prompting import VALIDATOR_FILE, validator_text
from mvbench.generation.requests import RequestBuilder, endpoint_of

log = logging.getLogger(__name__)
KEY_VARS = {"openai": ("OPENAI_API_KEY",), "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY")}


def load_dotenv(path: str | Path = ".env") -> list[str]:
    """Set variables from a ``.env`` file that the environment does not set yet (keys only live there).

    Lines are ``NAME=value`` (optionally ``export NAME=value``). A value in quotes is taken as
    written up to its closing quote; in an unquoted value, ``#`` after a space starts a comment
    (``KEY=abc # note`` sets ``abc``), as does a line starting with ``#``.

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
        name, value = name.strip(), _dotenv_value(value.strip())
        if name and name not in os.environ:
            os.environ[name] = value
            if name.endswith(("_KEY", "_TOKEN")):
                register_secret(value)
            names.append(name)
    return names


def _dotenv_value(raw: str) -> str:
    """The value of one ``.env`` assignment (see :func:`load_dotenv`).

    >>> _dotenv_value("abc # note"), _dotenv_value("'a # b' # note"), _dotenv_value("a#b")
    ('abc', 'a # b', 'a#b')
    """
    if raw[:1] in ("'", '"'):
        end = raw.find(raw[0], 1)
        return raw[1:end] if end > 0 else raw[1:]
    for i, ch in enumerate(raw):
        if ch == "#" and i > 0 and raw[i - 1].isspace():
            return raw[:i].rstrip()
    return raw


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


async def _validate_pairs(engine: Engine, client: OpenAIChatClient, rules: dict[str, PairOutcome]) -> None:
    """The optional LLM validator on every pair that passed the rules and agreement.

    Each verdict is a paid call like the writers': reserved against ``--budget-usd`` just before it
    is sent (:meth:`~.engine.Engine.reserve`), journalled with its usage and cost, settled. The
    rule outcomes are kept in ``rules`` (by draft uid) for :func:`~.assemble.assemble`.
    """
    cfg = engine.cfg
    writer = cfg.validator_writer
    assert writer is not None

    async def one(inst) -> None:
        vid = validator_call_id(inst, cfg)
        if engine.journal.done(vid) or engine.aborted or engine.budget.exhausted:
            return
        outcome = rules.setdefault(inst.template.uid, rule_outcome(inst, engine.journal, cfg))
        if outcome.status != "accepted":
            return
        system, user = validator_text(inst.enrichment, engine.journal.get(inst.calls["gpt"].call_id)["text"],
                                      engine.journal.get(inst.calls["gemini"].call_id)["text"])
        est_input = text_tokens(system) + text_tokens(user)
        call = Call(vid, inst.template.uid, writer, 0, est_input, VALIDATOR_MAX_TOKENS)
        reserve = 0.0
        if engine.budget.cap is not None:
            reserve = upper_bound_cost(engine.prices, writer, est_input, VALIDATOR_MAX_TOKENS, batch=False)
        if not await engine.reserve(reserve):
            return
        try:
            done = await client.call([{"role": "system", "content": system}, {"role": "user", "content": user}],
                                     uid=inst.template.uid, retry_empty=True, temperature=0.0,
                                     max_tokens=VALIDATOR_MAX_TOKENS,
                                     cache_extra={"endpoint": endpoint_of(writer.base_url)})
        except MvbenchError as e:
            engine.settle(reserve, 0.0)
            await engine.failed(call, f"{type(e).__name__}: {e}")
            return
        cost = await engine.succeeded(call, done, "cache" if done.cached else "live")
        engine.settle(reserve, cost)

    with collector_tuned():
        await asyncio.gather(*(one(inst) for inst in engine.plan.instances))


def this_run_totals(writers: list[Writer], counters: dict[str, dict[str, Any]],
                    new_entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per ``variant:model`` (the validator included): what this run did.

    Answers journalled by this run by how they came (``live``, ``batch``, ``cached``), their tokens
    and cost, plus the clients' HTTP requests and retries of live calls and the calls that failed.
    """
    out: dict[str, dict[str, Any]] = {}
    for w in writers:
        c = counters.get(w.variant, {})
        out[f"{w.variant}:{w.model}"] = {"live": 0, "batch": 0, "cached": 0,
                                         "requests_sent": c.get("requests_sent", 0), "retries": c.get("retries", 0),
                                         "failed": c.get("failed", 0), "input_tokens": 0, "output_tokens": 0,
                                         "cost_usd": 0.0}
    for name, t in totals_from_journal(new_entries).items():
        row = out.setdefault(name, {"requests_sent": 0, "retries": 0, "failed": 0})
        row.update({"live": t.live, "batch": t.batch, "cached": t.cached, "input_tokens": t.input_tokens,
                    "output_tokens": t.output_tokens, "cost_usd": round(t.cost_usd, 6)})
    return out


def run_generate(cfg: GenerateConfig, progress_factory: Callable[[int], Progress] | None = None) -> dict[str, Any]:
    """Run one generation (or its estimate) and return its summary.

    Args:
        cfg: the options.
        progress_factory: called with the number of calls to make; returns the progress callback.

    Returns:
        ``{"estimate": ...}`` with ``cfg.estimate``; else ``{"counts", "accounting", "this_run",
        "stopped", "failed_calls", "out", "content_hash", "spent_usd"}``.

    Raises:
        InputError: bad dataset, options, missing keys (before any call).
        ServerError: a writer kept failing (the answers so far are saved and assembled first), or a
            batch job could not be polled or read (the answers journalled so far are kept; the jobs
            stay recorded and are collected by the next run, nothing is assembled).
    """
    plan, planner = make_plan(cfg)
    prices = PriceTable.load(cfg.prices)
    state_dir = cfg.out / STATE_DIR
    if cfg.estimate:
        return {"estimate": estimate(plan, prices, journalled_ids(state_dir), cfg)}
    writers = cfg.writers + ([cfg.validator_writer] if cfg.validator_writer else [])
    check_budget_prices(prices, writers, cfg.budget_usd)
    check_keys(writers)
    journal = Journal(state_dir)
    cache = ResponseCache(cfg.cache_dir) if cfg.cache_dir else None
    pending = [(inst, call) for inst in plan.instances for call in inst.calls.values()
               if not journal.done(call.call_id)]
    budget = Budget(cfg.budget_usd, journal.spent_usd())
    progress = progress_factory(len(pending)) if progress_factory and pending else None
    run_counters: dict[str, dict[str, Any]] = {}
    answered_before = set(journal.calls.entries)
    rules: dict[str, PairOutcome] = {}

    async def go() -> Engine:
        clients = {w.variant: make_client(w, cfg, cache) for w in writers}
        builder = RequestBuilder(cfg, clients)
        engine = Engine(cfg, plan, journal, prices, budget, clients, builder, progress)
        try:
            if cfg.batch:
                await run_batch(engine, pending)
            else:
                await run_live(engine, pending)
            if cfg.validator_writer and not engine.aborted:
                await _validate_pairs(engine, clients["validator"], rules)
        finally:
            for w, client in clients.items():
                run_counters[w] = {"requests_sent": client.counters.requests_sent,
                                   "retries": client.counters.retries,
                                   "failed": engine.failures.get(w, 0)}
                await client.aclose()
        return engine

    try:
        engine = asyncio.run(go())
        in_scope = {c.call_id for c in plan.calls}
        if cfg.validator_writer:
            in_scope |= {validator_call_id(i, cfg) for i in plan.instances}
        unanswered = [k for k in in_scope if not journal.done(k)]
        stopped = "budget" if budget.exhausted else ("aborted" if engine.aborted else None)
        this_run = this_run_totals(writers, run_counters, [e for k, e in journal.calls.entries.items()
                                                           if k not in answered_before])
        info = {
            "mode": "batch" if cfg.batch else "live",
            "writers": [{"variant": w.variant, "provider": w.provider, "model": w.model,
                         "endpoint": endpoint_of(w.base_url)} for w in writers],
            "prompt_versions": plan.prompt_versions,
            "prompt_hash": prompts.prompt_hash(*sorted(plan.prompt_versions), VALIDATOR_FILE),
            "params": cfg.params(),
            "thresholds": cfg.thresholds(),
            "prices": {"table": prices.path, "version": prices.version, "verified": False},
            "accounting": {k: v.to_dict() for k, v in totals_from_journal(list(journal.calls.entries.values())).items()},
            "this_run": this_run,
            "budget_usd": cfg.budget_usd,
            "stopped": stopped,
        }
        manifest, counts = assemble(plan, journal, cfg, info, rules, planner)
        failed_calls = [k for k in unanswered if k in journal.failures.entries]
    finally:
        journal.close()
        if cache is not None:
            cache.close()
    summary = {"counts": counts, "accounting": info["accounting"], "this_run": this_run, "stopped": stopped,
               "failed_calls": len(failed_calls), "out": str(cfg.out), "content_hash": manifest["content_hash"],
               "spent_usd": round(budget.spent, 6)}
    if engine.aborted:
        raise ServerError(f"stopped: {engine.aborted}. Answers so far are saved and assembled in {cfg.out}; "
                          "fix the cause and rerun the same command to resume")
    return summary
