"""The real ``google-genai`` client against a local fake Gemini server with injected faults."""

from __future__ import annotations

import asyncio
import logging

import pytest

from mvbench.errors import ServerError
from mvbench.llm.cache import ResponseCache
from mvbench.llm.gemini_client import GeminiClient, InlineData, Turn
from mvbench.llm.retry import ClientOptions
from tests.servers.fake_gemini import FakeGeminiServer, inline_parts

TURNS = [Turn("user", (InlineData(b"\xff\xd8fake-jpeg"), "Describe the frame."))]


def run(coro):
    return asyncio.run(coro)


async def _complete(server, turns=TURNS, cache=None, timeout_s=10.0, max_retries=4, client_kw=None, **kw):
    client = GeminiClient("gemini-2.5-flash", ClientOptions(base_url=server.base_url, timeout_s=timeout_s,
                                                          max_retries=max_retries, retry_base_delay_s=0.01),
                          cache, **(client_kw or {}))
    try:
        return await client.complete(turns, **kw)
    finally:
        await client.aclose()


def _thinking_budget(thinking_config: dict) -> int:
    # the SDK spells the inner field thinking_budget; the REST API accepts it and thinkingBudget
    (value,) = [v for k, v in thinking_config.items() if k in ("thinking_budget", "thinkingBudget")]
    return value


def test_request_carries_inline_image_config_and_system():
    with FakeGeminiServer() as srv:
        text = run(_complete(srv, system="Be brief.", temperature=0.0, max_tokens=32, seed=7))
        assert text.startswith("ECHO: Describe the frame.")
        body = srv.requests[-1]
        assert inline_parts(body) == ["image/jpeg"]
        config = dict(body["generationConfig"])
        assert _thinking_budget(config.pop("thinkingConfig")) == 0  # thinking off by default
        assert config == {"temperature": 0.0, "maxOutputTokens": 32, "seed": 7}
        assert "Be brief." in str(body.get("systemInstruction") or body.get("system_instruction"))


def test_retries_through_500_429_and_malformed_json():
    with FakeGeminiServer(script=["500", "429", "malformed"]) as srv:
        assert run(_complete(srv, uid="g1")).startswith("ECHO:")
        assert srv.stats.calls == 4


def test_retries_through_a_hang_longer_than_the_timeout():
    with FakeGeminiServer(script=["hang"], hang_s=3.0) as srv:
        assert run(_complete(srv, timeout_s=0.5)).startswith("ECHO:")
        assert srv.stats.calls == 2 and srv.stats.hangs == 1


def test_permanent_failure_names_the_sample():
    with FakeGeminiServer(fail_rate=1.0, fail_status=503) as srv:
        with pytest.raises(ServerError, match=r"request clip7 \(sample 2\).*3 attempts"):
            run(_complete(srv, max_retries=2, uid="clip7", sample_index=2))
        assert srv.stats.calls == 3


def test_cache_hit_sends_no_second_request_and_images_enter_the_key(tmp_path):
    with FakeGeminiServer() as srv, ResponseCache(tmp_path / "c") as cache:
        first = run(_complete(srv, cache=cache))
        assert run(_complete(srv, cache=cache)) == first
        assert srv.stats.calls == 1
        other_image = [Turn("user", (InlineData(b"\xff\xd8other"), "Describe the frame."))]
        run(_complete(srv, turns=other_image, cache=cache))
        assert srv.stats.calls == 2
        with pytest.raises(ValueError, match="sample_index"):
            run(_complete(srv, cache=cache, temperature=1.0))


def test_thinking_budget_none_leaves_the_model_default_and_enters_the_cache_key(tmp_path):
    with FakeGeminiServer() as srv:
        run(_complete(srv, client_kw={"thinking_budget": None}, max_tokens=256))
        assert "thinkingConfig" not in srv.requests[-1]["generationConfig"]
        run(_complete(srv, client_kw={"thinking_budget": 512}, max_tokens=256))
        assert _thinking_budget(srv.requests[-1]["generationConfig"]["thinkingConfig"]) == 512
    keys = {GeminiClient("gemini-2.5-flash", ClientOptions(base_url="http://127.0.0.1:9/"), thinking_budget=b).cache_key(
        TURNS, None, {"thinking_budget": b}) for b in (0, None, 512)}
    assert len(keys) == 3


def test_an_empty_answer_is_logged_with_uid_and_finish_reason(caplog):
    with FakeGeminiServer(respond=lambda body: "") as srv:
        srv.finish_reason = "MAX_TOKENS"
        with caplog.at_level(logging.WARNING, logger="mvbench.llm.gemini_client"):
            assert run(_complete(srv, uid="clip9")) == ""
    assert [r.getMessage() for r in caplog.records] == [
        "empty answer from gemini-2.5-flash for clip9 (finish_reason MAX_TOKENS)"]


def test_a_google_genai_without_the_private_request_method_fails_at_start_in_one_line(monkeypatch):
    from google.genai import _api_client

    from mvbench.errors import InputError
    from mvbench.llm import gemini_client

    monkeypatch.delattr(_api_client.BaseApiClient, "async_request")
    with pytest.raises(InputError) as err:
        GeminiClient("gemini-2.5-flash", ClientOptions(base_url="http://127.0.0.1:9/"))
    message = str(err.value)
    assert "\n" not in message and "async_request" in message and gemini_client.TESTED_GENAI in message


def test_the_tested_google_genai_range_is_the_gemini_extra():
    import tomllib
    from pathlib import Path

    from mvbench.llm.gemini_client import TESTED_GENAI

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["optional-dependencies"]["gemini"] == [TESTED_GENAI]
