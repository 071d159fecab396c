"""GeminiBackend: turn layout and a round trip through the real client and a fake server."""

from __future__ import annotations

import asyncio

from PIL import Image

from mvbench.eval.backends.base import Backend, GenerationParams, GenerationRequest
from mvbench.eval.backends.gemini_backend import GeminiBackend, build_turns
from mvbench.llm.gemini_client import InlineData
from mvbench.llm.retry import ClientOptions
from tests.servers.fake_gemini import FakeGeminiServer, inline_parts


def _frames(tmp_path, n=3):
    paths = []
    for i in range(n):
        p = tmp_path / f"f{i}.jpg"
        Image.new("RGB", (320, 240), (40 * i, 80, 120)).save(p)
        paths.append(str(p))
    return tuple(paths)


def test_turns_put_examples_first_then_frames_prompt(tmp_path):
    req = GenerationRequest(uid="u", prompt="Q?", frames=_frames(tmp_path),
                            examples=(("ex q", "ex a"),))
    turns = build_turns(req, [b"f0", b"f1", b"f2"])
    assert [(t.role, t.parts) for t in turns[:2]] == [("user", ("ex q",)), ("model", ("ex a",))]
    last = turns[-1].parts
    assert [p.data for p in last[:-1] if isinstance(p, InlineData)] == [b"f0", b"f1", b"f2"]
    assert last[-1] == "Q?"


def test_generate_round_trip(tmp_path):
    with FakeGeminiServer() as srv:
        backend = GeminiBackend("gemini-2.5-flash", ClientOptions(base_url=srv.base_url, retry_base_delay_s=0.01))
        assert isinstance(backend, Backend)
        req = GenerationRequest(uid="u1", prompt="Which tool?", frames=_frames(tmp_path),
                                rc_frame=_frames(tmp_path)[0], rc_box=(10, 10, 100, 100),
                                params=GenerationParams(frames_as="video"))

        async def go():
            try:
                return await backend.generate(req)
            finally:
                await backend.aclose()

        assert asyncio.run(go()).startswith("ECHO: Which tool?")
        assert inline_parts(srv.requests[-1]) == ["image/png"] * 3  # lossless by default; the RC frame boxed in place
        assert backend.fingerprint()["model"] == "gemini-2.5-flash"
