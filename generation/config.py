"""The options of ``mvbench generate`` (:class:`GenerateConfig`) and the two writer slots."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mvbench.builders.annotations import CAPTION_TASKS
from mvbench.llm.cache import cache_root
from mvbench.records import check_generator

__all__ = ["CAPTION_TASKS", "DETAILS", "VALIDATOR_MAX_TOKENS", "GenerateConfig", "Writer", "default_cache_dir"]
DETAILS = ("low", "high", "auto")
VALIDATOR_MAX_TOKENS = 16  # the validator answers two lines, "A: n" and "B: m"


def default_cache_dir() -> Path:
    """``$MVBENCH_CACHE/generation`` (default ``~/.cache/mvbench/generation``): kept across runs."""
    return cache_root("generation")


@dataclass(frozen=True)
class Writer:
    """One writer slot: ``gpt`` answers go to ``*_gpt`` records, ``gemini`` ones to ``*_gemini``.

    Args:
        variant: ``gpt`` or ``gemini`` (the qa_type suffix).
        provider: ``openai`` (any OpenAI-compatible server) or ``gemini`` (google-genai).
        model: the model id sent to the server (and written as the records' ``generator``).
        base_url: the endpoint; None for the provider's own.
    """

    variant: str
    provider: str
    model: str
    base_url: str | None = None


@dataclass
class GenerateConfig:
    """Everything ``mvbench generate`` needs.

    Args:
        dataset: a built dataset folder.
        out: where the generated dataset goes (default: ``dataset`` itself, updated in place).
        sources / tasks: only these sources (builder names or data_sources) and caption tasks.
        limit: at most this many instances per (source, task).
        estimate: print calls, images, tokens and cost per provider, then stop (no call made).
        budget_usd: stop cleanly once the next call could take the spend past this (all runs
            into ``out`` count, validator calls included; a call reserves its upper-bound cost just
            before it is sent, a batch instance both of its calls', and money a call did not use
            comes back for the next ones).
        gpt_model / gemini_model: the two writers.
        openai_base_url / gemini_base_url: their endpoints (default ``$OPENAI_BASE_URL`` /
            ``$GOOGLE_GEMINI_BASE_URL``, as the SDKs read them; None: the providers' own).
        temperature / max_tokens / seed: decoding.
        frames_per_call / max_side / image_detail: frames per request, their longest side in
            pixels, and OpenAI's ``detail`` (``low``, ``high``, ``auto``).
        gemini_thinking_budget: Gemini thinking tokens (0: off; None: the model's default).
        concurrency / timeout_s / max_retries / retry_base_delay_s: per writer (the first backoff
            doubles per retry; a 429/503's Retry-After replaces it).
        batch: use the OpenAI Batch API and Gemini batch mode (about half the price).
        poll_interval_s / batch_max_requests / batch_max_bytes / gemini_inline_bytes /
            max_requeues: batch jobs' polling, size limits, Gemini's inline-vs-file limit, and how
            many times failed lines are resubmitted in one run.
        agreement_threshold: reject a pair whose MiniLM cosine is below it (the paper's 0.3).
        min_mention_recall: share of the annotation's labels an answer must mention.
        dvc_min_iou: every annotated DVC segment must be matched by an answer segment this well.
        validator_model / validator_base_url / validator_min_score: the optional LLM validator.
        cache_dir: the response cache (None: no cache; the run's journal still prevents repeats).
        prices: a price table replacing the built-in ``generation/prices.toml``.
        raw_roots: raw roots per source, for datasets built without annotation files.
    """

    dataset: Path
    out: Path | None = None
    sources: tuple[str, ...] | None = None
    tasks: tuple[str, ...] | None = None
    limit: int | None = None
    estimate: bool = False
    budget_usd: float | None = None
    gpt_model: str = "gpt-4.1"
    gemini_model: str = "gemini-2.5-flash"
    openai_base_url: str | None = field(default_factory=lambda: os.environ.get("OPENAI_BASE_URL") or None)
    gemini_base_url: str | None = field(default_factory=lambda: os.environ.get("GOOGLE_GEMINI_BASE_URL") or None)
    temperature: float = 0.0
    max_tokens: int = 1024
    seed: int | None = None
    frames_per_call: int = 16
    max_side: int = 512
    image_detail: str = "auto"
    gemini_thinking_budget: int | None = 0
    concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 5
    retry_base_delay_s: float = 1.0
    batch: bool = False
    poll_interval_s: float = 30.0
    batch_max_requests: int = 2000
    batch_max_bytes: int = 150_000_000
    gemini_inline_bytes: int = 15_000_000
    max_requeues: int = 2
    agreement_threshold: float = 0.3
    min_mention_recall: float = 0.5
    dvc_min_iou: float = 0.5
    validator_model: str | None = None
    validator_base_url: str | None = None
    validator_min_score: int = 3
    cache_dir: Path | None = field(default_factory=default_cache_dir)
    prices: Path | None = None
    raw_roots: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dataset = Path(self.dataset)
        self.out = Path(self.out) if self.out is not None else self.dataset
        if self.tasks is not None:
            self.tasks = tuple(t.upper() for t in self.tasks)
            bad = [t for t in self.tasks if t not in CAPTION_TASKS]
            if bad:
                raise ValueError(f"--tasks takes caption tasks only ({', '.join(CAPTION_TASKS)}), not {bad}")
        if self.limit is not None and self.limit < 1:
            raise ValueError("--limit must be >= 1 (instances per source and task)")
        if self.budget_usd is not None and self.budget_usd <= 0:
            raise ValueError("--budget-usd must be > 0")
        if self.image_detail not in DETAILS:
            raise ValueError(f"--image-detail must be one of {DETAILS}")
        if self.frames_per_call < 1 or self.max_side < 64:
            raise ValueError("--frames-per-call must be >= 1 and --max-side >= 64")
        if self.max_tokens < 16:
            raise ValueError("--max-tokens must be >= 16")
        if self.concurrency < 1 or self.timeout_s <= 0 or self.max_retries < 0:
            raise ValueError("--concurrency must be >= 1, --timeout > 0 and --max-retries >= 0")
        if not 0.0 <= self.agreement_threshold <= 1.0 or not 0.0 <= self.min_mention_recall <= 1.0:
            raise ValueError("--agreement-threshold and --min-mention-recall must be in [0, 1]")
        if not 0.0 < self.dvc_min_iou <= 1.0:
            raise ValueError("--dvc-min-iou must be in (0, 1]")
        if self.validator_base_url and not self.validator_model:
            raise ValueError("--validator-base-url needs --validator: name the model that server serves")
        if not 1 <= self.validator_min_score <= 5:
            raise ValueError("--validator-min-score must be in 1..5")
        if self.poll_interval_s <= 0 or self.batch_max_requests < 1 or self.max_requeues < 0:
            raise ValueError("--poll-interval must be > 0, --max-requeues >= 0 and batch_max_requests >= 1")
        for flag, model in (("--gpt-model", self.gpt_model), ("--gemini-model", self.gemini_model),
                            ("--validator", self.validator_model)):
            # checked before any call: a model id that cannot name a record would be paid for, then refused
            if model is not None and (check_generator(model) is not None or model in ("template", "official")):
                raise ValueError(f"{flag} {model!r} is not a usable model id (records name their writer by it: "
                                 "no whitespace or control characters, at most 200 characters, not 'template' "
                                 "or 'official')")
        if self.gpt_model == self.gemini_model and self.openai_base_url == self.gemini_base_url:
            raise ValueError("the two writers are the same model: dual-model agreement needs two different ones")

    @property
    def writers(self) -> list[Writer]:
        """The GPT slot and the Gemini slot."""
        return [Writer("gpt", "openai", self.gpt_model, self.openai_base_url),
                Writer("gemini", "gemini", self.gemini_model, self.gemini_base_url)]

    @property
    def validator_writer(self) -> Writer | None:
        """The optional LLM validator, as a writer slot of its own (None without ``--validator``)."""
        if not self.validator_model:
            return None
        return Writer("validator", "openai", self.validator_model, self.validator_base_url)

    def params(self) -> dict:
        """The options that change an answer, of both writers (recorded in the manifest)."""
        return {"temperature": float(self.temperature), "max_tokens": self.max_tokens, "seed": self.seed,
                "frames_per_call": self.frames_per_call, "max_side": self.max_side,
                "image_detail": self.image_detail, "gemini_thinking_budget": self.gemini_thinking_budget}

    def writer_params(self, provider: str) -> dict:
        """The options that change one provider's answers (they enter its calls' identity): the
        decoding options, plus OpenAI's ``image_detail`` or Gemini's thinking budget, never the other's.
        (Frames and their size enter through the rendered request, see :func:`~.plan.call_id`.)"""
        out = {"temperature": float(self.temperature), "max_tokens": self.max_tokens, "seed": self.seed}
        if provider == "openai":
            out["image_detail"] = self.image_detail
        else:
            out["gemini_thinking_budget"] = self.gemini_thinking_budget
        return out

    def thresholds(self) -> dict:
        """The validation thresholds (recorded in the manifest)."""
        return {"agreement": self.agreement_threshold, "min_mention_recall": self.min_mention_recall,
                "dvc_min_iou": self.dvc_min_iou,
                "validator": {"model": self.validator_model, "min_score": self.validator_min_score}
                if self.validator_model else None}
