"""The LLM-judge half of the caption reward: concurrent, cached calls to any OpenAI-compatible server.

It reuses the leaderboard's judge (:class:`mvbench.eval.judge.Judge`: the official prompt, five
aspect scores, retries until all five parse, a reply cache keyed by judge model, prompt version,
task, prediction and reference, shared with ``mvbench eval``). A pair whose every attempt fails
gives None here; the reward then falls back to the similarity half, and the caller logs it (a
failed judgement is never silently scored 0).

The judge runs on one private event loop in a daemon thread, so synchronous callers (TRL reward
functions, verl's ``compute_score``) can submit a whole batch and wait, and the HTTP client's
connection pool stays on one loop for the life of the run.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvbench.llm.cache import cache_root
from mvbench.llm.collector import collector_tuned
from mvbench.tasks.captions import ASPECTS

AUTO_CACHE = "auto"


async def _tuned(coro):
    """Run a batch of judge calls with the collector tuned (:mod:`mvbench.llm.collector`)."""
    with collector_tuned():
        return await coro


def default_judge_cache() -> Path:
    """The judge-reply cache ``mvbench eval`` uses: ``$MVBENCH_CACHE/judge`` or ``~/.cache/mvbench/judge``."""
    return cache_root("judge")


@dataclass(frozen=True)
class JudgeConfig:
    """The caption judge of the reward.

    Args:
        enabled: False scores captions by MiniLM similarity alone (logged).
        model: the judge model name sent to the server.
        base_url: an OpenAI-compatible server (None: api.openai.com with ``OPENAI_API_KEY``).
        concurrency: judge calls in flight.
        timeout_s: seconds per call attempt.
        max_attempts: attempts per pair until all five scores parse.
        cache_dir: reply cache; ``auto`` is the one ``mvbench eval`` uses (:func:`default_judge_cache`);
            None disables it.
    """

    enabled: bool = True
    model: str = "gpt-4.1"
    base_url: str | None = None
    concurrency: int = 32
    timeout_s: float = 60.0
    max_attempts: int = 3
    cache_dir: str | None = AUTO_CACHE

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.max_attempts < 1:
            raise ValueError("judge.concurrency and judge.max_attempts must be >= 1")
        if self.timeout_s <= 0:
            raise ValueError("judge.timeout_s must be > 0")


def judge_score01(result: dict[str, int] | None) -> float | None:
    """The judge's mean aspect score (1–5) rescaled to [0, 1] as (s − 1) / 4; None for a failed pair.

    >>> judge_score01({"R2": 5, "R3": 5, "R8": 5, "R5": 5, "R4": 5}), judge_score01({"R2": 1, "R3": 3, "R8": 1, "R5": 1, "R4": 4})
    (1.0, 0.25)
    """
    if result is None:
        return None
    mean = sum(result[a] for a in ASPECTS) / len(ASPECTS)
    return min(1.0, max(0.0, (mean - 1.0) / 4.0))


class JudgeScorer:
    """Scores (prediction, reference, task) caption pairs in [0, 1] with the leaderboard judge.

    Args:
        judge: a :class:`mvbench.eval.judge.Judge` (any ``complete`` callable; tests use fakes).
        aclose: closes the judge's client (its connections live in the scorer's event loop, so
            :meth:`close` runs it there).
    """

    def __init__(self, judge: Any, aclose: Any = None):
        self.judge = judge
        self._aclose = aclose
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: JudgeConfig) -> "JudgeScorer":
        """A scorer calling ``config.model`` on ``config.base_url`` (OpenAI-compatible), cached.

        Raises:
            InputError: no ``base_url`` and no ``OPENAI_API_KEY``.
        """
        from mvbench.eval.judge import Judge
        from mvbench.llm.cache import ResponseCache
        from mvbench.llm.openai_client import OpenAIChatClient
        from mvbench.llm.retry import ClientOptions

        # The judge retries a pair itself (as the official scorer); the client must not multiply that.
        client = OpenAIChatClient(config.model, ClientOptions(base_url=config.base_url, timeout_s=config.timeout_s,
                                                              max_retries=0, concurrency=config.concurrency))
        directory = default_judge_cache() if config.cache_dir == AUTO_CACHE else config.cache_dir
        cache = ResponseCache(Path(directory).expanduser()) if directory else None
        judge = Judge(client.complete, model=config.model, cache=cache, max_attempts=config.max_attempts,
                      concurrency=config.concurrency, backoff=0.5)
        return cls(judge, aclose=client.aclose)

    def submit(self, items: list[tuple[str, str, str]]) -> Future:
        """Start judging pairs concurrently in the judge's thread; the future gives :meth:`score`'s list.

        The caller can compute other rewards meanwhile (the judge's latency then hides behind them).
        """
        future: Future = Future()
        if not items:
            future.set_result([])
            return future
        inner = asyncio.run_coroutine_threadsafe(_tuned(self.judge.ajudge_many(items)), self._event_loop())

        def done(f) -> None:
            try:
                future.set_result([judge_score01(r) for r in f.result()])
            except BaseException as e:  # surfaced by future.result()
                future.set_exception(e)

        inner.add_done_callback(done)
        return future

    def score(self, items: list[tuple[str, str, str]]) -> list[float | None]:
        """Judge pairs concurrently; results in input order, None where every attempt failed.

        Args:
            items: (prediction, reference, task key ``vs``/``rc``/``dvc``).
        """
        return self.submit(items).result()

    def info(self) -> dict:
        """The judge's model, prompt version and counters."""
        return self.judge.info()

    def close(self) -> None:
        """Close the judge's client in its event loop, stop and close that loop, close the reply cache."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None:
            if self._aclose is not None:
                asyncio.run_coroutine_threadsafe(self._aclose(), loop).result(timeout=60)
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout=60)
            if not loop.is_running():
                loop.close()
        close = getattr(self.judge, "close", None)
        if close is not None:
            close()

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="mvbench-judge", daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop
