"""Batch jobs of the fake servers: a state machine advanced by polls, with scripted outcomes.

A job starts ``pending``; the first poll makes it ``running``; after ``polls`` more polls (and once
``gate`` is set, if one is given) it finishes with its scripted outcome:

- ``"complete"``: every line is answered through the server's :meth:`FakeServer.answer_once`
  (so the server's ``script`` / ``fail_rate`` make single lines fail);
- ``"expire"``: only the first half of the lines ran; the rest come back as expired;
- ``"fail"``: validation failed; nothing ran, a job-level error is reported.

Outcomes are taken from ``outcomes`` in job-creation order, then ``"complete"``.

``create_faults`` script the create requests themselves, in arrival order (then ``"ok"``):
``"lose"`` creates the job and then answers 500 (the reply is lost: the job exists and runs),
``"refuse"`` answers 500 without creating anything. Every create request is counted in
``server.stats.batch_create_requests``; created jobs in ``batch_creates``.
"""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import dataclass, field

OUTCOMES = ("complete", "expire", "fail")
CREATE_FAULTS = ("ok", "lose", "refuse")


@dataclass
class LineResult:
    """One request's result: ``ok`` with its text, or an error (``ran`` False: never executed)."""

    custom_id: str
    body: dict
    ok: bool
    text: str = ""
    error: str = ""
    ran: bool = True


@dataclass
class FakeBatchJob:
    """One job: its requests (``custom_id``, body), labels and state."""

    job_id: str
    lines: list[tuple[str, dict]]
    outcome: str
    labels: dict = field(default_factory=dict)
    state: str = "pending"
    polls: int = 0
    results: list[LineResult] | None = None
    created: int = 0


class BatchEngine:
    """The jobs of one fake server.

    Args:
        server: the owning :class:`~tests.servers.base.FakeServer` (answers lines, counts them).
        polls: polls a job stays ``running`` before finishing.
        gate: if given, jobs finish only once it is set.
        outcomes: scripted outcomes per job, in creation order.
        seed: shuffles output order (results are keyed by id, never by position).
        create_faults: scripted faults of the create requests, in arrival order (see the module docstring).
    """

    def __init__(self, server, polls: int = 1, gate: threading.Event | None = None,
                 outcomes: list[str] | tuple[str, ...] = (), seed: int = 0,
                 create_faults: list[str] | tuple[str, ...] = ()):
        bad = [o for o in outcomes if o not in OUTCOMES] + [f for f in create_faults if f not in CREATE_FAULTS]
        if bad:
            raise ValueError(f"unknown batch outcomes or create faults {bad}; known: {OUTCOMES}, {CREATE_FAULTS}")
        self.create_faults = list(create_faults)
        self._create_requests = 0
        self.server = server
        self.polls = polls
        self.gate = gate
        self.outcomes = list(outcomes)
        self.jobs: dict[str, FakeBatchJob] = {}
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._rng = random.Random(seed)

    def create_fault(self) -> str:
        """Count one create request and return its scripted fault (``"ok"`` when none is left)."""
        with self._lock:
            n = self._create_requests
            self._create_requests += 1
            self.server.stats.batch_create_requests += 1
            return self.create_faults[n] if n < len(self.create_faults) else "ok"

    def create(self, lines: list[tuple[str, dict]], labels: dict, prefix: str) -> FakeBatchJob:
        """Register a job (counted in ``server.stats.batch_creates``)."""
        with self._lock:
            n = next(self._counter)
            outcome = self.outcomes[n - 1] if n - 1 < len(self.outcomes) else "complete"
            job = FakeBatchJob(f"{prefix}{n}", list(lines), outcome, dict(labels), created=n)
            self.jobs[job.job_id] = job
            self.server.stats.batch_creates += 1
        return job

    def poll(self, job: FakeBatchJob) -> FakeBatchJob:
        """Advance a job by one poll."""
        with self._lock:
            job.polls += 1
            if job.state == "pending":
                job.state = "running"
                return job
            if job.state != "running":
                return job
            if job.polls <= self.polls or (self.gate is not None and not self.gate.is_set()):
                return job
            if job.outcome == "fail":
                job.state, job.results = "failed", []
                return job
        results = []
        cut = len(job.lines) // 2 if job.outcome == "expire" else len(job.lines)
        for i, (cid, body) in enumerate(job.lines):
            if i >= cut:
                results.append(LineResult(cid, body, ok=False, error="batch_expired", ran=False))
                continue
            ok, text = self.server.answer_once(body)
            results.append(LineResult(cid, body, ok=ok, text=text if ok else "",
                                      error="" if ok else text))
        self._rng.shuffle(results)  # unordered, as the real APIs
        with self._lock:
            job.results = results
            job.state = "expired" if job.outcome == "expire" else "succeeded"
        return job

    def cancel(self, job: FakeBatchJob) -> None:
        with self._lock:
            if job.state in ("pending", "running"):
                job.state, job.results = "cancelled", [
                    LineResult(cid, body, ok=False, error="batch_cancelled", ran=False) for cid, body in job.lines]
