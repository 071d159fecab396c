"""Bounded retries with exponential backoff and full jitter, shared by the LLM clients."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

from mvbench.errors import ServerError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a failing call.

    Args:
        max_retries: retries after the first attempt (0 = one attempt only).
        base_delay_s: the first backoff; attempt ``k`` waits up to ``base * 2**k``.
        max_delay_s: cap on one backoff.
        timeout_s: hard bound on one attempt (the SDK's own timeout should be a bit lower).
    """

    max_retries: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay before retry number ``attempt`` (0-based): full jitter in [base/2, cap]."""
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** attempt))
        return cap / 2 + rng.random() * cap / 2


async def call_with_retries(
    attempt_fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    is_retryable: Callable[[BaseException], bool],
    what: str,
    rng: random.Random | None = None,
    limiter: asyncio.Semaphore | None = None,
) -> T:
    """Run ``attempt_fn`` until it succeeds, a non-retryable error occurs or retries run out.

    Args:
        attempt_fn: makes one fresh attempt (called again on each retry).
        policy: retry counts, delays and the per-attempt timeout.
        is_retryable: whether an exception is transient (5xx, 429, timeout, connection, bad JSON).
        what: names the request and sample in the error, e.g. ``"request abc (sample 0) to gpt-4.1"``.
        rng: jitter source (a fresh unseeded one by default).
        limiter: bounds attempts in flight. It is taken before the attempt's timeout starts, so
            time spent queueing never counts as a timeout, and released during backoff sleeps.

    Returns:
        The first successful result.

    Raises:
        ServerError: naming ``what``, the attempt count and the last error.
    """
    rng = rng or random.Random()
    attempts = policy.max_retries + 1
    for attempt in range(attempts):
        try:
            if limiter is None:
                return await asyncio.wait_for(attempt_fn(), timeout=policy.timeout_s)
            async with limiter:
                return await asyncio.wait_for(attempt_fn(), timeout=policy.timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # classified below; anything unknown is not retried
            if isinstance(exc, asyncio.TimeoutError):
                exc_text = f"timed out after {policy.timeout_s:g}s"
                retryable = True
            else:
                exc_text = f"{type(exc).__name__}: {exc}"
                retryable = is_retryable(exc)
            if not retryable:
                raise ServerError(f"{what}: failed with a non-retryable error: {exc_text}") from exc
            if attempt + 1 == attempts:
                raise ServerError(f"{what}: failed after {attempts} attempts; last error: {exc_text}") from exc
            await asyncio.sleep(policy.backoff(attempt, rng))
    raise AssertionError("unreachable")
