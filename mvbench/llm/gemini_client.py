"""An async Gemini client on ``google-genai``.

Same semantics as :mod:`mvbench.llm.openai_client`: the SDK's retries are off
(``HttpRetryOptions(attempts=1)``) and :mod:`mvbench.llm.retry` retries 408/429/5xx, timeouts,
transport errors and malformed JSON, boundedly, then raises :class:`~mvbench.errors.ServerError`
naming the request and sample. Images travel as inline-data parts. ``base_url`` (or the SDK's
``GOOGLE_GEMINI_BASE_URL``) points the client at another server, e.g. a local fake.

A live call posts the REST ``GenerateContentRequest`` JSON (:meth:`GeminiClient.rest_request`)
through the SDK's own API client (``client._api_client.async_request``: the SDK's URL, API
version, headers and ``APIError`` exceptions) and reads the reply JSON itself, as the OpenAI client
does with ``client.post``: ``models.generate_content`` turns every request and reply into pydantic
models, several ms of CPU per frame-laden request, which capped throughput. The wire format is the
one ``generate_content`` sends.

Thinking is off by default (``thinking_budget=0``): Gemini 2.5 models think unless told not to,
and thinking tokens count against ``max_output_tokens``, so with the benchmark's fixed 256-token
answer budget the reply came back empty (``finish_reason`` MAX_TOKENS). An empty answer is
logged as a warning naming the request and its finish reason.

Cache keys hash the turns with each image's bytes replaced by their sha256, plus provider,
model, the system instruction and the output-affecting params (thinking budget included; and
``sample_index`` for temperature > 0, then required).

:meth:`GeminiClient.call` returns a :class:`~mvbench.llm.retry.Completion` with the reply's
``usageMetadata`` (output = candidates + thinking tokens, as Google bills them). A 429/503 waits as
the server asks: a ``Retry-After`` header, else ``RetryInfo.retryDelay`` in the error body (capped).

Batch mode (``client.aio.batches``): :meth:`~GeminiClient.batch_request` prepares one request,
:meth:`~GeminiClient.submit_batch` sends a job with inlined requests (under ``inline_limit_bytes``)
or as an uploaded JSONL file (the resumable upload), each request keyed by ``metadata.key`` / the
line's ``key``; :meth:`~GeminiClient.batch_status` polls and :meth:`~GeminiClient.batch_results`
reads inlined responses or downloads the responses file. :meth:`~GeminiClient.find_batch` finds a
job by display name, for a process killed before it saved the job's name.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from mvbench.errors import InputError, ServerError
from mvbench.llm.batch import (GEMINI_STATES, BatchCreateError, BatchItemResult, BatchStatus,
                               create_may_have_happened)
from mvbench.llm.cache import ResponseCache, canonical_json, sha256_text
from mvbench.llm.images import hash_bytes
from mvbench.llm.retry import (RETRY_AFTER_STATUSES, ClientOptions, Completion, EmptyAnswerError, RetryingClient,
                               Usage, parse_retry_after, parse_retry_delay)
from mvbench.redact import redact, register_secret

try:  # google-genai may use httpx2, a fork with its own exception classes
    import httpx2

    _TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError, httpx2.TransportError)
except ImportError:  # pragma: no cover - depends on the installed SDK
    _TRANSPORT_ERRORS = (httpx.TransportError,)

TESTED_GENAI = "google-genai>=1.0,<4"  # the range of the `gemini` extra (pyproject.toml)
PROVIDER = "gemini"
log = logging.getLogger(__name__)


def _limits(concurrency: int):
    """Connection-pool limits for the SDK's async httpx2 client (None when it is not httpx2)."""
    try:
        import httpx2
    except ImportError:  # pragma: no cover - depends on the installed SDK
        return None
    return httpx2.Limits(max_connections=max(100, 2 * concurrency), max_keepalive_connections=max(20, concurrency))


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


@dataclass(frozen=True)
class GeminiBatchRequest:
    """One request of a batch job, in both forms the job may take.

    Args:
        key: the request's id (``metadata.key`` inline, ``key`` in a JSONL file).
        contents / config: the SDK objects of an inlined request.
        rest: the REST ``GenerateContentRequest`` JSON of a JSONL line.
        size: the request's size in bytes (images dominate), for the inline limit.
    """

    key: str
    contents: list = field(repr=False)
    config: Any = field(repr=False)
    rest: dict = field(repr=False)
    size: int = 0


def is_retryable_gemini(exc: BaseException) -> bool:
    """Transient errors: 408/429/5xx API errors, transport errors, unparseable bodies, empty answers."""
    if isinstance(exc, genai_errors.APIError):
        return exc.code in (408, 429) or (exc.code or 0) >= 500
    return isinstance(exc, _TRANSPORT_ERRORS + (json.JSONDecodeError, EmptyAnswerError))


def gemini_retry_after(exc: BaseException) -> float | None:
    """The wait a 429/503 asks for: ``retry-after`` headers, else the body's ``RetryInfo.retryDelay``."""
    if not isinstance(exc, genai_errors.APIError) or exc.code not in RETRY_AFTER_STATUSES:
        return None
    headers = getattr(getattr(exc, "response", None), "headers", None)
    try:
        hint = parse_retry_after(dict(headers.items()) if headers is not None else None)
    except AttributeError:
        hint = None
    return hint if hint is not None else parse_retry_delay(exc.details)


def usage_of(meta: Any) -> Usage:
    """Tokens of a ``usage_metadata`` object or ``usageMetadata`` dict (output = candidates + thoughts)."""
    if meta is None:
        return Usage()
    if isinstance(meta, dict):
        prompt = meta.get("promptTokenCount", meta.get("prompt_token_count"))
        out = meta.get("candidatesTokenCount", meta.get("candidates_token_count"))
        thoughts = meta.get("thoughtsTokenCount", meta.get("thoughts_token_count"))
    else:
        prompt, out, thoughts = meta.prompt_token_count, meta.candidates_token_count, meta.thoughts_token_count
    return Usage(int(prompt or 0), int(out or 0) + int(thoughts or 0))


def _rest_finish_reason(response: dict) -> str:
    """The first candidate's ``finishReason`` of a response JSON, or why there is no candidate."""
    candidates = response.get("candidates") or []
    if not candidates:
        blocked = (response.get("promptFeedback") or {}).get("blockReason")
        return f"no candidates; block_reason {blocked}"
    return str(candidates[0].get("finishReason"))


def rest_answer_text(response: dict) -> str:
    """The text of a ``GenerateContentResponse`` JSON (first candidate, thought parts skipped)."""
    try:
        parts = response["candidates"][0]["content"]["parts"]
    except (KeyError, IndexError, TypeError):
        return ""
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict) and not p.get("thought"))


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
        register_secret(api_key)
        # httpx keeps 20 idle connections by default: with more requests in flight every extra one
        # was closed and reopened per request. Keep as many as we send at once (as the OpenAI SDK does).
        limits = _limits(options.concurrency)
        http_options = types.HttpOptions(
            base_url=base_url, timeout=int(timeout_s * 950),  # ms, a bit under our own bound
            retry_options=types.HttpRetryOptions(attempts=1),
            async_client_args={"limits": limits} if limits is not None else None)
        self._client = genai.Client(api_key=api_key, http_options=http_options)
        if not callable(getattr(self._client._api_client, "async_request", None)):
            # live calls post through this private method (module docstring): fail at start, in one line
            raise InputError(f"google-genai {getattr(genai, '__version__', '?')} has no "
                             f"BaseApiClient.async_request, which mvbench's live Gemini calls post through; "
                             f"install a tested release: pip install {TESTED_GENAI!r}")
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

    def _contents(self, turns: list[Turn]) -> list:
        return [types.Content(role=t.role, parts=[
            types.Part.from_text(text=p) if isinstance(p, str)
            else types.Part.from_bytes(data=p.data, mime_type=p.mime_type) for p in t.parts])
            for t in turns]

    def _config(self, system: str | None, temperature: float, max_tokens: int | None,
                seed: int | None) -> types.GenerateContentConfig:
        thinking = (types.ThinkingConfig(thinking_budget=self.thinking_budget)
                    if self.thinking_budget is not None else None)
        return types.GenerateContentConfig(system_instruction=system, temperature=float(temperature),
                                           max_output_tokens=max_tokens, seed=seed, thinking_config=thinking)

    def params(self, temperature: float = 0.0, max_tokens: int | None = None, seed: int | None = None) -> dict:
        """The output-affecting params as they enter the cache key."""
        return {"temperature": float(temperature), "max_tokens": max_tokens, "seed": seed,
                "thinking_budget": self.thinking_budget}

    def retry_after(self, exc: BaseException) -> float | None:
        return gemini_retry_after(exc)

    async def call(
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
        retry_empty: bool = False,
    ) -> Completion:
        """Generate one answer with its token usage.

        Args:
            turns: the conversation, ending with a user turn.
            system: optional system instruction.
            uid: the request or sample id, named in errors.
            sample_index: which sample this is; required for temperature > 0 when caching.
            cache_extra: extra key parts (e.g. a backend fingerprint).
            temperature: sampling temperature.
            max_tokens: ``max_output_tokens``.
            seed: sampling seed.
            retry_empty: treat an empty answer as a transient failure (retried, then a ServerError).

        Returns:
            The :class:`~mvbench.llm.retry.Completion` (text '' if there is none, logged as a
            warning with the finish reason; never cached).

        Raises:
            ServerError: after the last retry, naming ``uid`` and ``sample_index``.
            ValueError: temperature > 0 without ``sample_index`` while a cache is set.
        """
        params = self.params(temperature, max_tokens, seed)
        key = self.cache_key(turns, system, params, sample_index, cache_extra) if self.cache is not None else None
        request = self.rest_request(turns, system=system, temperature=temperature, max_tokens=max_tokens, seed=seed)
        path = f"{self.model if '/' in self.model else 'models/' + self.model}:generateContent"

        async def attempt() -> Completion:
            # The SDK's own transport (URL, version, headers, errors as genai APIError) with our
            # REST JSON: generate_content's pydantic conversions cost ~5 ms of CPU per frame-laden
            # request, which capped a client's throughput (bench/generate.py).
            resp = await self._client._api_client.async_request("post", path, dict(request))
            data = json.loads(resp.body) if resp.body else {}
            text = rest_answer_text(data)
            reason = _rest_finish_reason(data)
            if not text:
                log.warning("empty answer from %s for %s (finish_reason %s)", self.model, uid or "<no uid>", reason)
                if retry_empty:
                    raise EmptyAnswerError(f"empty answer (finish_reason {reason})")
            return Completion(text, usage_of(data.get("usageMetadata")), finish_reason=reason)

        return await self._cached_call(key, attempt, is_retryable_gemini, uid, sample_index)

    async def complete(self, turns: list[Turn], *, system: str | None = None, uid: str | None = None,
                       sample_index: int | None = None, cache_extra: dict | None = None,
                       temperature: float = 0.0, max_tokens: int | None = None, seed: int | None = None) -> str:
        """Generate one answer and return its text (see :meth:`call`)."""
        done = await self.call(turns, system=system, uid=uid, sample_index=sample_index, cache_extra=cache_extra,
                               temperature=temperature, max_tokens=max_tokens, seed=seed)
        return done.text

    # ----- batch mode ----------------------------------------------------------------------
    def rest_request(self, turns: list[Turn], *, system: str | None = None, temperature: float = 0.0,
                     max_tokens: int | None = None, seed: int | None = None) -> dict[str, Any]:
        """The REST ``GenerateContentRequest`` JSON of one call (images as base64 inline data)."""
        generation: dict[str, Any] = {"temperature": float(temperature)}
        if max_tokens is not None:
            generation["maxOutputTokens"] = max_tokens
        if seed is not None:
            generation["seed"] = seed
        if self.thinking_budget is not None:
            generation["thinkingConfig"] = {"thinkingBudget": self.thinking_budget}
        rest: dict[str, Any] = {"contents": [
            {"role": t.role, "parts": [{"text": p} if isinstance(p, str) else
                                       {"inlineData": {"mimeType": p.mime_type,
                                                       "data": base64.b64encode(p.data).decode("ascii")}}
                                       for p in t.parts]} for t in turns],
            "generationConfig": generation}
        if system:
            rest["systemInstruction"] = {"parts": [{"text": system}]}
        return rest

    def batch_request(self, key: str, turns: list[Turn], *, system: str | None = None, temperature: float = 0.0,
                      max_tokens: int | None = None, seed: int | None = None) -> GeminiBatchRequest:
        """One request of a batch job: what a live :meth:`call` with these arguments sends."""
        contents = self._contents(turns)
        config = self._config(system, temperature, max_tokens, seed)
        rest = self.rest_request(turns, system=system, temperature=temperature, max_tokens=max_tokens, seed=seed)
        size = sum(len(p.data) * 4 // 3 + 64 if isinstance(p, InlineData) else len(p.encode("utf-8"))
                   for t in turns for p in t.parts) + len((system or "").encode("utf-8"))
        return GeminiBatchRequest(key, contents, config, rest, size)

    async def submit_batch(self, requests: list[GeminiBatchRequest], display_name: str,
                           inline_limit_bytes: int = 15_000_000) -> str:
        """Create a batch job: inlined requests when they fit ``inline_limit_bytes``, else a JSONL file.

        Args:
            requests: from :meth:`batch_request` (unique keys).
            display_name: the job's display name (:meth:`find_batch` matches it).
            inline_limit_bytes: above this total size the requests go as an uploaded file (the
                API caps an inline job at 20 MB).

        Returns:
            The job name (``batches/...``).

        Raises:
            ServerError: the upload failed after retries (no job was created).
            BatchCreateError: the creation failed (one attempt; see :mod:`mvbench.llm.batch`).
        """
        if sum(r.size for r in requests) <= inline_limit_bytes:
            src: Any = [types.InlinedRequest(contents=r.contents, config=r.config, metadata={"key": r.key})
                        for r in requests]
        else:
            data = "".join(json.dumps({"key": r.key, "request": r.rest}, allow_nan=False) + "\n" for r in requests).encode()
            uploaded = await self.with_retries(
                lambda: self._client.aio.files.upload(
                    file=io.BytesIO(data), config=types.UploadFileConfig(mime_type="jsonl",
                                                                         display_name=display_name)),
                is_retryable_gemini, "upload of a batch input file")
            src = uploaded.name
        try:  # never retried: a lost reply may hide a created (billed) job, see mvbench.llm.batch
            job = await self.with_retries(
                lambda: self._client.aio.batches.create(model=self.model, src=src,
                                                        config=types.CreateBatchJobConfig(display_name=display_name)),
                is_retryable_gemini, "creation of a batch job", retry=False)
        except ServerError as e:
            raise BatchCreateError(str(e), maybe_created=create_may_have_happened(e, is_retryable_gemini)) from None
        return job.name

    async def find_batch(self, display_name: str, max_pages: int = 10) -> str | None:
        """The job with this display name, or None."""
        pager = await self.with_retries(
            lambda: self._client.aio.batches.list(config=types.ListBatchJobsConfig(page_size=100)),
            is_retryable_gemini, "listing batch jobs")
        for _ in range(max_pages):
            for job in pager.page:
                if job.display_name == display_name:
                    return job.name
            if not pager.config.get("page_token"):
                return None
            await self.with_retries(pager.next_page, is_retryable_gemini, "listing batch jobs")
        return None

    async def batch_status(self, name: str) -> BatchStatus:
        """Poll one batch job."""
        job = await self.with_retries(lambda: self._client.aio.batches.get(name=name), is_retryable_gemini,
                                      f"status of batch {name}")
        raw = getattr(job.state, "value", None) or str(job.state)
        error = getattr(job, "error", None)
        return BatchStatus(name, GEMINI_STATES.get(raw, "running"), raw,
                           error=redact(str(error.message)) if error is not None and error.message else None,
                           detail={"dest": job.dest})

    async def batch_results(self, status: BatchStatus) -> list[BatchItemResult]:
        """Read a finished job's inlined responses or its responses file (keyed by request key)."""
        dest = status.detail.get("dest")
        if dest is None:
            return []
        results: list[BatchItemResult] = []
        if dest.inlined_responses:
            for item in dest.inlined_responses:
                key = (item.metadata or {}).get("key", "")
                if item.error is not None:
                    results.append(BatchItemResult(key, error=redact(f"batch error {item.error.code}: "
                                                                     f"{item.error.message}")))
                    continue
                resp = item.response
                text = (resp.text or "") if resp is not None else ""
                if not text.strip():
                    why = _finish_reason(resp) if resp is not None else "no response"
                    results.append(BatchItemResult(key, error=f"empty answer (finish_reason {why})"))
                    continue
                results.append(BatchItemResult(key, Completion(text, usage_of(resp.usage_metadata),
                                                               finish_reason=_finish_reason(resp))))
        elif dest.file_name:
            data = await self.with_retries(lambda: self._client.aio.files.download(file=dest.file_name),
                                           is_retryable_gemini, f"download of {dest.file_name}")
            for line in data.decode("utf-8").splitlines():
                if line.strip():
                    results.append(_file_result_line(line))
        return results

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aio.aclose()


def _file_result_line(line: str) -> BatchItemResult:
    """One line of a batch responses file: ``{"key", "response"}`` or ``{"key", "error"|"status"}``."""
    try:
        obj = json.loads(line)
        key = str(obj["key"])
    except (json.JSONDecodeError, KeyError, TypeError):
        return BatchItemResult("", error=redact(f"unreadable batch output line: {line[:200]}"))
    failure = obj.get("error") or obj.get("status")
    response = obj.get("response")
    if failure or not isinstance(response, dict):
        return BatchItemResult(key, error=redact(f"batch error: {failure or 'no response'}"))
    text = rest_answer_text(response)
    if not text.strip():
        return BatchItemResult(key, error="empty answer")
    reason = (response.get("candidates") or [{}])[0].get("finishReason")
    return BatchItemResult(key, Completion(text, usage_of(response.get("usageMetadata")), finish_reason=reason))
