"""Open the backend a :class:`~mvbench.models.ModelSpec` asks for, check it works, and always release it.

Before any sample is sent the backend is checked once, so a wrong address, a wrong model name or a
model that cannot load fails the run at once with one clear message rather than sample by sample:

- OpenAI-compatible servers (``--base-url`` or a launched vLLM): ``GET /v1/models`` must answer;
  the model name sent is the spec's served name if the server lists it, else the Hub id if listed,
  else the only model listed (with a warning); otherwise the run stops listing what the server has.
- ``hf``: the checkpoint is loaded up front.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from mvbench.errors import ServerError
from mvbench.redact import register_url_secrets, safe_url
from mvbench.eval.backends.base import Backend
from mvbench.inference import FramesAs
from mvbench.llm.retry import ClientOptions
from mvbench.models import ModelSpec

log = logging.getLogger(__name__)
# With frames sent as an image list, vLLM must accept one image per frame plus the RC frame.
IMAGE_LIST_LIMIT = 1024


@dataclass
class BackendSession:
    """A ready backend, and a way to explain its failures (a crashed vLLM's log tail)."""

    backend: Backend
    diagnose: Callable[[], str | None]


async def served_model_name(base_url: str, spec: ModelSpec, timeout_s: float = 30.0) -> str:
    """The model name to send to an OpenAI-compatible server (see the module docstring).

    Raises:
        ServerError: the server cannot be reached, or it serves none of the candidate names.
    """
    register_url_secrets(base_url)  # httpx errors quote the URL: its credentials are masked
    where = safe_url(base_url)
    url = base_url.rstrip("/") + "/models"
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            resp = await client.get(url)
            resp.raise_for_status()
            ids = [m.get("id") for m in resp.json().get("data", []) if isinstance(m, dict)]
    except (httpx.HTTPError, ValueError) as e:
        raise ServerError(f"cannot use the server at {where}: GET {safe_url(url)} failed "
                          f"({type(e).__name__}: {e})") from None
    for name in (spec.served_name, spec.model):
        if name in ids:
            return name
    if len(ids) == 1:
        log.warning("the server at %s serves %r, not %r: using it", where, ids[0], spec.served_name)
        return ids[0]
    raise ServerError(f"the server at {where} serves {ids or 'no model'}, not {spec.served_name!r}; "
                      "pass --model with one of those names")


@dataclass(frozen=True)
class ServeOptions:
    """How to reach or launch the model a :class:`~mvbench.models.ModelSpec` names.

    Args:
        base_url: an already running OpenAI-compatible (or Gemini) endpoint; for ``vllm``
            without it, a server is launched.
        log_dir: where a launched vLLM writes ``vllm.log``.
        client: timeout, retries and concurrency of the API client (its ``base_url`` is set
            from ``base_url`` or the launched server).
        frames_as: how frames are sent (a launched vLLM then accepts an image list).
        vllm_python: run a launched vLLM as ``PYTHON -m vllm.entrypoints.openai.api_server``.
        vllm_extra_args: extra flags for a launched vLLM.
    """

    base_url: str | None = None
    log_dir: Path | None = None
    client: ClientOptions = ClientOptions()
    frames_as: FramesAs = "video"
    vllm_python: str | None = None
    vllm_extra_args: tuple[str, ...] = ()


@contextlib.asynccontextmanager
async def open_backend(spec: ModelSpec, serve: ServeOptions = ServeOptions()) -> AsyncIterator[BackendSession]:
    """Yield a checked :class:`BackendSession` for ``spec``; a launched vLLM server is always shut down.

    - ``baseline`` → the rule-based prior baseline (no model).
    - ``hf`` → in-process transformers on the local checkpoint.
    - ``openai`` → the OpenAI API, or any compatible server at ``serve.base_url``.
    - ``gemini`` → google-genai (``serve.base_url`` overrides the endpoint).
    - ``vllm`` → with ``serve.base_url``: that server; without: ``vllm serve`` launched as a
      subprocess with the spec's flags (image limits raised for ``frames_as="images"``), its log
      streamed to ``log_dir/vllm.log``.
    """
    server = None
    backend: Backend
    base_url = serve.base_url
    if spec.backend == "baseline":
        from mvbench.eval.backends.baseline import PriorBaselineBackend

        backend = PriorBaselineBackend(spec.model)
    elif spec.backend == "hf":
        from mvbench.eval.backends.hf_backend import HFBackend

        backend = HFBackend(spec.model)
        try:
            await asyncio.to_thread(backend.load)
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            raise ServerError(f"cannot load {spec.model}: {type(e).__name__}: {e}") from None
    elif spec.backend == "gemini":
        from mvbench.eval.backends.gemini_backend import GeminiBackend

        backend = GeminiBackend(spec.model, dataclasses.replace(serve.client, base_url=base_url))
    else:
        from mvbench.eval.backends.openai_backend import OpenAIBackend

        served = spec.model if spec.backend == "openai" else spec.served_name
        revision = None
        if spec.backend != "openai" and Path(spec.model).expanduser().is_dir():  # a local checkpoint served by vLLM
            from mvbench.eval.model_revision import local_model_revision

            revision = local_model_revision(Path(spec.model).expanduser())
        if spec.backend == "vllm" and base_url is None:
            from mvbench.eval.vllm_launcher import VLLMServer

            if serve.frames_as == "images":
                spec = dataclasses.replace(spec, limit_mm_per_prompt={"image": IMAGE_LIST_LIMIT})
            server = VLLMServer(spec, log_path=(serve.log_dir or Path(".")) / "vllm.log", python=serve.vllm_python,
                                extra_args=serve.vllm_extra_args)
            await server.__aenter__()
            base_url = server.base_url
        try:
            if base_url is not None:
                served = await served_model_name(base_url, spec)
        except BaseException:
            if server is not None:
                await server.__aexit__(None, None, None)
            raise
        backend = OpenAIBackend(served, dataclasses.replace(serve.client, base_url=base_url),
                                mm_processor_kwargs=spec.backend == "vllm", revision=revision)

    def diagnose() -> str | None:
        if server is not None and server.process is not None and server.process.poll() is not None:
            from mvbench.eval.vllm_launcher import log_tail

            return (f"the vLLM server exited with code {server.process.returncode}; "
                    f"{server.log_path}: {log_tail(server.log_path)}")
        return None

    try:
        yield BackendSession(backend, diagnose)
    finally:
        try:
            await backend.aclose()
        finally:
            if server is not None:
                await server.__aexit__(None, None, None)
