"""An async OpenAI-compatible chat client (OpenAI, vLLM, any ``/v1/chat/completions`` server).

Built on ``openai.AsyncOpenAI`` with the SDK's own retries off: :mod:`mvbench.llm.retry` owns
retries (exponential backoff with jitter on 5xx, 429, timeouts, connection errors and malformed
JSON; bounded), so the attempt count and the final :class:`~mvbench.errors.ServerError` are ours.
A semaphore bounds in-flight requests; backoff sleeps happen outside it. Requests go through
the SDK's documented generic ``client.post("/chat/completions", cast_to=httpx2.Response, ...)``
and we read ``choices[0].message.content`` from the JSON ourselves, rather than
``chat.completions.create``: that walks every message through the SDK's TypedDict transform and
builds pydantic models of the reply, several ms of CPU per frame-laden request, which capped
client throughput (see ``bench/eval_client.py``). The wire format is the same JSON.

With a :class:`~mvbench.llm.cache.ResponseCache`, answers are keyed by provider, model, the
output-affecting params, a hash of the messages (which embed the images' base64, so the key
covers the image bytes), optional caller parts (e.g. a backend fingerprint) and, for sampled calls
(temperature > 0), the sample index, which is then required.
"""

from __future__ import annotations

import json
import logging
import os

import httpx2
import openai
from openai import AsyncOpenAI

from mvbench.errors import InputError
from mvbench.llm.cache import ResponseCache, canonical_json, sha256_text
from mvbench.llm.retry import ClientOptions, RetryingClient

PROVIDER = "openai-chat"
log = logging.getLogger(__name__)
_RETRY_STATUSES = {408, 409, 429}


def is_retryable_openai(exc: BaseException) -> bool:
    """Transient OpenAI-client errors: connection/timeout, 408/409/429/5xx, unparseable bodies."""
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRY_STATUSES or exc.status_code >= 500
    if isinstance(exc, (openai.APIResponseValidationError, json.JSONDecodeError, MalformedReplyError)):
        return True
    return False


class MalformedReplyError(ValueError):
    """A 200 reply that is not a chat completion (treated as transient, so retried)."""


def answer_text(data: object) -> str:
    """The first choice's text of a chat-completion JSON object.

    Args:
        data: the parsed reply.

    Returns:
        The text ('' when the model returned no content).

    Raises:
        MalformedReplyError: no ``choices[0].message``.
    """
    try:
        message = data["choices"][0]["message"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        raise MalformedReplyError(f"not a chat completion: {str(data)[:200]}") from None
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def finish_reason(data: object) -> str | None:
    """The first choice's ``finish_reason`` of a chat-completion JSON object (None if absent)."""
    try:
        return data["choices"][0].get("finish_reason")  # type: ignore[index]
    except (KeyError, IndexError, TypeError, AttributeError):
        return None


class OpenAIChatClient(RetryingClient):
    """Chat completions with bounded concurrency, retries and an optional persistent cache.

    Args:
        model: the model id sent to the server.
        options: endpoint (e.g. ``http://127.0.0.1:8000/v1`` for vLLM; None for api.openai.com),
            key (default ``$OPENAI_API_KEY``, or ``"EMPTY"`` with a ``base_url``), timeout,
            retries and concurrency.
        cache: optional response cache.
    """

    provider = PROVIDER
    where_default = "api.openai.com"

    def __init__(self, model: str, options: ClientOptions = ClientOptions(), cache: ResponseCache | None = None):
        super().__init__(model, options, cache)
        base_url, timeout_s = options.base_url, options.timeout_s
        api_key = options.api_key or os.environ.get("OPENAI_API_KEY") or ("EMPTY" if base_url else None)
        if api_key is None:
            raise InputError("no API key: set OPENAI_API_KEY or pass base_url for a local server")
        # The SDK's timeout fires a little before ours so its clean APITimeoutError is what we see.
        self._client = AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s * 0.95,
                                   max_retries=0)

    def cache_key(self, messages: list[dict], params: dict, sample_index: int | None = None,
                  extra: dict | None = None) -> str:
        """The cache key of one call (see the module docstring).

        Raises:
            ValueError: temperature > 0 without ``sample_index``.
        """
        return ResponseCache.key(provider=PROVIDER, model=self.model, params=params,
                                 prompt=sha256_text(canonical_json(messages)),
                                 sample_index=sample_index, extra=extra or {})

    async def complete(
        self,
        messages: list[dict],
        *,
        uid: str | None = None,
        sample_index: int | None = None,
        cache_extra: dict | None = None,
        **params: object,
    ) -> str:
        """Send one chat completion and return the answer text.

        Args:
            messages: OpenAI chat messages.
            uid: the request or sample id, named in errors and stored in cache metadata.
            sample_index: which sample this is; required for temperature > 0 when caching.
            cache_extra: extra key parts (e.g. a backend fingerprint).
            **params: request body fields (``temperature``, ``max_tokens``, ``seed``...);
                ``extra_body`` (a dict) is merged into the body as the SDK does. All of them
                enter the cache key.

        Returns:
            The first choice's text ('' if the model returned none, logged as a warning with
            the finish reason; never cached).

        Raises:
            ServerError: after the last retry, naming ``uid`` and ``sample_index``.
            ValueError: temperature > 0 without ``sample_index`` while a cache is set.
        """
        key = self.cache_key(messages, params, sample_index, cache_extra) if self.cache is not None else None
        extra_body = params.get("extra_body") or {}
        payload = {"model": self.model, "messages": messages,
                   **{k: v for k, v in params.items() if k != "extra_body"}, **extra_body}

        async def attempt() -> str:
            self.requests_sent += 1
            resp = await self._client.post("/chat/completions", cast_to=httpx2.Response, body=payload)
            data = json.loads(await resp.aread())
            text = answer_text(data)
            if not text:
                log.warning("empty answer from %s for %s (finish_reason %s)", self.model, uid or "<no uid>",
                            finish_reason(data))
            return text

        return await self._cached_call(key, attempt, is_retryable_openai, uid, sample_index)

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()
