"""Shared test fixtures that other packages' tests (and training smoke runs) import.

See :mod:`mvbench.testing.tiny_qwen` for tiny, offline Qwen models and tokenizers.
"""

from mvbench.testing.tiny_qwen import (
    SPECIAL_TOKENS,
    build_tiny_qwen2_5_vl,
    build_tiny_qwen2_text,
    build_tiny_tokenizer,
)

__all__ = ["SPECIAL_TOKENS", "build_tiny_qwen2_5_vl", "build_tiny_qwen2_text", "build_tiny_tokenizer"]
