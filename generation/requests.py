"""Concrete requests: an instance's frames rendered once, then each writer's messages and cache key.

The clients (:mod:`mvbench.llm`) own the wire format, retries and the response cache; this module
only assembles what they send, identically in live and batch mode, so a batch result and a live
answer of the same call share one cache key. The key includes the writer's endpoint (credentials
stripped): an answer of a local or fake server registered under a provider's model name is never
replayed as that provider's.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from mvbench.llm.openai_client import OpenAIChatClient
from mvbench.llm.retry import Completion
from mvbench.redact import safe_url

from mvbench.generation.config import GenerateConfig
from mvbench.generation.enrich import render_frame
from mvbench.generation.plan import Call, Instance
from mvbench.generation.prompting import gemini_turns, openai_messages, render

BATCH_TOKEN_KEY = "mvbench_job"  # the OpenAI batch metadata key holding a job's token
FRAME_SETS_KEPT = 64
# Rendered frames kept for reuse: instances of one video share frames (clips overlap; DVC, VS and RC
# ask about the same stretches), and a frame with the same boxes renders to the same bytes.
RENDERED_FRAMES_KEPT = 2048


@dataclass
class Request:
    """One call ready to send: OpenAI ``messages`` or Gemini ``turns`` + ``system``, and its cache key.

    The one place that knows which client takes which form: :meth:`send` (live), :meth:`batch_item`
    (a line of a batch job), :func:`submit_job` and :func:`find_job`.
    """

    call: Call
    messages: list[dict] | None
    turns: list | None
    system: str
    params: dict[str, Any]
    cache_key: str | None
    cache_extra: dict[str, Any]
    sample_index: int | None

    async def send(self, client: Any) -> Completion:
        """Answer it live (the cache first; an empty answer is retried, then a ServerError)."""
        if self.messages is not None:
            return await client.call(self.messages, uid=self.call.uid, sample_index=self.sample_index,
                                     cache_extra=self.cache_extra, retry_empty=True, **self.params)
        return await client.call(self.turns, system=self.system, uid=self.call.uid, sample_index=self.sample_index,
                                 cache_extra=self.cache_extra, retry_empty=True, **self.params)

    def batch_item(self, client: Any) -> tuple[Any, int]:
        """``(what the client's submit_batch takes for this call, its size in bytes)``, keyed by call id."""
        if self.messages is not None:
            line = client.batch_line(self.call.call_id, self.messages, **self.params)
            return line, len(json.dumps(line, allow_nan=False))
        item = client.batch_request(self.call.call_id, self.turns, system=self.system, **self.params)
        return item, item.size


async def submit_job(client: Any, items: list[Any], token: str, gemini_inline_bytes: int) -> str:
    """Create one batch job of ``items`` (from :meth:`Request.batch_item`) labelled with ``token``.

    Raises:
        ServerError: the upload failed (no job); BatchCreateError: the creation failed.
    """
    if isinstance(client, OpenAIChatClient):
        return await client.submit_batch(items, {BATCH_TOKEN_KEY: token})
    return await client.submit_batch(items, token, inline_limit_bytes=gemini_inline_bytes)


async def find_job(client: Any, token: str) -> str | None:
    """The id of the batch job labelled with ``token`` (see :func:`submit_job`), or None."""
    if isinstance(client, OpenAIChatClient):
        return await client.find_batch({BATCH_TOKEN_KEY: token})
    return await client.find_batch(token)


def endpoint_of(base_url: str | None) -> str:
    """A writer's endpoint as it may be written anywhere (no credentials)."""
    return safe_url(base_url) if base_url else "provider default"


class RequestBuilder:
    """Builds requests; frames are rendered once per instance and shared by its two calls.

    Args:
        cfg: the run's options (frames, pixels, decoding).
        clients: variant → client (their ``cache_key`` keys the cache).
    """

    def __init__(self, cfg: GenerateConfig, clients: dict[str, Any]):
        self.cfg = cfg
        self.clients = clients
        self._frames: OrderedDict[str, list[tuple[float, bytes]]] = OrderedDict()
        self._rendered: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def frames(self, inst: Instance) -> list[tuple[float, bytes]]:
        """``(time from clip start, JPEG bytes)`` of the instance's annotated frames."""
        uid = inst.template.uid
        with self._lock:
            if uid in self._frames:
                self._frames.move_to_end(uid)
                return self._frames[uid]
        enr = inst.enrichment
        out = [(f.t_rel, self._render(f, enr.source_size)) for f in enr.frames]
        with self._lock:
            self._frames[uid] = out
            while len(self._frames) > FRAME_SETS_KEPT:
                self._frames.popitem(last=False)
        return out

    def _render_key(self, view, source_size: tuple[int, int] | None) -> tuple:
        return (str(view.path), tuple((b.label, b.target, tuple(b.box)) for b in view.boxes), source_size,
                self.cfg.max_side)

    def _render(self, view, source_size: tuple[int, int] | None) -> bytes:
        """One annotated frame's JPEG bytes, rendered once per (file, boxes, sizes)."""
        key = self._render_key(view, source_size)
        with self._lock:
            hit = self._rendered.get(key)
            if hit is not None:
                self._rendered.move_to_end(key)
                return hit
        data = render_frame(view, source_size, self.cfg.max_side)
        with self._lock:
            self._rendered[key] = data
            while len(self._rendered) > RENDERED_FRAMES_KEPT:
                self._rendered.popitem(last=False)
        return data

    def has_frames(self, inst: Instance) -> bool:
        """Whether the instance's frames are rendered already (then :meth:`build` is cheap)."""
        enr = inst.enrichment
        with self._lock:
            if inst.template.uid in self._frames:
                return True
            return all(self._render_key(f, enr.source_size) in self._rendered for f in enr.frames)

    def build(self, inst: Instance, call: Call) -> Request:
        """The request of one call (renders frames on first use: then CPU work, run it in a thread)."""
        cfg = self.cfg
        system, user = render(inst.enrichment, call.writer.variant)
        frames = self.frames(inst)
        client = self.clients[call.writer.variant]
        sample = sample_index(cfg)
        # answers of a local or fake server must never be replayed as the provider's: the endpoint
        # (credentials stripped) is part of the cache key
        extra = {"endpoint": endpoint_of(call.writer.base_url)}
        if call.writer.provider == "openai":
            messages = openai_messages(system, user, frames, cfg.image_detail)
            params: dict[str, Any] = {"temperature": float(cfg.temperature), "max_tokens": cfg.max_tokens}
            if cfg.seed is not None:
                params["seed"] = cfg.seed
            key = client.cache_key(messages, params, sample_index=sample, extra=extra) \
                if client.cache is not None else None
            return Request(call, messages, None, system, params, key, extra, sample)
        turns = gemini_turns(user, frames)
        params = {"temperature": float(cfg.temperature), "max_tokens": cfg.max_tokens, "seed": cfg.seed}
        key = client.cache_key(turns, system, client.params(**params), sample_index=sample, extra=extra) \
            if client.cache is not None else None
        return Request(call, None, turns, system, params, key, extra, sample)


def sample_index(cfg: GenerateConfig) -> int | None:
    """The sample index of a call: 0 when sampling (temperature > 0; then part of its identity), else None."""
    return 0 if cfg.temperature > 0 else None
