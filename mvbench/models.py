"""The model registry: short aliases with their serving defaults.

``resolve_model`` turns what a user types (an alias, a local checkpoint directory, a Hugging Face
id, or ``openai:NAME`` / ``gemini:NAME``) into a :class:`ModelSpec` that the harness and the vLLM
launcher read. Defaults follow the official MedGRPO inference (medvidbench-format.md §8): per-frame
pixels 8·28·28 .. 48·28·28, greedy decoding, 256 new tokens, ``max_model_len`` 32768, frames sent
as one video.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from mvbench.errors import InputError
from mvbench.inference import (
    OFFICIAL_MAX_MODEL_LEN,
    OFFICIAL_MAX_PIXELS,
    OFFICIAL_MAX_TOKENS,
    OFFICIAL_MIN_PIXELS,
    FramesAs,
    GenerationParams,
)

BackendKind = Literal["vllm", "openai", "gemini", "hf", "baseline"]
BACKEND_KINDS: tuple[str, ...] = ("vllm", "openai", "gemini", "hf", "baseline")
# The rule-based prior baseline (no model; mvbench.eval.backends.baseline): the floor to beat.
PRIOR_BASELINE = "baseline:prior"
# The resolved training config `mvbench train` writes beside every checkpoint (``video:`` is what the
# model saw; `mvbench eval` warns when it evaluates the checkpoint on other video inputs).
TRAIN_CONFIG_FILE = "mvbench_train_config.yaml"

# owner/name as the Hub spells repository ids (letters, digits, '-', '_', '.').
_HF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _default_mm_limit() -> dict[str, int]:
    # One video (the sampled frames) plus one image (the RC start frame with its box).
    return {"image": 1, "video": 1}


@dataclass(frozen=True)
class ModelSpec:
    """A model and how to serve and query it.

    Args:
        model: what the backend loads or calls: a Hub id, a local directory, or an API model name.
        backend: ``vllm`` (OpenAI-compatible server we launch), ``openai``, ``gemini``, ``hf``
            (in-process transformers) or ``baseline`` (the rule-based prior baseline).
        alias: the registry alias this spec came from, if any.
        served_name: the name the vLLM server exposes (``--served-model-name``); defaults to the
            alias, or ``model``.
        max_pixels / min_pixels: per-frame pixel budget (Qwen's ``smart_resize``).
        temperature: 0 is greedy.
        max_tokens: new-token budget.
        max_model_len: vLLM context length.
        limit_mm_per_prompt: vLLM's per-prompt media limits; None omits the flag (text models).
        tensor_parallel_size / data_parallel_size: vLLM parallelism.
        dtype: vLLM/transformers dtype (``auto``, ``bfloat16``, ``float32``...).
        frames_as: send frames as one ``video`` or as an ``images`` list.
    """

    model: str
    backend: BackendKind = "vllm"
    alias: str | None = None
    served_name: str | None = None
    max_pixels: int = OFFICIAL_MAX_PIXELS
    min_pixels: int = OFFICIAL_MIN_PIXELS
    temperature: float = 0.0
    max_tokens: int = OFFICIAL_MAX_TOKENS
    max_model_len: int = OFFICIAL_MAX_MODEL_LEN
    limit_mm_per_prompt: dict[str, int] | None = field(default_factory=_default_mm_limit)
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    dtype: str = "auto"
    frames_as: FramesAs = "video"

    def __post_init__(self) -> None:
        if self.backend not in BACKEND_KINDS:
            raise InputError(f"unknown backend {self.backend!r}; expected one of {', '.join(BACKEND_KINDS)}",
                             record=self.model)
        if self.served_name is None:
            object.__setattr__(self, "served_name", self.alias or self.model)

    @property
    def is_local(self) -> bool:
        """True when ``model`` is an existing local directory."""
        return Path(self.model).is_dir()

    def generation_params(self, seed: int = 0) -> GenerationParams:
        """The request-level settings this spec implies.

        Args:
            seed: sampling seed (kept in the cache key even under greedy decoding).

        Returns:
            A :class:`GenerationParams` with this spec's decoding and vision settings.
        """
        return GenerationParams(temperature=self.temperature, max_tokens=self.max_tokens, seed=seed,
                                max_pixels=self.max_pixels, min_pixels=self.min_pixels,
                                frames_as=self.frames_as)

    def to_dict(self) -> dict:
        """Plain dict for fingerprints and ``results.json``."""
        from dataclasses import asdict

        return asdict(self)


# The registry. Full Hub ids resolve to the same entries (see ``resolve_model``).
MODEL_REGISTRY: dict[str, ModelSpec] = {
    "qwen2.5-vl-7b": ModelSpec(model="Qwen/Qwen2.5-VL-7B-Instruct", alias="qwen2.5-vl-7b"),
    "qwen3-vl-4b": ModelSpec(model="Qwen/Qwen3-VL-4B-Instruct", alias="qwen3-vl-4b"),
    "medgrpo-7b": ModelSpec(model="UII-AI/uAI-NEXUS-MedVLM-1.0a-7B-RL", alias="medgrpo-7b"),
    # API models take frames as an image list (they have no Qwen video input).
    "gpt-4.1": ModelSpec(model="gpt-4.1", backend="openai", alias="gpt-4.1", frames_as="images",
                         limit_mm_per_prompt=None),
    "gemini-2.5-flash": ModelSpec(model="gemini-2.5-flash", backend="gemini", alias="gemini-2.5-flash",
                                  frames_as="images", limit_mm_per_prompt=None),
    PRIOR_BASELINE: ModelSpec(model=PRIOR_BASELINE, backend="baseline", alias=PRIOR_BASELINE,
                              limit_mm_per_prompt=None),
}

_API_PREFIXES = ("openai", "gemini", "hf", "vllm")


def list_aliases() -> list[str]:
    """The registry's aliases, sorted."""
    return sorted(MODEL_REGISTRY)


def resolve_model(name_or_path: str, backend: BackendKind | None = None) -> ModelSpec:
    """Turn a model name into a :class:`ModelSpec`.

    Accepted, in this order: a registry alias (case-insensitive); the full Hub id of a registry
    entry (same spec as its alias); ``openai:NAME`` / ``gemini:NAME`` for any API model (and
    ``hf:`` / ``vllm:`` prefixes to pick the backend of a path or Hub id); an existing local
    directory (vLLM by default); any ``owner/name`` Hub id (vLLM by default).

    Args:
        name_or_path: what the user typed.
        backend: override the backend kind of the result (e.g. ``"hf"`` to run in process).

    Returns:
        The spec (registry defaults for known models, official defaults otherwise).

    Raises:
        InputError: an empty name, a bad prefix, or an unknown alias-looking name (with the
            closest aliases and the full list).
    """
    name = (name_or_path or "").strip()
    if not name:
        raise InputError("empty model name; give an alias, a local directory or a Hub id")
    spec = _lookup(name)
    if backend is not None:
        spec = replace(spec, backend=backend)
    return spec


def _lookup(name: str) -> ModelSpec:
    key = name.lower()
    if key in MODEL_REGISTRY:
        return MODEL_REGISTRY[key]
    if key.startswith("baseline"):
        raise InputError(f"unknown baseline {name!r}; the rule-based baseline is {PRIOR_BASELINE!r}")
    for spec in MODEL_REGISTRY.values():
        if spec.model.lower() == key:
            return spec
    prefix, sep, rest = name.partition(":")
    if sep and prefix.lower() in _API_PREFIXES and rest:
        kind = prefix.lower()
        if kind in ("openai", "gemini"):
            known = MODEL_REGISTRY.get(rest.lower())
            if known is not None and known.backend == kind:
                return known
            return ModelSpec(model=rest, backend=kind, frames_as="images", limit_mm_per_prompt=None)
        return replace(_lookup(rest), backend=kind)
    path = Path(name).expanduser()
    if path.is_dir():
        resolved = str(path.resolve())
        return ModelSpec(model=resolved, served_name=path.resolve().name)
    if _HF_ID.match(name):
        return ModelSpec(model=name)
    if "/" in name or name.startswith((".", "~")):
        raise InputError("model directory not found (and not a Hub id of the form owner/name)", path=name)
    close = difflib.get_close_matches(key, list_aliases(), n=3, cutoff=0.4)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise InputError(
        f"unknown model alias {name!r}.{hint} Known aliases: {', '.join(list_aliases())}. "
        "Or give a local directory, a Hub id (owner/name), or openai:NAME / gemini:NAME.")
