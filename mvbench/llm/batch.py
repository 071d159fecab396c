"""Types the clients' batch modes share (OpenAI Batch API, Gemini batch mode).

A batch job is submitted once, polled, and read back as per-request results keyed by the
``custom_id`` given at submission (the OpenAI ``custom_id``, the Gemini ``metadata.key``). Results
arrive unordered and partly failed: every request is either a :class:`BatchItemResult` with a
:class:`~mvbench.llm.retry.Completion`, or one with an error to requeue. Requests of a job that
expired or was cancelled before running come back as errors, or not at all: the caller treats a
submitted id without a result as failed.

Creating a job is the one request that is never retried: if the reply is lost (a timeout, a 5xx)
the job may exist and be billed, and a second attempt would create a second one. The clients raise
:class:`BatchCreateError` instead, saying whether the job may exist; the caller then looks it up
by the token it gave the job (``find_batch``) before submitting anything again.

Provider states map onto :data:`STATES`: ``pending`` and ``running`` are not done; ``succeeded``,
``failed``, ``expired`` and ``cancelled`` are terminal. An expired or cancelled job may still hold
results for the requests that finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mvbench.errors import ServerError
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


class BatchCreateError(ServerError):
    """Creating a batch job failed (one attempt, never retried).

    Args:
        message: what failed (masked like every :class:`~mvbench.errors.ServerError`).
        maybe_created: True when the server may have created the job anyway (a timeout, a lost
            connection, a 5xx): look it up by its token before submitting its requests again.
            False when the server refused the request (a 4xx): no job exists.
    """

    def __init__(self, message: str, maybe_created: bool):
        super().__init__(message)
        self.maybe_created = maybe_created


def create_may_have_happened(error: ServerError, is_retryable) -> bool:
    """Whether a failed creation may still have created the job: a timeout, a lost connection or any
    error its client would retry (5xx, 429, a garbled reply), as opposed to a refusal (4xx)."""
    cause = error.__cause__
    if cause is None or isinstance(cause, TimeoutError):
        return True
    return bool(is_retryable(cause))
