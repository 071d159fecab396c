"""Batch mode: pending calls go to the OpenAI Batch API and Gemini batch mode (about half the price).

Jobs are recorded in ``OUT/.generation/batches.json`` (atomic writes), so a killed process
collects the same jobs on restart instead of paying twice:

1. before a job is created, an entry ``submitting`` is saved with a fresh token and, per call,
   its id, instance uid and cache key (and the job's writer slot and model); the token goes into
   the job (OpenAI ``metadata.mvbench_job``, Gemini ``display_name``);
2. the create request is sent once, never retried. Once created, the job id is saved
   (``submitted``) before any polling. If the create request fails, the job is looked up by its
   token: found, it is adopted; refused by the server (a 4xx), the entry is ``abandoned`` and its
   calls go out again; otherwise (a timeout, a 5xx: the job may exist) it stays ``submitting``;
3. on restart, a ``submitting`` entry is looked up by its token (the process may have died between
   creating the job and saving its id): found, it is adopted; not found, it is dropped and its calls
   go out again;
4. ``submitted`` jobs are polled until terminal, then read back: results are keyed by call id
   (order is not guaranteed). Every answer is journalled and cached under the call id, uid and
   writer the job entry recorded, whatever this run's scope or options (a rerun with
   ``--tasks RC`` still keeps the DVC answers an earlier run's jobs paid for); answers already in
   the journal are not journalled again. Failed and missing lines are logged and requeued in a
   new job, each call at most ``max_requeues`` times per run (the rest on the next run). Batch
   failures never count toward the live "failures in a row" abort.

Calls already answered in the response cache are journalled before anything is submitted.
``--budget-usd``: each instance reserves the upper-bound cost of its calls at batch prices,
both writers together (so a capped run never pays one writer's answers without the other's),
before its calls join their writers' jobs. Money reserved beyond the actual cost comes back when a
job is collected, and the next round submits what it can pay for; the run stops at the cap only
when an instance does not fit with no job in flight.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvbench.dataset_io import atomic_write_json
from mvbench.errors import InputError, MvbenchError
from mvbench.llm.batch import BatchCreateError
from mvbench.llm.retry import Completion, Usage

from mvbench.generation.accounting import upper_bound_cost
from mvbench.generation.config import Writer
from mvbench.generation.engine import Engine
from mvbench.generation.plan import Call, Instance
from mvbench.generation.requests import Request, find_job, submit_job

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
                raise InputError(f"unreadable batch state ({e}): repair the file by hand (it lists jobs that "
                                 "may still run and are paid for: their ids and tokens are in it, and in the "
                                 "providers' consoles); do not delete it", self.path) from None

    def save(self) -> None:
        atomic_write_json(self.path, {"jobs": self.jobs})

    def open_jobs(self) -> list[dict[str, Any]]:
        return [j for j in self.jobs if j["status"] in ("submitting", "submitted")]

    def in_flight(self) -> set[str]:
        return {cid for j in self.open_jobs() for cid in j["call_ids"]}


@dataclass
class _Chunk:
    """The calls of one writer waiting to become a job."""

    calls: list[Call] = field(default_factory=list)
    items: list[Any] = field(default_factory=list)
    keys: dict[str, str | None] = field(default_factory=dict)
    size: int = 0
    reserved: float = 0.0


def _job_call(engine: Engine, job: dict[str, Any], call_id: str) -> Call:
    """The call a job entry recorded (uid, writer slot, model), independent of this run's plan."""
    variant = job["variant"]
    writer = next((w for w in engine.cfg.writers if w.variant == variant), None)
    provider = job.get("provider") or (writer.provider if writer else "openai")
    uid = (job.get("uids") or {}).get(call_id) or ""
    return Call(call_id, uid, Writer(variant, provider, job["model"], writer.base_url if writer else None), 0, 0, 0)


async def run_batch(engine: Engine, pending: list[tuple[Instance, Call]]) -> None:
    """Answer every pending call through batch jobs (see the module docstring)."""
    cfg = engine.cfg
    state = BatchState(engine.journal.state_dir)
    await _recover(engine, state)
    for job in state.open_jobs():  # jobs of an earlier process still count against the budget
        engine.budget.hold(float(job.get("reserved_usd") or 0.0))
    submissions: dict[str, int] = {}  # call id -> jobs it went into in this run
    while True:
        if not engine.aborted and not engine.budget.exhausted:
            in_flight = state.in_flight()
            todo = [(i, c) for i, c in pending
                    if not engine.journal.done(c.call_id) and c.call_id not in in_flight
                    and submissions.get(c.call_id, 0) <= cfg.max_requeues]
            if todo:
                await _submit(engine, state, todo, submissions)
        open_jobs = [j for j in state.open_jobs() if j["status"] == "submitted"]
        if not open_jobs:
            break
        await _collect(engine, state, open_jobs)


async def _recover(engine: Engine, state: BatchState) -> None:
    """Adopt jobs created by a process that died before saving their id; drop the rest."""
    changed = False
    for job in state.jobs:
        if job["status"] != "submitting":
            continue
        found = await find_job(engine.clients[job["variant"]], job["token"])
        if found:
            job["job_id"], job["status"] = found, "submitted"
            log.info("adopted batch job %s (created before the last run stopped)", found)
        else:
            job["status"] = "abandoned"
        changed = True
    if changed:
        state.save()


async def _submit(engine: Engine, state: BatchState, todo: list[tuple[Instance, Call]],
                  submissions: dict[str, int]) -> None:
    """Answer cache hits, then put the rest into jobs of bounded size per writer, instance by instance."""
    cfg = engine.cfg
    chunks = {w.variant: _Chunk() for w in cfg.writers}
    by_instance: dict[str, tuple[Instance, list[Call]]] = {}
    for inst, call in todo:
        by_instance.setdefault(inst.template.uid, (inst, []))[1].append(call)
    for inst, calls in by_instance.values():
        if engine.aborted:
            break
        ready: list[tuple[Call, Request, float]] = []
        for call in calls:
            client = engine.clients[call.writer.variant]
            try:
                req = await asyncio.to_thread(engine.builder.build, inst, call)
            except MvbenchError as e:  # an unreadable frame: this call fails, the others go on
                await engine.failed(call, f"{type(e).__name__}: {e}", streak=False)
                continue
            hit = client.cache.get(req.cache_key) if req.cache_key is not None else None
            if hit is not None:
                await engine.succeeded(call, Completion(hit, Usage(), cached=True, attempts=0), "cache")
                continue
            cost = upper_bound_cost(engine.prices, call.writer, call.est_input_tokens, cfg.max_tokens, batch=True)
            ready.append((call, req, cost))
        if not ready:
            continue
        need = sum(cost for _, _, cost in ready)
        if not engine.budget.reserve(need):  # both writers' calls of an instance, or neither
            if not engine.budget.in_flight:  # nothing will come back: the cap is reached
                engine.budget.stop()
            break  # what is in flight is collected first; the next round goes on with what it frees
        for call, req, cost in ready:
            chunk = chunks[call.writer.variant]
            item, size = req.batch_item(engine.clients[call.writer.variant])
            chunk.calls.append(call)
            chunk.items.append(item)
            chunk.keys[call.call_id] = req.cache_key
            chunk.size += size
            chunk.reserved += cost
            if len(chunk.calls) >= cfg.batch_max_requests or chunk.size >= cfg.batch_max_bytes:
                await _create_job(engine, state, call.writer.variant, chunk, submissions)
                chunks[call.writer.variant] = _Chunk()
    for variant, chunk in chunks.items():
        if chunk.calls:
            await _create_job(engine, state, variant, chunk, submissions)


async def _create_job(engine: Engine, state: BatchState, variant: str, chunk: _Chunk,
                      submissions: dict[str, int]) -> None:
    client = engine.clients[variant]
    writer = chunk.calls[0].writer
    token = f"mvbench-{uuid.uuid4().hex[:16]}"
    job = {"token": token, "variant": variant, "provider": writer.provider, "model": writer.model,
           "job_id": None, "status": "submitting", "call_ids": [c.call_id for c in chunk.calls],
           "uids": {c.call_id: c.uid for c in chunk.calls}, "keys": chunk.keys, "reserved_usd": chunk.reserved}
    state.jobs.append(job)
    state.save()  # before the job exists: a restart looks it up by token
    for call in chunk.calls:
        submissions[call.call_id] = submissions.get(call.call_id, 0) + 1
    try:
        job_id = await submit_job(client, chunk.items, token, engine.cfg.gemini_inline_bytes)
    except MvbenchError as e:
        maybe_created = isinstance(e, BatchCreateError) and e.maybe_created
        found = None
        if maybe_created:  # the reply was lost, not necessarily the job: look before paying again
            try:
                found = await find_job(client, token)
            except MvbenchError as lookup:
                log.warning("could not look up batch job %s after its creation failed: %s", token, lookup)
        if found:
            job_id = found
            log.info("batch job %s was created although its creation reported an error: adopted", found)
        elif maybe_created:
            # it may exist and run: keep it open (its calls are not sent again, its reservation is
            # held); the next run looks it up by its token before anything goes out again
            log.warning("the creation of a %s batch job failed and the job was not found (yet): its %d calls "
                        "wait for the next run, which looks it up by its token %s first (%s)", variant,
                        len(chunk.calls), token, e)
            return
        else:
            job["status"] = "abandoned"
            state.save()
            engine.settle(chunk.reserved, 0.0)
            for call in chunk.calls:
                await engine.failed(call, f"batch submission failed: {e}", streak=False)
            return
    job["job_id"], job["status"] = job_id, "submitted"
    state.save()
    log.info("submitted %s batch job %s with %d requests", variant, job_id, len(chunk.calls))


async def _collect(engine: Engine, state: BatchState, jobs: list[dict[str, Any]]) -> None:
    """Poll the jobs until each is terminal, then read and journal their results."""
    waiting = list(jobs)
    while waiting:
        still = []
        for job in waiting:
            client = engine.clients[job["variant"]]
            status = await client.batch_status(job["job_id"])
            if not status.done:
                still.append(job)
                continue
            results = await client.batch_results(status) if status.state != "failed" else []
            seen: set[str] = set()
            spent = 0.0
            ids = set(job["call_ids"])
            for item in results:
                if item.custom_id not in ids or item.custom_id in seen:
                    continue
                seen.add(item.custom_id)
                if engine.journal.done(item.custom_id):  # a job collected before, partly journalled
                    continue
                call = _job_call(engine, job, item.custom_id)
                if item.ok:
                    cost = await engine.succeeded(call, item.completion, "batch", job["keys"].get(item.custom_id),
                                                  client=client)
                    spent += cost or 0.0
                else:
                    await engine.failed(call, f"batch {job['job_id']}: {item.error}", streak=False)
            for cid in job["call_ids"]:
                if cid not in seen and not engine.journal.done(cid):
                    why = status.error or f"no result (job {status.state})"
                    await engine.failed(_job_call(engine, job, cid), f"batch {job['job_id']}: {why}", streak=False)
            job["status"], job["final_state"] = "collected", status.state
            engine.settle(float(job.get("reserved_usd") or 0.0), spent)
            state.save()
        waiting = still
        if waiting:
            await asyncio.sleep(engine.cfg.poll_interval_s)
