"""Bounded retries with exponential backoff and full jitter, shared by the LLM clients.

A 429 or 503 that says how long to wait is obeyed: the wait before the next attempt is the
server's hint (``retry-after-ms``, then ``retry-after`` as seconds or an HTTP date, as the OpenAI
SDK reads them; for Gemini also ``RetryInfo.retryDelay`` in the error body), capped at
:attr:`RetryPolicy.max_retry_after_s`, instead of our own jittered backoff.

Every call also reports what it cost: :class:`Completion` carries the text, the token
:class:`Usage` the server reported, whether it came from the cache, and how many attempts it took.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import logging
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, TypeVar

from mvbench.errors import ServerError
from mvbench.redact import redact, register_secret, register_url_secrets, safe_url

T = TypeVar("T")
log = logging.getLogger(__name__)
RETRY_AFTER_STATUSES = (429, 503)


@dataclass
class Usage:
    """Tokens one call (or a sum of calls) was billed for.

    Args:
        input_tokens: prompt tokens, images included (OpenAI ``prompt_tokens``, Gemini
            ``promptTokenCount``).
        output_tokens: generated tokens, thinking included (OpenAI ``completion_tokens``, Gemini
            ``candidatesTokenCount + thoughtsTokenCount``).
    """

    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)

    def to_dict(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "Usage":
        d = d or {}
        return cls(int(d.get("input_tokens") or 0), int(d.get("output_tokens") or 0))


@dataclass
class Completion:
    """One answer and what it cost.

    Args:
        text: the answer ('' if the model returned none).
        usage: tokens billed for it (zero for a cache hit).
        cached: answered from the response cache (no request sent).
        attempts: requests sent for it (0 for a cache hit; > 1 after retries).
        finish_reason: the provider's finish reason, when known.
    """

    text: str
    usage: Usage = field(default_factory=Usage)
    cached: bool = False
    attempts: int = 1
    finish_reason: str | None = None


class EmptyAnswerError(ValueError):
    """A 200 reply without text, raised only when the caller asked for retries on empty answers."""


@dataclass
class RetryStats:
    """What :func:`call_with_retries` did: attempts made and server-requested waits."""

    attempts: int = 0
    retry_after_waits: list[float] = field(default_factory=list)


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from response headers, as the OpenAI SDK reads them.

    ``retry-after-ms`` (milliseconds) first, then ``retry-after`` as seconds (a number) or as an
    HTTP date (seconds from now, never negative).

    Args:
        headers: response headers (case-insensitive mapping, or a plain dict).

    Returns:
        The wait in seconds, or None when no usable header is present.

    >>> parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"})
    1.5
    >>> parse_retry_after({"Retry-After": "7"})
    7.0
    >>> parse_retry_after({"retry-after": "soon"}) is None
    True
    """
    if not headers:
        return None
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def parse_retry_delay(body: object) -> float | None:
    """Seconds from a Google error body's ``RetryInfo.retryDelay`` (``"31s"`` or ``{seconds, nanos}``).

    >>> parse_retry_delay({"error": {"code": 429, "details": [
    ...     {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "31s"}]}})
    31.0
    >>> parse_retry_delay({"error": {"code": 500}}) is None
    True
    """
    error = body.get("error", body) if isinstance(body, Mapping) else None
    details = error.get("details") if isinstance(error, Mapping) else None
    if not isinstance(details, list):
        return None
    for item in details:
        if not isinstance(item, Mapping) or not str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            continue
        delay = item.get("retryDelay", item.get("retry_delay"))
        if isinstance(delay, str):
            m = _DURATION.match(delay)
            if m:
                return float(m.group(1))
        elif isinstance(delay, Mapping):
            return float(delay.get("seconds") or 0) + float(delay.get("nanos") or 0) / 1e9
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a failing call.

    Args:
        max_retries: retries after the first attempt (0 = one attempt only).
        base_delay_s: the first backoff; attempt ``k`` waits up to ``base * 2**k``.
        max_delay_s: cap on one backoff.
        timeout_s: hard bound on one attempt (the SDK's own timeout should be a bit lower).
        max_retry_after_s: cap on a server-requested wait (``Retry-After``, ``retryDelay``).
    """

    max_retries: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    timeout_s: float = 120.0
    max_retry_after_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.max_retry_after_s < 0:
            raise ValueError(f"max_retry_after_s must be >= 0, got {self.max_retry_after_s}")

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
    retry_after: Callable[[BaseException], float | None] | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    stats: RetryStats | None = None,
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
        retry_after: the server's requested wait for an error, in seconds (None: no hint). A hint
            replaces the backoff, capped at ``policy.max_retry_after_s``.
        sleep: the sleep used between attempts (tests record the waits with it).
        stats: filled with the attempt count and the server-requested waits.

    Returns:
        The first successful result.

    Raises:
        ServerError: naming ``what``, the attempt count and the last error (secrets masked).
    """
    rng = rng or random.Random()
    stats = stats if stats is not None else RetryStats()
    attempts = policy.max_retries + 1
    for attempt in range(attempts):
        stats.attempts += 1
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
            hint = retry_after(exc) if retry_after is not None else None
            if hint is not None:
                delay = min(hint, policy.max_retry_after_s)
                stats.retry_after_waits.append(delay)
                log.debug("%s: the server asks to wait %.3gs (waiting %.3gs)", what, hint, delay)
            else:
                delay = policy.backoff(attempt, rng)
            await sleep(delay)
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
        max_retry_after_s: cap on a server-requested wait (429/503 ``Retry-After``).
    """

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 120.0
    max_retries: int = 5
    concurrency: int = 16
    retry_base_delay_s: float = 1.0
    retry_max_delay_s: float = 30.0
    max_retry_after_s: float = 60.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        register_secret(self.api_key)
        register_url_secrets(self.base_url)

    def policy(self) -> RetryPolicy:
        """The retry policy these options imply."""
        return RetryPolicy(max_retries=self.max_retries, base_delay_s=self.retry_base_delay_s,
                           max_delay_s=self.retry_max_delay_s, timeout_s=self.timeout_s,
                           max_retry_after_s=self.max_retry_after_s)


@dataclass
class ClientCounters:
    """What one client did since it was made: the numbers behind a cost summary."""

    calls: int = 0
    cache_hits: int = 0
    requests_sent: int = 0
    retries: int = 0
    failed: int = 0
    usage: Usage = field(default_factory=Usage)


class RetryingClient:
    """What the OpenAI and Gemini clients share: bounded concurrency, retries and the optional cache.

    Subclasses set ``provider`` and ``where_default``, implement :meth:`retry_after` for their
    SDK's errors, and call :meth:`_cached_call` with one attempt function per request (it returns
    a :class:`Completion`).
    """

    provider: str = ""
    where_default: str = ""

    def __init__(self, model: str, options: ClientOptions, cache=None):
        self.model = model
        self.options = options
        self.base_url = options.base_url
        # the endpoint as messages may show it (credentials stripped), computed once: it names every call
        self.where = safe_url(options.base_url) if options.base_url else self.where_default
        self.cache = cache
        self.policy = options.policy()
        self._semaphore = asyncio.Semaphore(options.concurrency)
        self._rng = random.Random()
        self.counters = ClientCounters()
        self.sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep  # tests record waits here

    def retry_after(self, exc: BaseException) -> float | None:
        """The wait a failed attempt's server asked for (subclasses read their SDK's errors)."""
        return None

    async def with_retries(self, attempt: Callable[[], Awaitable[T]], is_retryable: Callable[[BaseException], bool],
                           what: str, limit: bool = True, retry: bool = True) -> T:
        """Run one non-generation request (file upload, batch poll ...) with this client's retries.

        Args:
            retry: False for a request that must not be sent twice (creating a batch job): one
                attempt, its error raised as a ServerError whose ``__cause__`` is the original.
        """
        stats = RetryStats()
        policy = self.policy if retry else dataclasses.replace(self.policy, max_retries=0)
        try:
            return await call_with_retries(attempt, policy=policy, is_retryable=is_retryable,
                                           what=f"{what} at {self.where}",
                                           rng=self._rng, limiter=self._semaphore if limit else None,
                                           retry_after=self.retry_after, sleep=self.sleep, stats=stats)
        finally:
            self.counters.retries += max(0, stats.attempts - 1)

    async def _cached_call(self, key: str | None, attempt: Callable[[], Awaitable[Completion]],
                           is_retryable: Callable[[BaseException], bool], uid: str | None,
                           sample_index: int | None) -> Completion:
        """Answer from the cache under ``key``, else run ``attempt`` with retries and store the answer."""
        self.counters.calls += 1
        if key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.counters.cache_hits += 1
                return Completion(hit, Usage(), cached=True, attempts=0)
        started = time.monotonic()
        stats = RetryStats()

        async def counted() -> Completion:
            self.counters.requests_sent += 1
            return await attempt()

        try:
            done = await call_with_retries(counted, policy=self.policy, is_retryable=is_retryable,
                                           what=self._describe(uid, sample_index), rng=self._rng,
                                           limiter=self._semaphore, retry_after=self.retry_after,
                                           sleep=self.sleep, stats=stats)
        except ServerError:
            self.counters.failed += 1
            raise
        finally:
            self.counters.retries += max(0, stats.attempts - 1)
        done.attempts = stats.attempts
        self.counters.usage = self.counters.usage + done.usage
        if key is not None:  # the cache fsyncs: off the event loop, awaited before the answer is used
            await asyncio.to_thread(self.store, key, done, uid, sample_index, time.monotonic() - started)
        return done

    def store(self, key: str, completion: Completion, uid: str | None, sample_index: int | None,
              latency_s: float | None = None, via: str = "live") -> bool:
        """Put an answer into the cache with its provenance (usage included); empty ones are skipped."""
        if self.cache is None:
            return False
        meta = {"provider": self.provider, "model": self.model, "uid": uid, "sample_index": sample_index,
                "usage": completion.usage.to_dict(), "via": via}
        if latency_s is not None:
            meta["latency_s"] = round(latency_s, 3)
        return self.cache.put(key, completion.text, meta)

    def _describe(self, uid: str | None, sample_index: int | None) -> str:
        sample = f" (sample {sample_index})" if sample_index is not None else ""
        return redact(f"request {uid or '<no uid>'}{sample} to {self.model} at {self.where}")
