"""Backend for Gemini models through ``google-genai``.

Layout: one-shot examples become prior ``user``/``model`` text turns; the final user turn holds
every frame as an inline image part (PNG or JPEG, ``params.frame_encoding``), the RC start frame boxed in place (always an image list:
``params.frames_as`` is ignored, as Gemini takes no frame-list video), then the prompt.
The system prompt becomes the system instruction. Frames are resized by Qwen's ``smart_resize``
with the request's pixel budget, as for the other backends, so all models see the same pixels.
"""

from __future__ import annotations

import asyncio

from mvbench.eval.backends.base import GenerationRequest
from mvbench.eval.backends.openai_backend import load_request_images
from mvbench.llm.cache import ResponseCache
from mvbench.llm.gemini_client import GeminiClient, InlineData, Turn
from mvbench.llm.images import mime_type
from mvbench.llm.retry import ClientOptions
from mvbench.redact import safe_url

MESSAGE_LAYOUT_VERSION = 1


def build_turns(request: GenerationRequest, frames: list[bytes]) -> list[Turn]:
    """The Gemini turns for one request (layout in the module docstring).

    Args:
        request: the request (prompt, examples).
        frames: the encoded frames (``request.params.frame_encoding``), in order (the RC start
            frame already boxed).

    Returns:
        The conversation, ending with the user turn.
    """
    turns: list[Turn] = []
    for question, answer in request.examples:
        turns.append(Turn("user", (question,)))
        turns.append(Turn("model", (answer,)))
    parts: list = [InlineData(f, mime_type(request.params.frame_encoding)) for f in frames]
    parts.append(request.prompt)
    turns.append(Turn("user", tuple(parts)))
    return turns


class GeminiBackend:
    """The :class:`~mvbench.eval.backends.base.Backend` for Gemini.

    Args:
        model: e.g. ``gemini-2.5-flash``.
        options: endpoint (tests: a local fake; None for Google's), key, timeout, retries and
            concurrency (:class:`~mvbench.llm.retry.ClientOptions`).
        cache: optional persistent response cache.
    """

    name = "gemini"

    def __init__(self, model: str, options: ClientOptions = ClientOptions(), cache: ResponseCache | None = None):
        self.model = model
        self.base_url = options.base_url
        self.client = GeminiClient(model, options, cache)

    def fingerprint(self) -> dict:
        """Model, endpoint and the backend choices that change outputs."""
        return {"backend": self.name, "model": self.model, "base_url": safe_url(self.base_url),
                "message_layout": MESSAGE_LAYOUT_VERSION, "frames_as": "images",
                "thinking_budget": self.client.thinking_budget}

    async def generate(self, request: GenerationRequest) -> str:
        """Answer one request (a sampled request's ``params.seed`` is its cache sample index).

        Raises:
            ServerError: after retries, naming the request's uid.
            InputError: an unreadable frame (naming it).
        """
        frames = await asyncio.to_thread(load_request_images, request)
        p = request.params
        return await self.client.complete(
            build_turns(request, frames), system=request.system, uid=request.uid,
            sample_index=p.seed if p.temperature > 0 else None, cache_extra=self.fingerprint(),
            temperature=p.temperature, max_tokens=p.max_tokens, seed=p.seed)

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()
