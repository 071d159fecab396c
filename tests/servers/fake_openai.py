"""A fake OpenAI-compatible server: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``.

Speaks enough of the protocol for the real ``openai`` client (and for vLLM-style clients):
chat-completion objects with one choice, OpenAI-style error bodies, and a model list.
"""

from __future__ import annotations

import hashlib
import json
import time

from .base import FakeServer, _Handler


def last_user_text(body: dict) -> str:
    """The text parts of the last user message of a chat-completions body, joined by spaces.

    Args:
        body: the request JSON.

    Returns:
        The text ('' if there is none).
    """
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return " ".join(p.get("text", "") for p in content or [] if p.get("type") == "text")
    return ""


def media_parts(body: dict) -> list[str]:
    """The non-text part types of all messages, in order (e.g. ``["image_url", "video_url"]``)."""
    kinds = []
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list):
            kinds += [p.get("type") for p in content if p.get("type") != "text"]
    return kinds


class FakeOpenAIServer(FakeServer):
    """OpenAI chat-completions server with injected faults (options: :class:`FakeServer`).

    Args:
        model: the id listed by ``/v1/models``.
        **kwargs: passed to :class:`tests.servers.base.FakeServer`.
    """

    finish_reason = "stop"  # set to e.g. "length" to mimic a reply cut by the token budget

    def __init__(self, model: str = "fake-model", **kwargs):
        super().__init__(**kwargs)
        self.model = model

    @property
    def base_url(self) -> str:
        """The URL to give ``AsyncOpenAI(base_url=...)``: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.root_url}/v1"

    @staticmethod
    def default_answer(body: dict) -> str:
        """``ECHO: <last user text> #<8 hex of the whole body>``: deterministic, prompt-derived."""
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]
        return f"ECHO: {last_user_text(body)} #{digest}"

    def handle_get(self, path: str) -> tuple[int, object]:
        if path.rstrip("/") == "/v1/models":
            return 200, {"object": "list", "data": [
                {"id": self.model, "object": "model", "created": 0, "owned_by": "fake"}]}
        return super().handle_get(path)

    def handle_post(self, handler: _Handler, path: str, body: dict) -> None:
        if path.rstrip("/") != "/v1/chat/completions":
            super().handle_post(handler, path, body)
            return
        model = body.get("model", self.model)

        def answer(text: str) -> dict:
            return {
                "id": f"chatcmpl-{self.stats.calls}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "finish_reason": self.finish_reason, "logprobs": None,
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": max(1, len(text.split())),
                          "total_tokens": 1 + max(1, len(text.split()))},
            }

        def error(status: int, message: str) -> dict:
            kind = "rate_limit_exceeded" if status == 429 else "server_error"
            return {"error": {"message": message, "type": kind, "param": None, "code": kind}}

        self.run_post(handler, body, answer, error)
