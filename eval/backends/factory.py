"""Open the backend a :class:`~mvbench.models.ModelSpec` asks for, launching vLLM when needed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from mvbench.eval.backends.base import Backend
from mvbench.models import ModelSpec


@contextlib.asynccontextmanager
async def open_backend(spec: ModelSpec | None, *, model: str, base_url: str | None = None,
                       log_dir: Path | None = None, concurrency: int = 16, timeout_s: float = 300.0,
                       max_retries: int = 5, vllm_python: str | None = None,
                       vllm_extra_args: tuple[str, ...] = ()) -> AsyncIterator[Backend]:
    """Yield a ready backend and always release it (a launched vLLM server is shut down).

    - ``baseline:*`` → the rule-based prior baseline (no model).
    - ``hf`` → in-process transformers on the local checkpoint.
    - ``openai`` → the OpenAI API, or any compatible server at ``base_url``.
    - ``gemini`` → google-genai (``base_url`` overrides the endpoint).
    - ``vllm`` → with ``base_url``: that server; without: ``vllm serve`` launched as a subprocess
      with the spec's flags, its log streamed to ``log_dir/vllm.log``.
    """
    backend: Backend
    if model.startswith("baseline"):
        from mvbench.eval.backends.baseline import PriorBaselineBackend

        backend = PriorBaselineBackend(model)
        yield backend
        return
    assert spec is not None
    server = None
    if spec.backend == "hf":
        from mvbench.eval.backends.hf_backend import HFBackend

        backend = HFBackend(spec.model)
    elif spec.backend == "gemini":
        from mvbench.eval.backends.gemini_backend import GeminiBackend

        backend = GeminiBackend(spec.model, base_url=base_url, timeout_s=timeout_s, max_retries=max_retries,
                                concurrency=concurrency)
    else:
        from mvbench.eval.backends.openai_backend import OpenAIBackend

        served = spec.model if spec.backend == "openai" else spec.served_name
        if spec.backend == "vllm" and base_url is None:
            from mvbench.eval.vllm_launcher import VLLMServer

            log_path = (log_dir or Path(".")) / "vllm.log"
            server = VLLMServer(spec, log_path=log_path, python=vllm_python, extra_args=vllm_extra_args)
            await server.__aenter__()
            base_url = server.base_url
        backend = OpenAIBackend(served, base_url=base_url, timeout_s=timeout_s, max_retries=max_retries,
                                concurrency=concurrency, mm_processor_kwargs=spec.backend == "vllm")
    try:
        yield backend
    finally:
        try:
            await backend.aclose()
        finally:
            if server is not None:
                await server.__aexit__(None, None, None)
