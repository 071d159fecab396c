"""An async Gemini client on ``google-genai`` (``client.aio.models.generate_content``).

Same semantics as :mod:`mvbench.llm.openai_client`: the SDK's retries are off
(``HttpRetryOptions(attempts=1)``) and :mod:`mvbench.llm.retry` retries 408/429/5xx, timeouts,
transport errors and malformed JSON, boundedly, then raises :class:`~mvbench.errors.ServerError`
naming the request and sample. Images travel as inline-bytes parts. ``base_url`` (or the SDK's
``GOOGLE_GEMINI_BASE_URL``) points the client at another server, e.g. a local fake.

Thinking is off by default (``thinking_budget=0``): Gemini 2.5 models think unless told not to,
and thinking tokens count against ``max_output_tokens``, so with the benchmark's fixed 256-token
answer budget the reply came back empty (``finish_reason`` MAX_TOKENS). An empty answer is
logged as a warning naming the request and its finish reason.

Cache keys hash the turns with each image's bytes replaced by their sha256, plus provider,
model, the system instruction and the output-affecting params (thinking budget included; and
``sample_index`` for temperature > 0, then required).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from mvbench.errors import InputError
from mvbench.llm.cache import ResponseCache, canonical_json, sha256_text
from mvbench.llm.images import hash_bytes
from mvbench.llm.retry import ClientOptions, RetryingClient

try:  # google-genai may use httpx2, a fork with its own exception classes
    import httpx2

    _TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError, httpx2.TransportError)
except ImportError:  # pragma: no cover - depends on the installed SDK
    _TRANSPORT_ERRORS = (httpx.TransportError,)

PROVIDER = "gemini"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InlineData:
    """An inline media part (image bytes) of a Gemini turn."""

    data: bytes
    mime_type: str = "image/jpeg"


Part = str | InlineData


@dataclass(frozen=True)
class Turn:
    """One turn of a Gemini conversation: ``role`` is ``"user"`` or ``"model"``."""

    role: str
    parts: tuple[Part, ...]


def is_retryable_gemini(exc: BaseException) -> bool:
    """Transient errors: 408/429/5xx API errors, transport errors, unparseable bodies."""
    if isinstance(exc, genai_errors.APIError):
        return exc.code in (408, 429) or (exc.code or 0) >= 500
    return isinstance(exc, _TRANSPORT_ERRORS + (json.JSONDecodeError,))


def _finish_reason(resp: types.GenerateContentResponse) -> str:
    """The first candidate's finish reason (e.g. ``MAX_TOKENS``), or why there is none."""
    if not resp.candidates:
        feedback = resp.prompt_feedback
        blocked = getattr(feedback, "block_reason", None) if feedback is not None else None
        return f"no candidates; block_reason {getattr(blocked, 'name', blocked)}"
    reason = resp.candidates[0].finish_reason
    return str(getattr(reason, "name", reason))


class GeminiClient(RetryingClient):
    """Gemini ``generateContent`` with bounded concurrency, retries and an optional cache.

    Args:
        model: e.g. ``gemini-2.5-flash``.
        options: endpoint (e.g. ``http://127.0.0.1:PORT/``; None for Google's), key (default
            ``$GEMINI_API_KEY`` / ``$GOOGLE_API_KEY``, or ``"EMPTY"`` with a ``base_url``),
            timeout, retries and concurrency.
        cache: optional response cache.
        thinking_budget: thinking tokens per request, sent as
            ``ThinkingConfig(thinking_budget=...)``. 0 (default) turns thinking off, which matches
            a fixed answer budget such as MedVidBench's 256 tokens (thinking tokens count against
            ``max_output_tokens``); None leaves the model's default (needed for models that
            cannot turn thinking off, e.g. gemini-2.5-pro); -1 lets the model decide.
    """

    provider = PROVIDER
    where_default = "the Gemini API"

    def __init__(self, model: str, options: ClientOptions = ClientOptions(), cache: ResponseCache | None = None,
                 thinking_budget: int | None = 0):
        super().__init__(model, options, cache)
        base_url, timeout_s = options.base_url, options.timeout_s
        api_key = (options.api_key or os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
                   or ("EMPTY" if base_url else None))
        if api_key is None:
            raise InputError("no API key: set GEMINI_API_KEY or pass base_url for a local server")
        http_options = types.HttpOptions(
            base_url=base_url, timeout=int(timeout_s * 950),  # ms, a bit under our own bound
            retry_options=types.HttpRetryOptions(attempts=1))
        self._client = genai.Client(api_key=api_key, http_options=http_options)
        self.thinking_budget = thinking_budget

    def cache_key(self, turns: list[Turn], system: str | None, params: dict,
                  sample_index: int | None = None, extra: dict | None = None) -> str:
        """The cache key of one call (images enter as hashes of their bytes).

        Raises:
            ValueError: temperature > 0 without ``sample_index``.
        """
        shape = [{"role": t.role, "parts": [p if isinstance(p, str) else
                                            {"mime": p.mime_type, "sha256": hash_bytes(p.data)}
                                            for p in t.parts]} for t in turns]
        return ResponseCache.key(provider=PROVIDER, model=self.model, params=params,
                                 prompt=sha256_text(canonical_json({"system": system, "turns": shape})),
                                 sample_index=sample_index, extra=extra or {})

    async def complete(
        self,
        turns: list[Turn],
        *,
        system: str | None = None,
        uid: str | None = None,
        sample_index: int | None = None,
        cache_extra: dict | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> str:
        """Generate one answer.

        Args:
            turns: the conversation, ending with a user turn.
            system: optional system instruction.
            uid: the request or sample id, named in errors.
            sample_index: which sample this is; required for temperature > 0 when caching.
            cache_extra: extra key parts (e.g. a backend fingerprint).
            temperature: sampling temperature.
            max_tokens: ``max_output_tokens``.
            seed: sampling seed.

        Returns:
            The answer text ('' if there is none, logged as a warning with the finish reason;
            never cached).

        Raises:
            ServerError: after the last retry, naming ``uid`` and ``sample_index``.
            ValueError: temperature > 0 without ``sample_index`` while a cache is set.
        """
        params = {"temperature": float(temperature), "max_tokens": max_tokens, "seed": seed,
                  "thinking_budget": self.thinking_budget}
        key = self.cache_key(turns, system, params, sample_index, cache_extra) if self.cache is not None else None
        contents = [types.Content(role=t.role, parts=[
            types.Part.from_text(text=p) if isinstance(p, str)
            else types.Part.from_bytes(data=p.data, mime_type=p.mime_type) for p in t.parts])
            for t in turns]
        thinking = (types.ThinkingConfig(thinking_budget=self.thinking_budget)
                    if self.thinking_budget is not None else None)
        config = types.GenerateContentConfig(system_instruction=system, temperature=float(temperature),
                                             max_output_tokens=max_tokens, seed=seed, thinking_config=thinking)

        async def attempt() -> str:
            self.requests_sent += 1
            resp = await self._client.aio.models.generate_content(
                model=self.model, contents=contents, config=config)
            text = resp.text or ""
            if not text:
                log.warning("empty answer from %s for %s (finish_reason %s)", self.model, uid or "<no uid>",
                            _finish_reason(resp))
            return text

        return await self._cached_call(key, attempt, is_retryable_gemini, uid, sample_index)

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aio.aclose()
