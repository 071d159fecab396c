"""Answer pending samples concurrently: cache first, then the backend; persist every result at once.

A run stops early, with its answers saved, when the backend keeps failing (``abort_after``
consecutive failures with no success in between: a dead server, a wrong model name, a crashed
vLLM), instead of retrying every remaining sample on its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from mvbench.errors import ServerError
from mvbench.eval.backends.base import Backend, GenerationRequest
from mvbench.eval.predictions import PredictionStore, is_answer
from mvbench.llm.cache import ResponseCache, sha256_text
from mvbench.llm.collector import collector_tuned
from mvbench.redact import redact

log = logging.getLogger(__name__)


class RunAborted(ServerError):
    """The run stopped early because the backend kept failing; answers so far are saved.

    Args:
        message: why, and how to resume.
        counts: the counters of :func:`answer_all` up to the stop.
    """

    def __init__(self, message: str, counts: dict[str, int]):
        super().__init__(message)
        self.counts = counts

# Fingerprint entries that say where a model is served, not what answers: left out of cache keys.
_LOCATION_KEYS = ("base_url",)


def request_cache_key(fingerprint: dict, request: GenerationRequest, recorded_frames: list[str]) -> str:
    """Content key of one generation: backend fingerprint (minus its address), params, prompt, frames, RC box.

    Frames enter by their recorded (dataset-relative) path and byte size: stable across machines
    and cheap to compute for ~100 frames a sample. A frame rewritten with other content of the
    same byte size would keep its key (rebuilds write new frames under new builder versions).
    """
    sizes = [os.path.getsize(p) for p in request.frames]
    backend = {k: v for k, v in fingerprint.items() if k not in _LOCATION_KEYS}
    return ResponseCache.key(kind="generation", backend=backend, params=request.params.to_dict(),
                             prompt=sha256_text(request.prompt), examples=[list(e) for e in request.examples],
                             frames=recorded_frames, frame_sizes=sizes, fps=request.fps,
                             rc_box=list(request.rc_box) if request.rc_box else None,
                             system=request.system)


async def answer_all(backend: Backend, work: list[tuple[GenerationRequest, list[str]]], store: PredictionStore,
                     cache: ResponseCache | None, concurrency: int, abort_after: int,
                     progress: Callable[[], Any] | None = None,
                     diagnose: Callable[[], str | None] | None = None) -> dict[str, int]:
    """Answer every request not yet in ``store``.

    Args:
        backend: answers requests (it bounds its own in-flight calls).
        work: ``(request, recorded frame paths)`` pairs.
        store: where each result is appended the moment it arrives.
        cache: the response cache, or None.
        concurrency: the backend's concurrency; twice as many samples are prepared at once, so a
            sample waiting in a retry backoff does not starve the others.
        abort_after: stop after this many consecutive failures (0 never stops).
        progress: called once per finished sample.
        diagnose: explains a failing backend (e.g. a crashed vLLM's log tail) for the abort message.

    Returns:
        Counters: ``requested``, ``cached``, ``failed``, ``empty`` (empty answers are stored but
        count as not done: a rerun requests them again).

    Raises:
        RunAborted: the run was aborted (answers so far are saved; a rerun resumes).
    """
    sem = asyncio.Semaphore(2 * concurrency)
    fingerprint = backend.fingerprint()
    counts = {"requested": 0, "cached": 0, "failed": 0, "empty": 0}
    state: dict[str, Any] = {"streak": 0, "last_error": None}
    aborted = asyncio.Event()

    async def one(request: GenerationRequest, recorded: list[str]) -> None:
        if aborted.is_set():
            return
        key = request_cache_key(fingerprint, request, recorded) if cache is not None else None
        hit = cache.get(key) if key is not None else None
        entry: dict[str, Any] = {"uid": request.uid, "qa_type": request.qa_type}
        if hit is not None:
            counts["cached"] += 1
            store.append(entry | {"prediction": hit, "error": None, "cached": True, "latency_s": 0.0})
        else:
            async with sem:
                if aborted.is_set():
                    return
                t0 = time.perf_counter()
                counts["requested"] += 1
                try:
                    text = await backend.generate(request)
                except Exception as e:  # any failure of one sample is recorded, never fatal by itself
                    counts["failed"] += 1
                    state["streak"] += 1
                    state["last_error"] = redact(f"{type(e).__name__}: {e}")  # an echoed key stays out of files
                    log.warning("sample %s failed: %s", request.uid, e)
                    store.append(entry | {"prediction": None, "error": state["last_error"], "cached": False,
                                          "latency_s": time.perf_counter() - t0})
                    if abort_after and state["streak"] >= abort_after:
                        aborted.set()
                    return
                state["streak"] = 0
                if not text.strip():
                    counts["empty"] += 1
                    log.warning("sample %s: the model returned an empty answer", request.uid)
                store.append(entry | {"prediction": text, "error": None, "cached": False,
                                      "latency_s": time.perf_counter() - t0})
                if key is not None:
                    cache.put(key, text, {"uid": request.uid, "model": fingerprint.get("model")})
        if progress is not None:
            progress()

    with collector_tuned():  # GC scans would stall the loop with many answers in flight
        await asyncio.gather(*(one(r, rec) for r, rec in work))
    if aborted.is_set():
        why = diagnose() if diagnose else None
        saved = sum(1 for e in store.entries.values() if is_answer(e.get("prediction")))
        raise RunAborted(f"stopped after {state['streak']} consecutive failed requests "
                         f"(last: {state['last_error']}){'; ' + why if why else ''}. "
                         f"{saved} answers are saved; fix the cause and rerun the same command to resume",
                         counts)
    return counts
