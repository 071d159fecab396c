"""A vLLM OpenAI-compatible server as TRL's ``VLLMClient`` and GRPO server mode use it.

On top of :class:`tests.servers.fake_openai.FakeOpenAIServer` (faults, latency, recorded bodies):

- ``GET /version``: ``{"version": <version>}``, as ``vllm serve`` reports it;
- chat completions honour ``n`` and, when the body asks for ``return_token_ids`` (TRL does), add
  vLLM's ``prompt_token_ids`` and per-choice ``token_ids``; with ``logprobs`` each choice carries
  chat-style logprobs of its tokens (``token_id:<id>`` strings, as ``return_tokens_as_token_ids``).

Token ids are deterministic: the prompt's are derived from the request's last user text (so
conversations differ), choice ``i``'s completion is ``[1000 + i, 2000 + len(prompt ids)]``.
"""

from __future__ import annotations

import hashlib

from tests.servers.fake_openai import FakeOpenAIServer, last_user_text


def prompt_ids_for(body: dict) -> list[int]:
    """The fake prompt token ids of a chat body (from its last user text)."""
    digest = hashlib.sha256(last_user_text(body).encode()).digest()
    return [int(b) for b in digest[:4 + digest[0] % 4]]


class FakeVLLMServer(FakeOpenAIServer):
    """``vllm serve`` as far as TRL's client needs it (see the module docstring).

    Args:
        version: what ``GET /version`` reports (None: no ``version`` key).
        **kwargs: :class:`FakeOpenAIServer`'s.
    """

    def __init__(self, version: str | None = "0.31.0", **kwargs):
        super().__init__(**kwargs)
        self.version = version

    def handle_get(self, path: str) -> tuple[int, object]:
        if path.rstrip("/") == "/version":
            return 200, ({"version": self.version} if self.version is not None else {})
        return super().handle_get(path)

    def completion(self, body: dict, text: str) -> dict:
        reply = super().completion(body, text)
        if not body.get("return_token_ids"):
            return reply
        prompt = prompt_ids_for(body)
        reply["prompt_token_ids"] = prompt
        choices = []
        for i in range(int(body.get("n") or 1)):
            ids = [1000 + i, 2000 + len(prompt)]
            logprobs = None
            if body.get("logprobs"):
                logprobs = {"content": [{"token": f"token_id:{t}", "logprob": -0.5,
                                         "top_logprobs": [{"token": f"token_id:{t}", "logprob": -0.5}]}
                                        for t in ids]}
            choices.append({"index": i, "finish_reason": self.finish_reason, "logprobs": logprobs, "token_ids": ids,
                            "message": {"role": "assistant", "content": text}})
        reply["choices"] = choices
        return reply
