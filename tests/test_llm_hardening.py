"""Client-layer hardening (issue 8): Retry-After honoured, keys never persisted or logged, no HTTP INFO lines.

Everything runs against the local fake servers; waits are recorded through the clients' ``sleep``
hook (no timing is measured).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mvbench.errors import ServerError
from mvbench.llm.gemini_client import GeminiClient, InlineData, Turn
from mvbench.llm.openai_client import OpenAIChatClient
from mvbench.llm.retry import ClientOptions
from mvbench.redact import MASK, RedactingFilter, redact
from tests.servers.fake_gemini import FakeGeminiServer
from tests.servers.fake_openai import FakeOpenAIServer

KEY = "sk-test-SECRET-0123456789abcdef"
TURNS = [Turn("user", (InlineData(b"\xff\xd8jpeg"), "Describe."))]


async def _call(client, *args, **kw):
    try:
        return await client.call(*args, **kw)
    finally:
        await client.aclose()


def _recording(client) -> list[float]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    client.sleep = sleep
    return waits


def _openai(srv, **kw) -> OpenAIChatClient:
    return OpenAIChatClient("gpt-4.1", ClientOptions(base_url=srv.base_url, retry_base_delay_s=0.01, **kw))


def _gemini(srv, **kw) -> GeminiClient:
    return GeminiClient("gemini-2.5-flash", ClientOptions(base_url=srv.base_url, retry_base_delay_s=0.01, **kw))


@pytest.mark.parametrize("status, headers, expected", [
    ("429", {"Retry-After": "7"}, 7.0),
    ("503", {"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),  # the ms header wins, as in the SDK
    ("429", {"Retry-After": "9999"}, 60.0),  # capped at max_retry_after_s
])
def test_openai_waits_as_the_server_asks(status, headers, expected):
    with FakeOpenAIServer(script=[status], fault_headers=headers) as srv:
        client = _openai(srv)
        waits = _recording(client)
        done = asyncio.run(_call(client, [{"role": "user", "content": "hi"}]))
        assert done.text.startswith("ECHO: hi") and done.attempts == 2
        assert waits == [expected]


def test_openai_retry_after_as_an_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    with FakeOpenAIServer(script=["429"], fault_headers={"Retry-After": when}) as srv:
        client = _openai(srv)
        waits = _recording(client)
        asyncio.run(_call(client, [{"role": "user", "content": "hi"}]))
    assert len(waits) == 1 and 25.0 < waits[0] <= 30.0


def test_a_500_without_hint_uses_the_jittered_backoff_not_a_header():
    with FakeOpenAIServer(script=["500"], fault_headers={"Retry-After": "7"}) as srv:
        client = _openai(srv)
        waits = _recording(client)
        asyncio.run(_call(client, [{"role": "user", "content": "hi"}]))
    assert len(waits) == 1 and waits[0] <= 0.01  # the backoff of retry_base_delay_s, not the 7 s header


@pytest.mark.parametrize("server_kw, expected", [
    ({"fault_headers": {"Retry-After": "4"}}, 4.0),
    ({"retry_delay": "12s"}, 12.0),  # google.rpc.RetryInfo in the error body
    ({"retry_delay": "12s", "fault_headers": {"Retry-After": "3"}}, 3.0),  # the header first
])
def test_gemini_waits_as_the_server_asks(server_kw, expected):
    with FakeGeminiServer(script=["429"], **server_kw) as srv:
        client = _gemini(srv)
        waits = _recording(client)
        done = asyncio.run(_call(client, TURNS))
        assert done.text.startswith("ECHO: Describe.") and done.attempts == 2
    assert waits == [expected]


def test_gemini_retry_after_is_capped():
    with FakeGeminiServer(script=["503"], retry_delay="900s") as srv:
        client = _gemini(srv, max_retry_after_s=5.0)
        waits = _recording(client)
        asyncio.run(_call(client, TURNS))
    assert waits == [5.0]


# ----- secrets ---------------------------------------------------------------------------------
def test_an_echoed_key_is_masked_in_client_errors(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAIServer(fail_rate=1.0, script=["echo_auth"] * 3) as srv:
        client = OpenAIChatClient("gpt-4.1", ClientOptions(base_url=srv.base_url, max_retries=2,
                                                          retry_base_delay_s=0.01))
        _recording(client)
        with pytest.raises(ServerError) as info:
            asyncio.run(_call(client, [{"role": "user", "content": "hi"}], uid="s1"))
    assert KEY not in str(info.value) and MASK in str(info.value) and "Bearer" in str(info.value)


def test_a_configured_key_is_masked_in_log_records(caplog):
    configured = "AIza-configured-key-98765"
    ClientOptions(api_key=configured)  # registering happens when options are made
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "failed: %s", (f"key={configured}",), None)
    assert RedactingFilter().filter(record) and configured not in record.getMessage()
    assert redact(f"{configured}!") == f"{MASK}!"


def _fixture_dataset(tmp_path: Path) -> Path:
    from mvbench.builders.fixtures import make_fixture
    from mvbench.builders.pipeline import BuildOptions, build

    root = make_fixture("cholect50", tmp_path / "raw")
    out = tmp_path / "ds"
    build([("cholect50", root)], BuildOptions(out=out, workers=1))
    return out


def test_mvbench_eval_never_writes_or_prints_an_echoed_key(tmp_path):
    """A server whose 500 body echoes the Authorization header: the key reaches no file and no log line."""
    data = _fixture_dataset(tmp_path)
    env = {**os.environ, "OPENAI_API_KEY": KEY, "HF_HUB_OFFLINE": "1", "MVBENCH_CACHE": str(tmp_path / "cache")}
    with FakeOpenAIServer(fail_rate=1.0, fail_status=500, script=["echo_auth"] * 1000) as srv:
        proc = subprocess.run(
            [sys.executable, "-c", "from mvbench.cli import main; main()", "eval", "--data", str(data),
             "--model", "openai:gpt-4.1", "--base-url", srv.base_url, "--out", str(tmp_path / "run"),
             "--no-judge", "--limit", "1", "--max-retries", "1", "--concurrency", "2", "--tasks", "TAG,NAP"],
            capture_output=True, text=True, env=env, timeout=300)
        assert srv.stats.errors >= 2  # the key really was echoed back
    assert proc.returncode != 0
    predictions = (tmp_path / "run" / "predictions.jsonl").read_text()
    results = (tmp_path / "run" / "results.json").read_text()
    assert "Bearer" in predictions and "failed" in proc.stderr  # the error text itself is kept ...
    for text in (predictions, results, proc.stderr, proc.stdout):
        assert KEY not in text  # ... with the key masked
    assert MASK in predictions
    assert "HTTP Request" not in proc.stderr  # openai's transport (httpx2) stays quiet


def test_no_http_request_info_lines_from_httpx2(tmp_path):
    """google-genai and openai log every request at INFO through the ``httpx2`` logger."""
    code = ("import asyncio, sys\n"
            "from mvbench.cli import app\n"
            "import typer\n"
            "@app.command('probe')\n"
            "def probe(url: str):\n"
            "    from mvbench.llm.gemini_client import GeminiClient, Turn\n"
            "    from mvbench.llm.retry import ClientOptions\n"
            "    async def go():\n"
            "        c = GeminiClient('gemini-2.5-flash', ClientOptions(base_url=url))\n"
            "        print(await c.complete([Turn('user', ('hello',))]))\n"
            "        await c.aclose()\n"
            "    asyncio.run(go())\n"
            "from mvbench.cli import main\n"
            "main()\n")
    with FakeGeminiServer() as srv:
        quiet = subprocess.run([sys.executable, "-c", code, "probe", srv.base_url], capture_output=True, text=True,
                               timeout=120)
        loud = subprocess.run([sys.executable, "-c", code, "-v", "probe", srv.base_url], capture_output=True,
                              text=True, timeout=120)
    assert quiet.returncode == 0 and "ECHO: hello" in quiet.stdout, quiet.stderr
    assert "HTTP Request" not in quiet.stderr
    assert "HTTP Request" in loud.stderr  # the probe really logs through httpx2 (shown with -v)
