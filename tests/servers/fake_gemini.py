"""A fake Gemini Developer API server: ``POST /{version}/models/{model}:generateContent``.

Speaks enough of the REST protocol for ``google-genai`` (point it here with
``HttpOptions(base_url=server.base_url)`` or ``GOOGLE_GEMINI_BASE_URL``): candidates with
text parts, usage metadata, and Google-style error bodies (``{"error": {code, message, status}}``).
"""

from __future__ import annotations

import hashlib
import json
import re

from .base import FakeServer, _Handler

_GENERATE = re.compile(r"^/(?P<version>v1(?:beta|alpha)?)/models/(?P<model>[^/:]+):generateContent$")
_STATUS_NAMES = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def last_user_text(body: dict) -> str:
    """The text parts of the last user turn of a ``generateContent`` body, joined by spaces."""
    for content in reversed(body.get("contents") or []):
        if content.get("role", "user") == "user":
            return " ".join(p["text"] for p in content.get("parts") or [] if "text" in p)
    return ""


def inline_parts(body: dict) -> list[str]:
    """MIME types of the inline-data parts of all turns, in order."""
    kinds = []
    for content in body.get("contents") or []:
        for part in content.get("parts") or []:
            data = part.get("inlineData") or part.get("inline_data")
            if data:
                kinds.append(data.get("mimeType") or data.get("mime_type"))
    return kinds


class FakeGeminiServer(FakeServer):
    """Gemini ``generateContent`` server with injected faults (options: :class:`FakeServer`)."""

    finish_reason = "STOP"  # set to e.g. "MAX_TOKENS" to mimic a reply cut by the token budget

    @property
    def base_url(self) -> str:
        """The URL for ``HttpOptions(base_url=...)``: ``http://127.0.0.1:PORT/``."""
        return f"{self.root_url}/"

    @staticmethod
    def default_answer(body: dict) -> str:
        """``ECHO: <last user text> #<8 hex of the whole body>``."""
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]
        return f"ECHO: {last_user_text(body)} #{digest}"

    def handle_post(self, handler: _Handler, path: str, body: dict) -> None:
        match = _GENERATE.match(path.split("?", 1)[0])
        if match is None:
            super().handle_post(handler, path, body)
            return
        model = match.group("model")

        def answer(text: str) -> dict:
            return {
                "candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                "finishReason": self.finish_reason, "index": 0}],
                "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1,
                                  "totalTokenCount": 2},
                "modelVersion": model,
            }

        def error(status: int, message: str) -> dict:
            return {"error": {"code": status, "message": message,
                              "status": _STATUS_NAMES.get(status, "UNKNOWN")}}

        self.run_post(handler, body, answer, error)
