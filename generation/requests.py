"""Concrete requests: an instance's frames rendered once, then each writer's messages and cache key.

The clients (:mod:`mvbench.llm`) own the wire format, retries and the response cache; this module
only assembles what they send, identically in live and batch mode, so a batch result and a live
answer of the same call share one cache key.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from mvbench.llm.gemini_client import GeminiClient
from mvbench.llm.openai_client import OpenAIChatClient

from mvbench.generation.config import GenerateConfig
from mvbench.generation.enrich import render_frame
from mvbench.generation.plan import Call, Instance
from mvbench.generation.prompting import gemini_turns, openai_messages, render

FRAME_SETS_KEPT = 64
# Rendered frames kept for reuse: instances of one video share frames (clips overlap; DVC, VS and RC
# ask about the same stretches), and a frame with the same boxes renders to the same bytes.
RENDERED_FRAMES_KEPT = 2048


@dataclass
class Request:
    """One call ready to send: OpenAI ``messages`` or Gemini ``turns`` + ``system``, and its cache key."""

    call: Call
    messages: list[dict] | None
    turns: list | None
    system: str
    params: dict[str, Any]
    cache_key: str | None


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
        if isinstance(client, OpenAIChatClient):
            messages = openai_messages(system, user, frames, cfg.image_detail)
            params: dict[str, Any] = {"temperature": float(cfg.temperature), "max_tokens": cfg.max_tokens}
            if cfg.seed is not None:
                params["seed"] = cfg.seed
            key = client.cache_key(messages, params, sample_index=self._sample(), extra=None) \
                if client.cache is not None else None
            return Request(call, messages, None, system, params, key)
        assert isinstance(client, GeminiClient)
        turns = gemini_turns(user, frames)
        params = {"temperature": float(cfg.temperature), "max_tokens": cfg.max_tokens, "seed": cfg.seed}
        key = client.cache_key(turns, system, client.params(**params), sample_index=self._sample()) \
            if client.cache is not None else None
        return Request(call, None, turns, system, params, key)

    def _sample(self) -> int | None:
        # a sampled answer is one sample of a distribution: its index is part of its identity
        return 0 if self.cfg.temperature > 0 else None

    def forget(self, inst: Instance) -> None:
        """Drop an instance's rendered frames once both its calls are sent."""
        with self._lock:
            self._frames.pop(inst.template.uid, None)
