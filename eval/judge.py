"""The caption LLM judge of the MedVidBench leaderboard (VS, RC and DVC caption scores).

As the official scorer (evaluation/eval_caption_llm_judge.py): one chat call per (prediction,
reference) pair with the prompt ``prompts/judge/caption_judge.toml``, temperature 0; the reply
must contain all five aspect scores (R2, R3, R8, R5, R4, parsed by
``mvbench.tasks.captions.parse``), else the call is retried, up to 5 attempts in all, with
exponential backoff. A pair that never yields five scores is dropped and counted as failed.

The chat call is injected: ``complete(messages, **params) -> str``, sync or async (an
OpenAI-style client), or ``connect() -> client`` (``client.complete`` and ``await client.aclose()``):
then each batch opens a client in its own event loop and closes it there, so no connection outlives
the loop that made it (the synchronous :meth:`Judge.judge_many` runs a loop of its own). An optional cache with ``get(key)`` / ``put(key, value, meta)`` stores raw
replies that parsed; its key is the sha256 of canonical JSON (sorted keys, compact) of the judge
model, prompt version, task, prediction and reference. (The task is in the key because the
official prompt names it.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol

from mvbench.prompts import load as load_prompt

from mvbench.llm.cache import cache_root
from mvbench.tasks import TASKS
from mvbench.tasks.captions import ASPECTS, parse

DEFAULT_MODEL = "gpt-4.1"
PROMPT_NAME = "judge/caption_judge"


def default_judge_cache() -> Path:
    """The judge-reply cache shared by ``mvbench eval``, ``mvbench score`` and the training reward:
    ``$MVBENCH_CACHE/judge`` (default ``~/.cache/mvbench/judge``)."""
    return cache_root("judge")


def connect_judge(model: str = DEFAULT_MODEL, base_url: str | None = None, *, timeout_s: float = 120.0,
                  concurrency: int = 10, cache_dir: Path | None = None) -> "Judge":
    """The caption judge on an OpenAI-compatible server (the OpenAI API without ``base_url``).

    A missing API key fails here, before any paid work. The judge retries each pair itself (5
    attempts, as the official script), so its client makes no retries on top; one client is opened
    per judging batch and closed in that batch's event loop. Replies are cached in ``cache_dir``
    (None: no cache).
    """
    from mvbench.llm.cache import ResponseCache
    from mvbench.llm.openai_client import OpenAIChatClient
    from mvbench.llm.retry import ClientOptions

    options = ClientOptions(base_url=base_url, timeout_s=timeout_s, max_retries=0, concurrency=concurrency)
    OpenAIChatClient(model, options)  # checks the key; opens nothing
    cache = ResponseCache(cache_dir) if cache_dir is not None else None
    return Judge(model=model, cache=cache, connect=lambda: OpenAIChatClient(model, options))


def official_task_name(task: str) -> str:
    """The name the official judge prompt gives a caption task: its qa_type family
    (``dvc`` → ``dense_captioning``); an official name is returned as it is."""
    name = task.upper()
    if name in TASKS and TASKS.get(name).free_text:
        return TASKS.get(name).qa_types[-1]  # the unsuffixed family, e.g. "video_summary"
    return task

CompleteFn = Callable[..., "str | Awaitable[str]"]


class JudgeCache(Protocol):
    """What the judge needs of a cache (``mvbench.llm.cache.ResponseCache`` fits)."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str, meta: dict) -> Any: ...


@dataclass
class JudgeStats:
    """Counters of one judge's work."""

    pairs: int = 0
    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The counters plus up to 3 sample error messages."""
        return {"pairs": self.pairs, "calls": self.calls, "cache_hits": self.cache_hits,
                "retries": self.retries, "failed": self.failed, "sample_errors": self.errors[:3]}


def cache_key(model: str, prompt_version: str, task: str, prediction: str, reference: str) -> str:
    """sha256 of the canonical JSON of the judge inputs."""
    payload = {"judge_model": model, "prompt_version": prompt_version, "task": task,
               "prediction": prediction, "reference": reference}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fill(template: str, values: dict[str, str]) -> str:
    # One pass, so a prediction containing "{reference}" is left as typed.
    return re.sub(r"\{(task|prediction|reference)\}", lambda m: values[m.group(1)], template)


class Judge:
    """Scores caption pairs 1–5 on the five aspects.

    Args:
        complete: the chat call, ``complete(messages, **params) -> str`` (sync or async); or None
            with ``connect``.
        model: judge model name (recorded in results and cache keys; the client picks the model).
        cache: optional reply cache.
        max_attempts: attempts per pair until all five scores parse (official: 5).
        concurrency: pairs judged at once (official: 10 workers for VS/RC, 20 for DVC).
        backoff: seconds multiplied by min(2**attempt, 16) between attempts (0 in tests).
        params: extra parameters passed to ``complete`` (default temperature 0).
        connect: instead of ``complete``, makes a client (``.complete``, ``async .aclose()``) for
            each batch, closed when the batch ends (see the module docstring).
    """

    def __init__(self, complete: CompleteFn | None = None, model: str = DEFAULT_MODEL,
                 cache: JudgeCache | None = None, max_attempts: int = 5, concurrency: int = 10,
                 backoff: float = 1.0, params: dict | None = None, connect: Callable[[], Any] | None = None):
        if max_attempts < 1 or concurrency < 1:
            raise ValueError("max_attempts and concurrency must be at least 1")
        if (complete is None) == (connect is None):
            raise ValueError("give the judge either the chat call (complete) or a client factory (connect)")
        self.complete = complete
        self.connect = connect
        self.model = model
        self.cache = cache
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self.backoff = backoff
        self.params = {"temperature": 0.0, **(params or {})}
        self.prompt = load_prompt(PROMPT_NAME)
        self.prompt_version = str(self.prompt["version"])
        self.stats = JudgeStats()

    def close(self) -> None:
        """Close the reply cache, if it has a ``close``."""
        close = getattr(self.cache, "close", None)
        if close is not None:
            close()

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[None]:
        """With ``connect``: a client for the calls inside, closed in this event loop on exit."""
        if self.connect is None or self.complete is not None:  # injected call, or a batch holds a client
            yield
            return
        client = self.connect()
        self.complete = client.complete
        try:
            yield
        finally:
            self.complete = None
            await client.aclose()

    def info(self) -> dict:
        """Model, prompt version and counters, for the score file."""
        return {"model": self.model, "prompt_version": self.prompt_version, **self.stats.as_dict()}

    def messages(self, prediction: str, reference: str, task: str) -> list[dict]:
        """The chat messages for one pair (``task`` is 'dvc', 'vs', 'rc' or an official task name)."""
        name = official_task_name(task).replace("_", " ")
        values = {"task": name, "prediction": prediction, "reference": reference}
        msgs = []
        if self.prompt.get("system"):
            msgs.append({"role": "system", "content": _fill(self.prompt["system"], values)})
        msgs.append({"role": "user", "content": _fill(self.prompt["user"], values)})
        return msgs

    async def _call(self, messages: list[dict]) -> str:
        if inspect.iscoroutinefunction(self.complete) or inspect.iscoroutinefunction(
                getattr(self.complete, "__call__", None)):
            result = await self.complete(messages, **self.params)
        else:
            result = await asyncio.to_thread(self.complete, messages, **self.params)
            if inspect.isawaitable(result):
                result = await result
        return result if isinstance(result, str) else ("" if result is None else str(result))

    async def ajudge(self, prediction: str, reference: str, task: str) -> dict[str, int] | None:
        """Judge one pair.

        Returns:
            The five aspect scores, or None if every attempt failed (error or incomplete reply).
        """
        async with self._client():
            return await self._ajudge(prediction, reference, task)

    async def _ajudge(self, prediction: str, reference: str, task: str) -> dict[str, int] | None:
        self.stats.pairs += 1
        task_name = official_task_name(task)
        key = cache_key(self.model, self.prompt_version, task_name, prediction, reference)
        if self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                scores = parse(cached)
                if len(scores) == len(ASPECTS):
                    self.stats.cache_hits += 1
                    return scores
        messages = self.messages(prediction, reference, task)
        for attempt in range(self.max_attempts):
            if attempt:
                self.stats.retries += 1
                if self.backoff:
                    await asyncio.sleep(self.backoff * min(2 ** (attempt - 1), 16))
            self.stats.calls += 1
            try:
                reply = await self._call(messages)
            except Exception as e:  # any client failure is retried, then the pair is dropped
                self.stats.errors.append(f"{type(e).__name__}: {e}")
                continue
            scores = parse(reply)
            if len(scores) == len(ASPECTS):
                if self.cache is not None:
                    self.cache.put(key, reply, {"judge_model": self.model, "prompt_version": self.prompt_version,
                                                "task": task_name})
                return scores
            self.stats.errors.append(f"incomplete reply: {len(scores)}/5 scores")
        self.stats.failed += 1
        return None

    async def ajudge_many(self, items: list[tuple[str, str, str]]) -> list[dict[str, int] | None]:
        """Judge (prediction, reference, task) items concurrently; results in input order."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(item: tuple[str, str, str]) -> dict[str, int] | None:
            async with gate:
                return await self._ajudge(*item)

        async with self._client():
            return list(await asyncio.gather(*(one(i) for i in items)))

    def judge_many(self, items: list[tuple[str, str, str]]) -> list[dict[str, int] | None]:
        """Synchronous ``ajudge_many`` (runs its own event loop; use the async form inside one)."""
        if not items:
            return []
        return asyncio.run(self.ajudge_many(items))
