"""``mvbench eval``: answer every sample with a backend, persist, then score.

Order of work, each step safe to interrupt:

1. load and filter the records (:mod:`mvbench.eval.data`), build one request per record;
2. skip samples already answered in ``OUT/predictions.jsonl`` (resume after kill -9 asks only for
   what is missing; failed samples and empty answers are retried);
3. answer the rest concurrently (``concurrency`` in flight), each answer looked up in / stored to
   the content-keyed response cache and appended + fsynced to ``predictions.jsonl`` the moment it
   arrives; a request that fails after the backend's retries is recorded as a failure;
4. score the answered samples with the leaderboard metrics (failures are counted, never scored as
   wrong answers), optionally with the LLM judge;
5. write ``results.json`` (metrics + fingerprint), ``samples_<task>.jsonl`` and ``submission.json``.

A run is *complete* only when every sample has a non-empty answer. Failed samples and empty
answers are scored as empty answers (as the leaderboard scores the submission), listed in
``results.json`` and make the run incomplete. A run that stops early (the backend kept failing)
still writes every output, marked incomplete with the reason and the failures, then raises.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mvbench.eval.answering import RunAborted, answer_all
from mvbench.eval.backends.base import GenerationParams
from mvbench.eval.backends.factory import ServeOptions, open_backend
from mvbench.eval.data import EvalData, FrameResolver, load_eval_data
from mvbench.eval.outputs import write_eval_outputs
from mvbench.eval.predictions import PredictionStore
from mvbench.eval.requests import build_request
from mvbench.eval.run_dir import claim_out_dir, run_identity

from mvbench.errors import InputError
from mvbench.inference import FRAME_ENCODINGS
from mvbench.llm.cache import ResponseCache, cache_root
from mvbench.llm.retry import ClientOptions
from mvbench.models import TRAIN_CONFIG_FILE, ModelSpec, resolve_model
from mvbench.redact import safe_url

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$MVBENCH_CACHE`` or ``~/.cache/mvbench/responses``."""
    return cache_root("responses")


@dataclass
class EvalConfig:
    """Everything ``mvbench eval`` needs.

    Args:
        data: ``official-test`` (the public test set, fetched from the Hub), built dataset folder,
            official JSON file, or Hub dataset id.
        model: registry alias, local checkpoint, Hub id, ``openai:NAME``/``gemini:NAME``, or ``baseline:prior``.
        out_dir: where predictions and results go.
        backend: override the backend kind (``vllm``, ``openai``, ``gemini``, ``hf``).
        base_url: an already running OpenAI-compatible (or Gemini) endpoint.
        frames_root: folder of the official test frames, for official JSON input.
        split / tasks / sources / limit: what to evaluate (limit is per task).
        prompt_mode: ``zeroshot`` or ``oneshot``.
        concurrency: requests in flight.
        seed: sampling seed (kept in the cache key).
        frames_as / max_pixels / min_pixels / max_tokens: override the model's serving defaults.
        video_timing: temporal positions of a video: ``official`` (default; the leaderboard's runs:
            2 fps for every video) or ``record`` (each record's own fps); see
            :func:`mvbench.inference.timing_fps`.
        frame_encoding: how frames are encoded for a model server: ``png`` (lossless, default) or
            ``jpeg`` (q95, ~4x smaller); see :data:`mvbench.inference.DEFAULT_FRAME_ENCODING`.
        judge / judge_base_url / no_judge: the caption judge (default ``gpt-4.1`` when an API key is
            set; ``no_judge`` skips it and says so in the results).
        cache_dir: the response cache (shared across runs); None disables caching.
        timeout_s / max_retries: per request.
        mode: metric mode; ``leaderboard`` equals the official evaluator.
        overwrite: discard outputs already in ``out_dir`` (by default a run resumes them, and
            refuses to when they came from another model, data file or generation settings).
        vllm_python / vllm_args: for a launched vLLM, the Python that runs it and extra server flags.
        abort_after: stop after this many consecutive failed requests (0: never); default
            ``max(16, 2 * concurrency)``.
        data_revision: for ``official-test`` and Hub ids, the branch, tag or commit to fetch.
        tp / dp: tensor / data parallel size of a launched vLLM (default: the model's, 1).
    """

    data: str
    model: str
    out_dir: Path
    backend: str | None = None
    base_url: str | None = None
    frames_root: str | None = None
    split: str = "test"
    tasks: list[str] | None = None
    sources: list[str] | None = None
    limit: int | None = None
    prompt_mode: str = "zeroshot"
    concurrency: int = 8
    seed: int = 0
    frames_as: str | None = None
    video_timing: str = "official"
    frame_encoding: str = "png"
    max_pixels: int | None = None
    min_pixels: int | None = None
    max_tokens: int | None = None
    judge: str | None = None
    judge_base_url: str | None = None
    no_judge: bool = False
    cache_dir: Path | None = field(default_factory=default_cache_dir)
    timeout_s: float = 300.0
    max_retries: int = 5
    mode: str = "leaderboard"
    overwrite: bool = False
    vllm_python: str | None = None
    vllm_args: tuple[str, ...] = ()
    abort_after: int | None = None
    data_revision: str | None = None
    tp: int | None = None
    dp: int | None = None

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.prompt_mode not in ("zeroshot", "oneshot"):
            raise ValueError("prompt_mode must be 'zeroshot' or 'oneshot'")
        if self.no_judge and (self.judge or self.judge_base_url):
            raise ValueError("--no-judge conflicts with --judge/--judge-base-url; drop one")
        if self.judge_base_url and not self.judge:
            raise ValueError("--judge-base-url needs --judge: name the model that server serves")
        if self.frames_as not in (None, "video", "images"):
            raise ValueError("frames_as must be 'video' or 'images'")
        if self.video_timing not in ("official", "record"):
            raise ValueError("video_timing must be 'official' or 'record'")
        if self.frame_encoding not in FRAME_ENCODINGS:
            raise ValueError(f"frame_encoding must be one of {', '.join(FRAME_ENCODINGS)}")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1 (samples per task)")
        for name in ("max_pixels", "min_pixels", "max_tokens"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.max_pixels and self.min_pixels and self.min_pixels > self.max_pixels:
            raise ValueError("min_pixels must not exceed max_pixels")
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0) or self.max_retries < 0:
            raise ValueError("timeout must be a finite number > 0 and max_retries >= 0")
        if (self.tp is not None and self.tp < 1) or (self.dp is not None and self.dp < 1):
            raise ValueError("--tp and --dp must be >= 1")
        if self.abort_after is None:  # a dead server stops the run after this many failures in a row
            self.abort_after = max(16, 2 * self.concurrency)


    def to_dict(self) -> dict:
        """The config as plain JSON-able values."""
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        d["cache_dir"] = str(self.cache_dir) if self.cache_dir else None
        d["base_url"], d["judge_base_url"] = safe_url(self.base_url), safe_url(self.judge_base_url)  # no credentials
        return d


def resolve_params(cfg: EvalConfig) -> tuple[ModelSpec, GenerationParams]:
    """The model spec and the generation params after the config's overrides.

    Raises:
        InputError: an unknown model name (listing the known aliases), or ``--tp``/``--dp`` for a
            model that is not served by a vLLM this run launches.
    """
    spec = resolve_model(cfg.model, backend=cfg.backend)  # type: ignore[arg-type]
    if cfg.tp is not None or cfg.dp is not None:
        if spec.backend != "vllm" or cfg.base_url:
            raise InputError("--tp/--dp set the parallelism of a vLLM server that mvbench launches; drop them "
                             "with --base-url or a non-vLLM backend", record=cfg.model)
        spec = replace(spec, tensor_parallel_size=cfg.tp or spec.tensor_parallel_size,
                       data_parallel_size=cfg.dp or spec.data_parallel_size)
    params = spec.generation_params(seed=cfg.seed)
    overrides = {k: v for k, v in (("frames_as", cfg.frames_as), ("video_timing", cfg.video_timing),
                                   ("frame_encoding", cfg.frame_encoding), ("max_pixels", cfg.max_pixels),
                                   ("min_pixels", cfg.min_pixels), ("max_tokens", cfg.max_tokens)) if v is not None}
    return spec, replace(params, **overrides)


def make_judge(cfg: EvalConfig):
    """The caption judge the config asks for, or None (``--no-judge``, or no judge configured).

    Built before any generation, so a judge that cannot work fails the run before paid calls.

    Raises:
        InputError: ``--judge`` names an OpenAI model but ``OPENAI_API_KEY`` is not set.
    """
    if cfg.no_judge:
        return None
    if not cfg.judge_base_url and not os.environ.get("OPENAI_API_KEY"):
        if cfg.judge:
            raise InputError(f"--judge {cfg.judge} needs OPENAI_API_KEY, or --judge-base-url for a local "
                             "server; or pass --no-judge")
        log.warning("no judge: set OPENAI_API_KEY, or pass --judge and --judge-base-url (a local "
                    "OpenAI-compatible server), or --no-judge; DVC/VS/RC llm scores are left out")
        return None
    from mvbench.eval.judge import DEFAULT_MODEL, connect_judge

    return connect_judge(cfg.judge or DEFAULT_MODEL, cfg.judge_base_url, timeout_s=cfg.timeout_s,
                         concurrency=cfg.concurrency,
                         cache_dir=cfg.cache_dir.parent / "judge" if cfg.cache_dir else None)



def trained_video_mismatch(model: str, params: GenerationParams) -> list[str]:
    """How this evaluation's video inputs differ from those a local checkpoint was trained on.

    Reads the checkpoint's :data:`~mvbench.models.TRAIN_CONFIG_FILE` (``mvbench train`` writes it
    into ``OUT/final`` and every ``checkpoint-N``); a model that is not such a folder gives none.

    Returns:
        ``"key: trained X, evaluated Y"`` per differing setting (``video_timing``, ``max_pixels``,
        ``min_pixels``, ``frames_as``).
    """
    import yaml

    path = Path(model).expanduser() / TRAIN_CONFIG_FILE
    if not path.is_file():
        return []
    try:
        video = yaml.safe_load(path.read_text(encoding="utf-8"))["config"]["video"]
        trained = {k: video[k] for k in ("video_timing", "max_pixels", "min_pixels")}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError) as e:
        log.warning("%s: cannot read the training's video settings (%s: %s)", path, type(e).__name__, e)
        return []
    trained["frames_as"] = "video"  # training feeds the frames as one video
    return [f"{k}: trained {v}, evaluated {getattr(params, k)}" for k, v in trained.items() if getattr(params, k) != v]


def run_eval(cfg: EvalConfig, progress_factory: Any = None) -> dict[str, Any]:
    """Run one evaluation end to end; return the results dict (also written to ``results.json``).

    Raises:
        InputError: bad data, frames, model names or output folder (before any request is sent).
        ServerError: the backend could not be used, or kept failing (answers so far are saved).
    """
    spec, params = resolve_params(cfg)
    mismatch = trained_video_mismatch(spec.model, params)
    if mismatch:
        log.warning("%s was trained on other video inputs (%s): the model is evaluated out of distribution; "
                    "pass the training's --video-timing/--max-pixels/--min-pixels/--frames-as",
                    spec.model, "; ".join(mismatch))
    if spec.backend == "vllm" and not cfg.base_url:  # before any download: vLLM importable, GPUs for --tp/--dp
        from mvbench.eval.vllm_launcher import launch_preflight

        launch_preflight(spec, python=cfg.vllm_python)
    data = load_eval_data(cfg.data, frames_root=cfg.frames_root, split=cfg.split, tasks=cfg.tasks,
                          sources=cfg.sources, limit=cfg.limit, revision=cfg.data_revision)
    judge = make_judge(cfg)
    try:
        return _run(cfg, data, spec, params, judge, progress_factory)
    finally:
        if judge is not None:
            judge.close()  # its reply cache


def _run(cfg: EvalConfig, data: EvalData, spec: ModelSpec, params: Any, judge: Any,
         progress_factory: Any) -> dict[str, Any]:
    """Answer, persist and score (``run_eval`` after the judge is made); every file is closed on the way out."""
    resolver = FrameResolver(data.base_dir, data.frames_root)
    claim_out_dir(cfg.out_dir, run_identity(cfg, spec, params, (data.provenance or {}).get("commit")),
                  cfg.overwrite)
    store = PredictionStore(cfg.out_dir / "predictions.jsonl")
    cache = None
    try:
        pending = [r for r in data.records if not store.done(r.uid)]
        work = [(build_request(r, resolver, params, cfg.prompt_mode, data.positions[r.uid]), list(r.video))
                for r in pending]
        log.info("%d samples, %d already answered, %d to request", len(data.records),
                 len(data.records) - len(pending), len(pending))
        cache = ResponseCache(cfg.cache_dir) if cfg.cache_dir else None
        t0 = time.perf_counter()

        async def go() -> tuple[dict[str, int], dict, RunAborted | None]:
            serve = ServeOptions(base_url=cfg.base_url, log_dir=cfg.out_dir, frames_as=params.frames_as,
                                 client=ClientOptions(timeout_s=cfg.timeout_s, max_retries=cfg.max_retries,
                                                      concurrency=cfg.concurrency),
                                 vllm_python=cfg.vllm_python, vllm_extra_args=tuple(cfg.vllm_args))
            async with open_backend(spec, serve) as session:
                fingerprint = session.backend.fingerprint()
                advance = progress_factory(len(work)) if progress_factory and work else None
                try:
                    counts = await answer_all(session.backend, work, store, cache, cfg.concurrency,
                                              cfg.abort_after or 0, advance, session.diagnose)
                except RunAborted as e:
                    return e.counts, fingerprint, e
                return counts, fingerprint, None

        counts, fingerprint, aborted = asyncio.run(go())
    finally:
        store.close()
        if cache is not None:
            cache.close()
    elapsed = time.perf_counter() - t0
    if aborted is not None:
        # Every output is written, marked incomplete with the reason and the failures (no judge
        # calls for a failed run), then the run still fails.
        write_eval_outputs(cfg, data, store, spec, params, fingerprint, counts, elapsed, None,
                           aborted=str(aborted))
        raise RunAborted(f"{aborted}; {cfg.out_dir / 'results.json'} lists the failures (marked incomplete)",
                         aborted.counts)
    return write_eval_outputs(cfg, data, store, spec, params, fingerprint, counts, elapsed, judge)


__all__ = ["EvalConfig", "run_eval", "make_judge", "resolve_params", "EvalData"]
