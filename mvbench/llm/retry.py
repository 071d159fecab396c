"""Bounded retries with exponential backoff and full jitter, shared by the LLM clients."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class ClientOptions:
    """How an LLM client reaches its server: the options the OpenAI and Gemini clients share.

    Args:
        base_url: another endpoint (a local vLLM, a fake server); None for the provider's own.
        api_key: the key; None reads the provider's environment variable (``"EMPTY"`` with a
            ``base_url``). Never logged or cached.
        timeout_s: bound on one attempt.
        max_retries: retries after the first attempt.
        concurrency: most requests in flight at once.
        retry_base_delay_s: first backoff delay (doubles per retry, with jitter).
        retry_max_delay_s: cap on one backoff delay.
    """

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 120.0
    max_retries: int = 5
    concurrency: int = 16
    retry_base_delay_s: float = 1.0
    retry_max_delay_s: float = 30.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")

    def policy(self) -> RetryPolicy:
        """The retry policy these options imply."""
        return RetryPolicy(max_retries=self.max_retries, base_delay_s=self.retry_base_delay_s,
                           max_delay_s=self.retry_max_delay_s, timeout_s=self.timeout_s)


class RetryingClient:
    """What the OpenAI and Gemini clients share: bounded concurrency, retries and the optional cache.

    Subclasses set ``provider`` and ``where_default`` and call :meth:`_cached_call` with one
    attempt function per request.
    """

    provider: str = ""
    where_default: str = ""

    def __init__(self, model: str, options: ClientOptions, cache=None):
        self.model = model
        self.options = options
        self.base_url = options.base_url
        self.cache = cache
        self.policy = options.policy()
        self._semaphore = asyncio.Semaphore(options.concurrency)
        self._rng = random.Random()
        self.requests_sent = 0

    async def _cached_call(self, key: str | None, attempt: Callable[[], Awaitable[str]],
                           is_retryable: Callable[[BaseException], bool], uid: str | None,
                           sample_index: int | None) -> str:
        """Answer from the cache under ``key``, else run ``attempt`` with retries and store the answer."""
        if key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        started = time.monotonic()
        text = await call_with_retries(attempt, policy=self.policy, is_retryable=is_retryable,
                                       what=self._describe(uid, sample_index), rng=self._rng,
                                       limiter=self._semaphore)
        if key is not None:
            self.cache.put(key, text, {"provider": self.provider, "model": self.model, "uid": uid,
                                       "sample_index": sample_index,
                                       "latency_s": round(time.monotonic() - started, 3)})
        return text

    def _describe(self, uid: str | None, sample_index: int | None) -> str:
        where = self.base_url or self.where_default
        sample = f" (sample {sample_index})" if sample_index is not None else ""
        return f"request {uid or '<no uid>'}{sample} to {self.model} at {where}"
