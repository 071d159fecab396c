"""``mvbench eval``: answer every sample with a backend, persist, then score.

Order of work, each step safe to interrupt:

1. load and filter the records (:mod:`mvbench.eval.data`), build one request per record;
2. skip samples already answered in ``OUT/predictions.jsonl`` (resume after kill -9 asks only for
   what is missing; failed samples are retried);
3. answer the rest concurrently (``concurrency`` in flight), each answer looked up in / stored to
   the content-keyed response cache and appended + fsynced to ``predictions.jsonl`` the moment it
   arrives; a request that fails after the backend's retries is recorded as a failure;
4. score the answered samples with the leaderboard metrics (failures are counted, never scored as
   wrong answers), optionally with the LLM judge;
5. write ``results.json`` (metrics + fingerprint), ``samples_<task>.jsonl`` and ``submission.json``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mvbench.errors import InputError, MvbenchError
from mvbench.eval.backends.base import Backend, GenerationParams, GenerationRequest
from mvbench.eval.data import EvalData, FrameResolver, load_eval_data
from mvbench.eval.predictions import PredictionStore
from mvbench.eval.requests import build_request
from mvbench.llm.cache import ResponseCache, sha256_text

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$MVBENCH_CACHE`` or ``~/.cache/mvbench/responses``."""
    return Path(os.environ.get("MVBENCH_CACHE", Path.home() / ".cache" / "mvbench")) / "responses"


@dataclass
class EvalConfig:
    """Everything ``mvbench eval`` needs.

    Args:
        data: built dataset folder, official JSON file, or Hub dataset id.
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
        judge / judge_base_url / no_judge: the caption judge (default ``gpt-4.1`` when an API key is
            set; ``no_judge`` skips it and says so in the results).
        cache_dir: the response cache (shared across runs); None disables caching.
        timeout_s / max_retries: per request.
        mode: metric mode; ``leaderboard`` equals the official evaluator.
        overwrite: discard predictions already in ``out_dir`` (by default a run resumes them, and
            refuses to when they came from another model, data file or generation settings).
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

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.prompt_mode not in ("zeroshot", "oneshot"):
            raise ValueError("prompt_mode must be 'zeroshot' or 'oneshot'")
        if self.no_judge and (self.judge or self.judge_base_url):
            raise ValueError("--no-judge conflicts with --judge/--judge-base-url; drop one")
        if self.frames_as not in (None, "video", "images"):
            raise ValueError("frames_as must be 'video' or 'images'")


def resolve_params(cfg: EvalConfig) -> tuple[Any, GenerationParams]:
    """The model spec (None for baselines) and the generation params after the config's overrides."""
    spec = None
    params = GenerationParams(seed=cfg.seed)
    if not cfg.model.startswith("baseline"):
        from mvbench.models import resolve_model

        spec = resolve_model(cfg.model, backend=cfg.backend)  # type: ignore[arg-type]
        params = spec.generation_params(seed=cfg.seed)
    overrides = {k: v for k, v in (("frames_as", cfg.frames_as), ("max_pixels", cfg.max_pixels),
                                   ("min_pixels", cfg.min_pixels), ("max_tokens", cfg.max_tokens)) if v is not None}
    return spec, replace(params, **overrides)


def request_cache_key(fingerprint: dict, request: GenerationRequest, recorded_frames: list[str],
                      base: FrameResolver) -> str:
    """Content key of one generation: backend fingerprint, params, prompt, examples, frames, RC box.

    Frames enter by their recorded (dataset-relative) path and byte size, which is stable across
    machines and cheap; rebuilding frames with other content changes their size in practice.
    """
    sizes = [os.path.getsize(p) for p in request.frames]
    return ResponseCache.key(kind="generation", backend=fingerprint, params=request.params.to_dict(),
                             prompt=sha256_text(request.prompt), examples=[list(e) for e in request.examples],
                             frames=recorded_frames, frame_sizes=sizes, fps=request.fps,
                             rc_box=list(request.rc_box) if request.rc_box else None,
                             system=request.system)


async def _answer_all(backend: Backend, work: list[tuple[GenerationRequest, list[str]]], store: PredictionStore,
                      cache: ResponseCache | None, resolver: FrameResolver, concurrency: int,
                      progress: Any = None) -> dict[str, int]:
    sem = asyncio.Semaphore(concurrency)
    fingerprint = backend.fingerprint()
    counts = {"requested": 0, "cached": 0, "failed": 0}

    async def one(request: GenerationRequest, recorded: list[str]) -> None:
        key = request_cache_key(fingerprint, request, recorded, resolver) if cache is not None else None
        hit = cache.get(key) if cache is not None and key else None
        entry: dict[str, Any] = {"uid": request.uid, "qa_type": request.qa_type}
        if hit is not None:
            counts["cached"] += 1
            store.append(entry | {"prediction": hit, "error": None, "cached": True, "latency_s": 0.0})
        else:
            async with sem:
                t0 = time.perf_counter()
                counts["requested"] += 1
                try:
                    text = await backend.generate(request)
                except (MvbenchError, OSError, RuntimeError, ValueError) as e:
                    counts["failed"] += 1
                    log.warning("sample %s failed: %s", request.uid, e)
                    store.append(entry | {"prediction": None, "error": f"{type(e).__name__}: {e}",
                                          "cached": False, "latency_s": time.perf_counter() - t0})
                    text = None
                if text is not None:
                    store.append(entry | {"prediction": text, "error": None, "cached": False,
                                          "latency_s": time.perf_counter() - t0})
                    if cache is not None and key:
                        cache.put(key, text, {"uid": request.uid, "model": fingerprint.get("model")})
        if progress is not None:
            progress()

    await asyncio.gather(*(one(r, rec) for r, rec in work))
    return counts


def merged_record(record, prediction: str) -> dict:
    """The official evaluator's merged form of one answered sample."""
    return {"metadata": record.metadata, "qa_type": record.qa_type,
            "struc_info": record.struc_info if record.has_struc_info else [],
            "question": record.question, "gnd": record.answer or "", "answer": prediction,
            "data_source": record.data_source}


def make_judge(cfg: EvalConfig):
    """The caption judge the config asks for, or None (``--no-judge``, or no judge reachable)."""
    if cfg.no_judge:
        return None
    if not cfg.judge and not cfg.judge_base_url and not os.environ.get("OPENAI_API_KEY"):
        log.warning("no judge: set OPENAI_API_KEY, or pass --judge-base-url (a local OpenAI-compatible "
                    "server) or --no-judge; DVC/VS/RC llm scores are left out")
        return None
    from mvbench.eval.judge import Judge
    from mvbench.llm.openai_client import OpenAIChatClient

    model = cfg.judge or "gpt-4.1"
    # The judge retries a pair 5 times itself (as the official script); the client must not multiply that.
    client = OpenAIChatClient(model, base_url=cfg.judge_base_url, timeout_s=cfg.timeout_s, max_retries=0,
                              concurrency=cfg.concurrency)
    cache = ResponseCache(cfg.cache_dir.parent / "judge") if cfg.cache_dir else None
    return Judge(client.complete, model=model, cache=cache)


RUN_FILE = "run.json"


def run_identity(cfg: EvalConfig, params: GenerationParams) -> dict[str, Any]:
    """What must match for predictions in an output folder to be resumed: model, data, prompts, params.

    The task/source filters and ``--limit`` are left out on purpose: a larger selection resumes a
    smaller one. The server address is left out too (the same model moved to another port).
    """
    from mvbench import prompts

    return {"model": cfg.model, "backend": cfg.backend, "data": str(cfg.data), "split": cfg.split,
            "prompt_mode": cfg.prompt_mode, "generation_params": params.to_dict(),
            "prompts": prompts.prompt_hash()}


def claim_out_dir(cfg: EvalConfig, params: GenerationParams) -> None:
    """Record the run's identity in ``out_dir/run.json``; refuse to resume another run's predictions.

    Raises:
        InputError: the folder holds predictions of a different run (without ``overwrite``).
    """
    from mvbench.dataset_io import atomic_write_json, load_json

    identity = run_identity(cfg, params)
    run_file = cfg.out_dir / RUN_FILE
    predictions = cfg.out_dir / "predictions.jsonl"
    if cfg.overwrite:
        predictions.unlink(missing_ok=True)
    elif run_file.exists() and predictions.exists():
        previous = load_json(run_file)
        changed = sorted(k for k in identity if previous.get(k) != identity[k])
        if changed:
            raise InputError(f"holds predictions of another run (differs in {', '.join(changed)}); "
                             "use another --out, or --overwrite to discard them", cfg.out_dir)
    atomic_write_json(run_file, identity)


def run_eval(cfg: EvalConfig, progress_factory: Any = None) -> dict[str, Any]:
    """Run one evaluation end to end; return the results dict (also written to ``results.json``)."""
    from mvbench.eval.outputs import write_eval_outputs

    data = load_eval_data(cfg.data, frames_root=cfg.frames_root, split=cfg.split, tasks=cfg.tasks,
                          sources=cfg.sources, limit=cfg.limit)
    spec, params = resolve_params(cfg)
    resolver = FrameResolver(data.base_dir, data.frames_root)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    claim_out_dir(cfg, params)
    store = PredictionStore(cfg.out_dir / "predictions.jsonl")
    pending = [r for r in data.records if not store.done(r.uid)]
    work = [(build_request(r, resolver, params, cfg.prompt_mode, data.positions[r.uid]), list(r.video))
            for r in pending]
    log.info("%d samples, %d already answered, %d to request", len(data.records),
             len(data.records) - len(pending), len(pending))
    cache = ResponseCache(cfg.cache_dir) if cfg.cache_dir else None
    t0 = time.perf_counter()

    async def go() -> tuple[dict[str, int], dict]:
        from mvbench.eval.backends.factory import open_backend

        async with open_backend(spec, model=cfg.model, base_url=cfg.base_url, log_dir=cfg.out_dir,
                                concurrency=cfg.concurrency, timeout_s=cfg.timeout_s,
                                max_retries=cfg.max_retries) as backend:
            fingerprint = backend.fingerprint()
            advance = progress_factory(len(work)) if progress_factory and work else None
            counts = await _answer_all(backend, work, store, cache, resolver, cfg.concurrency, advance)
            return counts, fingerprint

    try:
        counts, fingerprint = asyncio.run(go())
    finally:
        store.close()
        if cache is not None:
            cache.close()
    elapsed = time.perf_counter() - t0
    return write_eval_outputs(cfg, data, store, spec, params, fingerprint, counts, elapsed, make_judge(cfg))


def config_dict(cfg: EvalConfig) -> dict:
    """The config as plain JSON-able values."""
    d = asdict(cfg)
    d["out_dir"] = str(cfg.out_dir)
    d["cache_dir"] = str(cfg.cache_dir) if cfg.cache_dir else None
    return d


__all__ = ["EvalConfig", "run_eval", "merged_record", "EvalData", "InputError"]
