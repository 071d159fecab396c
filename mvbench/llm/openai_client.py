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

:meth:`OpenAIChatClient.call` returns a :class:`~mvbench.llm.retry.Completion` (text, token usage
from the reply's ``usage``, attempts); :meth:`~OpenAIChatClient.complete` returns just the text.
A 429/503 with ``retry-after-ms`` / ``retry-after`` waits as the server asks (capped).

Batch mode (the OpenAI Batch API): :meth:`~OpenAIChatClient.batch_line` makes one JSONL line of
the same body a live call sends, :meth:`~OpenAIChatClient.submit_batch` uploads the file
(``purpose="batch"``) and creates the job, :meth:`~OpenAIChatClient.batch_status` polls it and
:meth:`~OpenAIChatClient.batch_results` reads the output and error files, keyed by ``custom_id``.
:meth:`~OpenAIChatClient.find_batch` finds a job by its metadata, so a process killed between
``batches.create`` and saving the job id adopts the job instead of paying twice. ``batches.create``
itself is sent once, never retried (:class:`~mvbench.llm.batch.BatchCreateError`).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI

from mvbench.errors import InputError, ServerError
from mvbench.llm.batch import (OPENAI_STATES, BatchCreateError, BatchItemResult, BatchStatus,
                               create_may_have_happened)
from mvbench.llm.cache import ResponseCache, canonical_json, sha256_text
from mvbench.llm.retry import (RETRY_AFTER_STATUSES, ClientOptions, Completion, EmptyAnswerError, RetryingClient,
                               Usage, parse_retry_after)
from mvbench.redact import redact, register_secret

PROVIDER = "openai-chat"
ENDPOINT = "/v1/chat/completions"
log = logging.getLogger(__name__)
_RETRY_STATUSES = {408, 409, 429}


def is_retryable_openai(exc: BaseException) -> bool:
    """Transient OpenAI-client errors: connection/timeout, 408/409/429/5xx, unparseable bodies, empty answers."""
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRY_STATUSES or exc.status_code >= 500
    if isinstance(exc, (openai.APIResponseValidationError, json.JSONDecodeError, MalformedReplyError,
                        EmptyAnswerError)):
        return True
    return False


def openai_retry_after(exc: BaseException) -> float | None:
    """The wait a 429/503 reply asks for (``retry-after-ms``, ``retry-after``), else None."""
    if isinstance(exc, openai.APIStatusError) and exc.status_code in RETRY_AFTER_STATUSES:
        return parse_retry_after(exc.response.headers)
    return None


def usage_of(data: object) -> Usage:
    """Tokens of a chat-completion JSON object (``usage.prompt_tokens`` / ``completion_tokens``)."""
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return Usage()
    return Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


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
        register_secret(api_key)
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

    def payload(self, messages: list[dict], params: dict) -> dict:
        """The request body of one call: model, messages, params, ``extra_body`` merged in."""
        extra_body = params.get("extra_body") or {}
        return {"model": self.model, "messages": messages,
                **{k: v for k, v in params.items() if k != "extra_body"}, **extra_body}

    def retry_after(self, exc: BaseException) -> float | None:
        return openai_retry_after(exc)

    async def call(
        self,
        messages: list[dict],
        *,
        uid: str | None = None,
        sample_index: int | None = None,
        cache_extra: dict | None = None,
        retry_empty: bool = False,
        **params: object,
    ) -> Completion:
        """Send one chat completion; return the answer with its token usage.

        Args:
            messages: OpenAI chat messages.
            uid: the request or sample id, named in errors and stored in cache metadata.
            sample_index: which sample this is; required for temperature > 0 when caching.
            cache_extra: extra key parts (e.g. a backend fingerprint).
            retry_empty: treat an empty answer as a transient failure (retried, then a
                ServerError) instead of returning it.
            **params: request body fields (``temperature``, ``max_tokens``, ``seed``...);
                ``extra_body`` (a dict) is merged into the body as the SDK does. All of them
                enter the cache key.

        Returns:
            The :class:`~mvbench.llm.retry.Completion` (text '' if the model returned none,
            logged as a warning with the finish reason; never cached).

        Raises:
            ServerError: after the last retry, naming ``uid`` and ``sample_index``.
            ValueError: temperature > 0 without ``sample_index`` while a cache is set.
        """
        key = self.cache_key(messages, params, sample_index, cache_extra) if self.cache is not None else None
        payload = self.payload(messages, params)

        async def attempt() -> Completion:
            resp = await self._client.post("/chat/completions", cast_to=httpx2.Response, body=payload)
            data = json.loads(await resp.aread())
            text = answer_text(data)
            reason = finish_reason(data)
            if not text:
                log.warning("empty answer from %s for %s (finish_reason %s)", self.model, uid or "<no uid>", reason)
                if retry_empty:
                    raise EmptyAnswerError(f"empty answer (finish_reason {reason})")
            return Completion(text, usage_of(data), finish_reason=reason)

        return await self._cached_call(key, attempt, is_retryable_openai, uid, sample_index)

    async def complete(self, messages: list[dict], *, uid: str | None = None, sample_index: int | None = None,
                       cache_extra: dict | None = None, **params: object) -> str:
        """Send one chat completion and return the answer text (see :meth:`call`)."""
        done = await self.call(messages, uid=uid, sample_index=sample_index, cache_extra=cache_extra, **params)
        return done.text

    # ----- batch mode ----------------------------------------------------------------------
    def batch_line(self, custom_id: str, messages: list[dict], **params: object) -> dict:
        """One line of a Batch API input file: the body a live :meth:`call` would send."""
        return {"custom_id": custom_id, "method": "POST", "url": ENDPOINT,
                "body": self.payload(messages, dict(params))}

    async def submit_batch(self, lines: list[dict], metadata: dict[str, str]) -> str:
        """Upload ``lines`` as a JSONL file and create a 24 h batch job on chat completions.

        Args:
            lines: from :meth:`batch_line` (unique ``custom_id`` values).
            metadata: string pairs stored with the job (:meth:`find_batch` matches them).

        Returns:
            The batch id.

        Raises:
            ServerError: the upload failed after retries (no job was created).
            BatchCreateError: the creation failed (one attempt; see :mod:`mvbench.llm.batch`).
        """
        data = "".join(json.dumps(line, ensure_ascii=False, allow_nan=False) + "\n" for line in lines).encode("utf-8")
        name = f"mvbench-{metadata.get('mvbench_job', 'batch')}.jsonl"
        uploaded = await self.with_retries(
            lambda: self._client.files.create(file=(name, data, "application/jsonl"), purpose="batch"),
            is_retryable_openai, "upload of a batch input file")
        try:  # never retried: a lost reply may hide a created (billed) job, see mvbench.llm.batch
            batch = await self.with_retries(
                lambda: self._client.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT,
                                                    completion_window="24h", metadata=metadata),
                is_retryable_openai, "creation of a batch job", retry=False)
        except ServerError as e:
            raise BatchCreateError(str(e), maybe_created=create_may_have_happened(e, is_retryable_openai)) from None
        return batch.id

    async def find_batch(self, metadata: dict[str, str], max_pages: int = 10) -> str | None:
        """The newest batch job whose metadata includes every pair of ``metadata``, or None."""
        after: str | None = None
        for _ in range(max_pages):
            kwargs: dict[str, Any] = {"limit": 100}
            if after:
                kwargs["after"] = after
            page = await self.with_retries(lambda: self._client.batches.list(**kwargs), is_retryable_openai,
                                           "listing batch jobs")
            items = list(page.data)
            for batch in items:
                meta = batch.metadata or {}
                if all(meta.get(k) == v for k, v in metadata.items()):
                    return batch.id
            if not items or not getattr(page, "has_more", False):
                return None
            after = items[-1].id
        return None

    async def batch_status(self, batch_id: str) -> BatchStatus:
        """Poll one batch job."""
        batch = await self.with_retries(lambda: self._client.batches.retrieve(batch_id), is_retryable_openai,
                                        f"status of batch {batch_id}")
        errors = getattr(batch, "errors", None)
        messages = [f"{e.code}: {e.message}" for e in (getattr(errors, "data", None) or [])]
        return BatchStatus(batch_id, OPENAI_STATES.get(batch.status, "running"), batch.status,
                           error=redact("; ".join(messages)) if messages else None,
                           detail={"output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id})

    async def batch_results(self, status: BatchStatus) -> list[BatchItemResult]:
        """Read a finished job's output and error files (order not guaranteed; keyed by ``custom_id``).

        A line counts only with ``error`` null and ``response.status_code`` 200 and a chat
        completion body; everything else becomes an error result (requeue it).
        """
        results: list[BatchItemResult] = []
        for file_id in (status.detail.get("output_file_id"), status.detail.get("error_file_id")):
            if not file_id:
                continue
            content = await self.with_retries(lambda: self._client.files.content(file_id), is_retryable_openai,
                                              f"download of batch file {file_id}")
            for line in content.text.splitlines():
                if line.strip():
                    results.append(_batch_output_line(line))
        return results

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()


def _batch_output_line(line: str) -> BatchItemResult:
    """One line of a batch output or error file as a result (malformed lines become errors)."""
    try:
        obj = json.loads(line)
        custom_id = str(obj["custom_id"])
    except (json.JSONDecodeError, KeyError, TypeError):
        return BatchItemResult(custom_id="", error=redact(f"unreadable batch output line: {line[:200]}"))
    if obj.get("error"):
        return BatchItemResult(custom_id, error=redact(f"batch error: {obj['error']}"))
    response = obj.get("response") or {}
    body = response.get("body")
    if response.get("status_code") != 200 or not isinstance(body, dict):
        return BatchItemResult(custom_id, error=redact(f"HTTP {response.get('status_code')}: {str(body)[:300]}"))
    try:
        text = answer_text(body)
    except MalformedReplyError as e:
        return BatchItemResult(custom_id, error=redact(str(e)))
    if not text.strip():
        return BatchItemResult(custom_id, error=f"empty answer (finish_reason {finish_reason(body)})")
    return BatchItemResult(custom_id, Completion(text, usage_of(body), finish_reason=finish_reason(body)))
