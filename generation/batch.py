"""Batch mode: pending calls go to the OpenAI Batch API and Gemini batch mode (about half the price).

Jobs are recorded in ``OUT/.generation/batches.json`` (atomic writes), so a killed process
collects the same jobs on restart instead of paying twice:

1. before a job is created, an entry ``submitting`` with a fresh token and its call ids is saved;
   the token goes into the job (OpenAI ``metadata.mvbench_job``, Gemini ``display_name``);
2. once created, the job id is saved (``submitted``) before any polling;
3. on restart, a ``submitting`` entry is looked up by its token (the process may have died between
   creating the job and saving its id): found, it is adopted; not found, it is dropped and its calls
   go out again;
4. ``submitted`` jobs are polled until terminal, then read back: results are keyed by call id
   (order is not guaranteed), answers are journalled and cached, failed and missing lines are
   logged and requeued in a new job, up to ``max_requeues`` rounds per run (the rest on the next run).

Calls already answered in the response cache are journalled before anything is submitted.
Each job reserves its upper-bound cost at batch prices against ``--budget-usd``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path
from typing import Any

from mvbench.dataset_io import atomic_write_json
from mvbench.errors import InputError, MvbenchError
from mvbench.llm.openai_client import OpenAIChatClient
from mvbench.llm.retry import Completion, Usage

from mvbench.generation.accounting import upper_bound_cost
from mvbench.generation.engine import Engine
from mvbench.generation.plan import Call, Instance

log = logging.getLogger(__name__)
BATCH_FILE = "batches.json"


class BatchState:
    """The persisted list of batch jobs of one output folder."""

    def __init__(self, state_dir: Path):
        self.path = state_dir / BATCH_FILE
        self.jobs: list[dict[str, Any]] = []
        if self.path.is_file():
            try:
                self.jobs = json.loads(self.path.read_text(encoding="utf-8"))["jobs"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise InputError(f"unreadable batch state ({e}); its jobs may still run: check them in the "
                                 "providers' consoles before deleting it", self.path) from None

    def save(self) -> None:
        atomic_write_json(self.path, {"jobs": self.jobs})

    def open_jobs(self) -> list[dict[str, Any]]:
        return [j for j in self.jobs if j["status"] in ("submitting", "submitted")]

    def in_flight(self) -> set[str]:
        return {cid for j in self.open_jobs() for cid in j["call_ids"]}


async def run_batch(engine: Engine, pending: list[tuple[Instance, Call]]) -> None:
    """Answer every pending call through batch jobs (see the module docstring)."""
    cfg = engine.cfg
    state = BatchState(engine.journal.calls.path.parent)
    by_id = {call.call_id: (inst, call) for inst, call in pending}
    for inst in engine.plan.instances:  # calls of open jobs may be outside this run's scope
        for call in inst.calls.values():
            by_id.setdefault(call.call_id, (inst, call))
    await _recover(engine, state)
    for job in state.open_jobs():  # jobs of an earlier process still count against the budget
        engine.budget.hold(float(job.get("reserved_usd") or 0.0))
    rounds = 0
    while True:
        if rounds <= cfg.max_requeues and not engine.aborted:
            todo = [(i, c) for i, c in pending
                    if not engine.journal.done(c.call_id) and c.call_id not in state.in_flight()]
            await _submit(engine, state, todo)
        open_jobs = [j for j in state.open_jobs() if j["status"] == "submitted"]
        if not open_jobs:
            break
        await _collect(engine, state, open_jobs, by_id)
        rounds += 1


async def _recover(engine: Engine, state: BatchState) -> None:
    """Adopt jobs created by a process that died before saving their id; drop the rest."""
    changed = False
    for job in state.jobs:
        if job["status"] != "submitting":
            continue
        client = engine.clients.get(job["variant"])
        if client is None:
            continue
        if isinstance(client, OpenAIChatClient):
            found = await client.find_batch({"mvbench_job": job["token"]})
        else:
            found = await client.find_batch(job["token"])
        if found:
            job["job_id"], job["status"] = found, "submitted"
            log.info("adopted batch job %s (created before the last run stopped)", found)
        else:
            job["status"] = "abandoned"
        changed = True
    if changed:
        state.save()


def _request_bytes(req) -> int:
    if req.messages is not None:
        return len(json.dumps(req.messages, allow_nan=False))
    return sum(len(p.data) * 4 // 3 if hasattr(p, "data") else len(p) for t in req.turns for p in t.parts)


async def _submit(engine: Engine, state: BatchState, todo: list[tuple[Instance, Call]]) -> None:
    """Answer cache hits, then submit the rest in jobs of bounded size, per writer."""
    cfg = engine.cfg
    for writer in cfg.writers:
        client = engine.clients[writer.variant]
        mine = [(i, c) for i, c in todo if c.writer.variant == writer.variant]
        limit = cfg.batch_max_bytes
        chunk: list[tuple[Call, Any]] = []
        size = 0
        reserved = 0.0
        for inst, call in mine:
            if engine.budget.exhausted or engine.aborted:
                break
            try:
                req = await asyncio.to_thread(engine.builder.build, inst, call)
            except MvbenchError as e:  # an unreadable frame: this call fails, the others go on
                await engine.failed(call, f"{type(e).__name__}: {e}")
                continue
            hit = client.cache.get(req.cache_key) if req.cache_key is not None else None
            if hit is not None:
                await engine.succeeded(call, Completion(hit, Usage(), cached=True, attempts=0), "cache")
                continue
            cost = upper_bound_cost(engine.prices, writer, call.est_input_tokens, cfg.max_tokens, batch=True)
            if not engine.budget.reserve(cost):
                break
            reserved += cost
            chunk.append((call, req))
            size += _request_bytes(req)
            if len(chunk) >= cfg.batch_max_requests or size >= limit:
                await _create_job(engine, state, writer.variant, chunk, reserved)
                chunk, size, reserved = [], 0, 0.0
        if chunk:
            await _create_job(engine, state, writer.variant, chunk, reserved)


async def _create_job(engine: Engine, state: BatchState, variant: str, chunk: list[tuple[Call, Any]],
                      reserved: float) -> None:
    client = engine.clients[variant]
    token = f"mvbench-{uuid.uuid4().hex[:16]}"
    job = {"token": token, "variant": variant, "model": chunk[0][0].writer.model, "job_id": None,
           "status": "submitting", "call_ids": [c.call_id for c, _ in chunk],
           "keys": {c.call_id: r.cache_key for c, r in chunk}, "reserved_usd": reserved}
    state.jobs.append(job)
    state.save()  # before the job exists: a restart looks it up by token
    try:
        if isinstance(client, OpenAIChatClient):
            lines = [client.batch_line(c.call_id, r.messages, **r.params) for c, r in chunk]
            job_id = await client.submit_batch(lines, {"mvbench_job": token})
        else:
            reqs = [client.batch_request(c.call_id, r.turns, system=r.system, **r.params) for c, r in chunk]
            job_id = await client.submit_batch(reqs, token, inline_limit_bytes=engine.cfg.gemini_inline_bytes)
    except MvbenchError as e:
        job["status"] = "abandoned"
        state.save()
        engine.budget.settle(reserved, 0.0)
        for call, _ in chunk:
            await engine.failed(call, f"batch submission failed: {e}")
        return
    job["job_id"], job["status"] = job_id, "submitted"
    state.save()
    log.info("submitted %s batch job %s with %d requests", variant, job_id, len(chunk))


async def _collect(engine: Engine, state: BatchState, jobs: list[dict[str, Any]],
                   by_id: dict[str, tuple[Instance, Call]]) -> None:
    """Poll the jobs until each is terminal, then read and journal their results."""
    waiting = list(jobs)
    while waiting:
        still = []
        for job in waiting:
            client = engine.clients.get(job["variant"])
            if client is None:
                continue
            status = await client.batch_status(job["job_id"])
            if not status.done:
                still.append(job)
                continue
            results = await client.batch_results(status) if status.state != "failed" else []
            seen: set[str] = set()
            spent = 0.0
            for item in results:
                if item.custom_id not in job["call_ids"] or item.custom_id in seen:
                    continue
                seen.add(item.custom_id)
                _, call = by_id.get(item.custom_id, (None, None))
                if call is None:
                    continue
                if item.ok:
                    cost = await engine.succeeded(call, item.completion, "batch", job["keys"].get(item.custom_id))
                    spent += cost or 0.0
                else:
                    await engine.failed(call, f"batch {job['job_id']}: {item.error}")
            for cid in job["call_ids"]:
                if cid not in seen and cid in by_id and not engine.journal.done(cid):
                    why = status.error or f"no result (job {status.state})"
                    await engine.failed(by_id[cid][1], f"batch {job['job_id']}: {why}")
            job["status"], job["final_state"] = "collected", status.state
            engine.budget.settle(float(job.get("reserved_usd") or 0.0), spent)
            state.save()
        waiting = still
        if waiting:
            await asyncio.sleep(engine.cfg.poll_interval_s)
