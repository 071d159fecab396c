"""Types the clients' batch modes share (OpenAI Batch API, Gemini batch mode).

A batch job is submitted once, polled, and read back as per-request results keyed by the
``custom_id`` given at submission (the OpenAI ``custom_id``, the Gemini ``metadata.key``). Results
arrive unordered and partly failed: every request is either a :class:`BatchItemResult` with a
:class:`~mvbench.llm.retry.Completion`, or one with an error to requeue. Requests of a job that
expired or was cancelled before running come back as errors too (:meth:`BatchStatus.missing`).

Provider states map onto :data:`STATES`: ``pending`` and ``running`` are not done; ``succeeded``,
``failed``, ``expired`` and ``cancelled`` are terminal. An expired or cancelled job may still hold
results for the requests that finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mvbench.llm.retry import Completion

STATES = ("pending", "running", "succeeded", "failed", "expired", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "expired", "cancelled"})

OPENAI_STATES = {"validating": "pending", "in_progress": "running", "finalizing": "running",
                 "cancelling": "running", "completed": "succeeded", "failed": "failed",
                 "expired": "expired", "cancelled": "cancelled"}
GEMINI_STATES = {"JOB_STATE_UNSPECIFIED": "pending", "JOB_STATE_QUEUED": "pending", "JOB_STATE_PENDING": "pending",
                 "JOB_STATE_RUNNING": "running", "JOB_STATE_SUCCEEDED": "succeeded",
                 "JOB_STATE_FAILED": "failed", "JOB_STATE_CANCELLING": "running",
                 "JOB_STATE_CANCELLED": "cancelled", "JOB_STATE_EXPIRED": "expired",
                 "JOB_STATE_PARTIALLY_SUCCEEDED": "succeeded"}


@dataclass
class BatchStatus:
    """Where a batch job stands.

    Args:
        job_id: the provider's id (``batch_...`` or ``batches/...``).
        state: one of :data:`STATES`.
        raw_state: the provider's own state name.
        error: the job-level error (a failed validation), if any.
        detail: provider fields needed to read results (output/error file ids, inline results).
    """

    job_id: str
    state: str
    raw_state: str
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        """True once the job is in a terminal state."""
        return self.state in TERMINAL


@dataclass
class BatchItemResult:
    """One request's outcome in a finished job: a completion, or an error to requeue."""

    custom_id: str
    completion: Completion | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the request produced a non-empty answer."""
        return self.completion is not None and bool(self.completion.text.strip())
