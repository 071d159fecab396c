"""The real ``openai`` client against a local fake server with injected faults."""

from __future__ import annotations

import asyncio
import logging

import pytest

from mvbench.errors import ServerError
from mvbench.llm.cache import ResponseCache
from mvbench.llm.openai_client import OpenAIChatClient
from mvbench.llm.retry import ClientOptions
from tests.servers.fake_openai import FakeOpenAIServer

MESSAGES = [{"role": "user", "content": "What phase is shown?"}]


def run(coro):
    return asyncio.run(coro)


async def _complete(server, messages=MESSAGES, cache=None, timeout_s=10.0, max_retries=4, **kw):
    client = OpenAIChatClient("fake-model", ClientOptions(base_url=server.base_url, timeout_s=timeout_s,
                                                        max_retries=max_retries, retry_base_delay_s=0.01), cache)
    try:
        return await client.complete(messages, **kw)
    finally:
        await client.aclose()


def test_retries_through_500_429_and_malformed_json():
    with FakeOpenAIServer(script=["500", "429", "malformed"]) as srv:
        text = run(_complete(srv, uid="s1", temperature=0.0, max_tokens=16))
        assert text.startswith("ECHO: What phase is shown?")
        assert srv.stats.calls == 4 and srv.stats.errors == 2 and srv.stats.malformed == 1
        assert srv.requests[-1]["max_tokens"] == 16


def test_retries_through_a_hang_longer_than_the_timeout():
    with FakeOpenAIServer(script=["hang"], hang_s=3.0) as srv:
        text = run(_complete(srv, timeout_s=0.5, uid="s2"))
        assert text.startswith("ECHO:")
        assert srv.stats.calls == 2 and srv.stats.hangs == 1


def test_permanent_failure_names_the_sample():
    with FakeOpenAIServer(fail_rate=1.0) as srv:
        with pytest.raises(ServerError, match=r"request vid42_q3 \(sample 1\).*3 attempts"):
            run(_complete(srv, max_retries=2, uid="vid42_q3", sample_index=1))
        assert srv.stats.calls == 3


def test_client_errors_are_not_retried():
    with FakeOpenAIServer(fail_rate=1.0, fail_status=400) as srv:
        with pytest.raises(ServerError, match="non-retryable.*vid1|vid1.*non-retryable"):
            run(_complete(srv, uid="vid1"))
        assert srv.stats.calls == 1


def test_cache_hit_sends_no_second_request(tmp_path):
    with FakeOpenAIServer() as srv:
        with ResponseCache(tmp_path / "cache") as cache:
            first = run(_complete(srv, cache=cache, uid="a", temperature=0))
            second = run(_complete(srv, cache=cache, uid="a", temperature=0.0))
            assert first == second and srv.stats.calls == 1
            assert cache.stats.hits == 1
            run(_complete(srv, cache=cache, uid="a", temperature=0.0, max_tokens=5))
            assert srv.stats.calls == 2  # other params, other key
        with ResponseCache(tmp_path / "cache") as reopened:
            assert run(_complete(srv, cache=reopened, temperature=0)) == first
            assert srv.stats.calls == 2


def test_sampled_calls_need_a_sample_index_with_a_cache(tmp_path):
    with FakeOpenAIServer() as srv, ResponseCache(tmp_path / "c") as cache:
        with pytest.raises(ValueError, match="sample_index"):
            run(_complete(srv, cache=cache, temperature=0.8))
        assert srv.stats.calls == 0
        run(_complete(srv, cache=cache, temperature=0.8, sample_index=0))
        run(_complete(srv, cache=cache, temperature=0.8, sample_index=1))
        assert srv.stats.calls == 2


def test_empty_answers_are_not_cached(tmp_path):
    with FakeOpenAIServer(respond=lambda body: "") as srv, ResponseCache(tmp_path / "c") as cache:
        assert run(_complete(srv, cache=cache)) == ""
        assert run(_complete(srv, cache=cache)) == ""
        assert srv.stats.calls == 2 and len(cache) == 0


def test_an_empty_answer_is_logged_with_uid_and_finish_reason(caplog):
    with FakeOpenAIServer(respond=lambda body: "") as srv:
        srv.finish_reason = "length"
        with caplog.at_level(logging.WARNING, logger="mvbench.llm.openai_client"):
            assert run(_complete(srv, uid="clip9")) == ""
    assert [r.getMessage() for r in caplog.records] == [
        "empty answer from fake-model for clip9 (finish_reason length)"]


def test_queueing_for_the_concurrency_limit_is_not_a_timeout():
    async def many(server):
        client = OpenAIChatClient("fake-model", ClientOptions(base_url=server.base_url, timeout_s=0.6,
                                                            max_retries=0, concurrency=1))
        try:
            return await asyncio.gather(*(client.complete([{"role": "user", "content": f"q{i}"}])
                                          for i in range(4)))
        finally:
            await client.aclose()

    # 4 requests one at a time take ~1.2 s in all, twice the per-attempt timeout
    with FakeOpenAIServer(latency_s=0.3) as srv:
        answers = run(many(srv))
        assert [a.split(" #")[0] for a in answers] == [f"ECHO: q{i}" for i in range(4)]
        assert srv.stats.calls == 4


def test_a_raising_respond_function_is_a_500_for_that_call():
    def respond(body):
        if "bad" in body["messages"][-1]["content"]:
            raise RuntimeError("always fails")
        return "fine"

    with FakeOpenAIServer(respond=respond) as srv:
        assert run(_complete(srv, messages=[{"role": "user", "content": "good"}])) == "fine"
        with pytest.raises(ServerError, match="respond\\(\\) raised RuntimeError"):
            run(_complete(srv, messages=[{"role": "user", "content": "bad"}], max_retries=1, uid="b"))
        assert srv.stats.errors == 2 and srv.stats.ok == 1
