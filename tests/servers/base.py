"""The shared machinery of the fake provider servers (threaded stdlib HTTP, fault injection)."""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

ACTIONS = ("ok", "500", "429", "hang", "malformed")


@dataclass
class ServerStats:
    """Request counters of one fake server."""

    calls: int = 0
    ok: int = 0
    errors: int = 0
    hangs: int = 0
    malformed: int = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers; every reply sets Content-Length
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: "_Server"

    def log_message(self, format: str, *args: object) -> None:  # silence stderr
        pass

    def do_GET(self) -> None:
        status, payload = self.server.owner.handle_get(self.path)
        self._send_json(status, payload)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_json(400, {"error": {"message": "request body is not JSON"}})
            return
        self.server.owner.handle_post(self, self.path, body)

    def _send_json(self, status: int, payload: object) -> None:
        self.send_raw(status, json.dumps(payload).encode())

    def send_raw(self, status: int, data: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout fired during a hang)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    owner: "FakeServer"


class FakeServer:
    """Base class: a threaded HTTP server with scripted and random faults.

    Args:
        respond: maps a request body to the answer text; defaults to the subclass's echo.
        latency_s: fixed delay before every answer (a sleep, so threads overlap freely).
        script: actions for the first calls, in arrival order (see :data:`ACTIONS`).
        fail_rate: fraction of later calls that fail with ``fail_status`` (seeded RNG).
        fail_status: the HTTP status for ``fail_rate`` failures (500, 429, ...).
        seed: RNG seed for ``fail_rate``.
        hang_s: how long a ``"hang"`` waits before answering (keep it bounded).
        max_lifetime_s: the server shuts itself down after this long.
        keep_requests: how many recent request bodies to keep in ``requests``.
    """

    def __init__(
        self,
        respond: Callable[[dict], str] | None = None,
        latency_s: float = 0.0,
        script: list[str] | tuple[str, ...] = (),
        fail_rate: float = 0.0,
        fail_status: int = 500,
        seed: int = 0,
        hang_s: float = 5.0,
        max_lifetime_s: float = 600.0,
        keep_requests: int = 100,
    ):
        bad = [a for a in script if a not in ACTIONS]
        if bad:
            raise ValueError(f"unknown script actions {bad}; known: {ACTIONS}")
        if not 0.0 <= fail_rate <= 1.0:
            raise ValueError(f"fail_rate must be in [0, 1], got {fail_rate}")
        self.respond = respond or self.default_answer
        self.latency_s = latency_s
        self.script = list(script)
        self.fail_rate = fail_rate
        self.fail_status = fail_status
        self.hang_s = hang_s
        self.max_lifetime_s = max_lifetime_s
        self.stats = ServerStats()
        self.requests: deque[dict] = deque(maxlen=keep_requests)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._port: int | None = None

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port (set by :meth:`start`, kept after :meth:`stop` for messages)."""
        if self._port is None:
            raise RuntimeError("server not started: use it as a context manager or call start()")
        return self._port

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` (after :meth:`start`)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeServer":
        """Bind an ephemeral port on 127.0.0.1 and serve in a daemon thread."""
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"{type(self).__name__}:{self.port}")
        self._thread.start()
        self._timer = threading.Timer(self.max_lifetime_s, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Wake hanging handlers, stop serving and close the socket (idempotent)."""
        self._stopping.set()
        if self._timer is not None:
            self._timer.cancel()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- request handling --------------------------------------------------------------------
    def next_action(self) -> str:
        """Count a call and pick its action: the script first, then ``fail_rate``."""
        with self._lock:
            n = self.stats.calls
            self.stats.calls += 1
            if n < len(self.script):
                return self.script[n]
            if self.fail_rate and self._rng.random() < self.fail_rate:
                return "fail"
            return "ok"

    def run_post(self, handler: _Handler, body: dict, answer: Callable[[str], object],
                 error: Callable[[int, str], object]) -> None:
        """Apply the next action to one generation call and reply.

        Args:
            handler: the request handler to reply on.
            body: the parsed request body (recorded in ``requests``).
            answer: builds the protocol's success payload from the answer text.
            error: builds the protocol's error payload from a status and message.
        """
        with self._lock:
            self.requests.append(body)
        action = self.next_action()
        if self.latency_s:
            self._stopping.wait(self.latency_s)
        if action == "hang":
            with self._lock:
                self.stats.hangs += 1
            self._stopping.wait(self.hang_s)
            action = "ok"
        if action == "malformed":
            with self._lock:
                self.stats.malformed += 1
            handler.send_raw(200, b'{"choices": [ this is not json')
            return
        status = {"500": 500, "429": 429, "fail": self.fail_status}.get(action)
        if status is not None:
            with self._lock:
                self.stats.errors += 1
            handler._send_json(status, error(status, f"injected fault ({action})"))
            return
        try:
            text = self.respond(body)
        except Exception as exc:  # a test's respond() may raise to fail a request on purpose
            with self._lock:
                self.stats.errors += 1
            handler._send_json(500, error(500, f"respond() raised {type(exc).__name__}: {exc}"))
            return
        with self._lock:
            self.stats.ok += 1
        handler._send_json(200, answer(text))

    def handle_get(self, path: str) -> tuple[int, object]:
        """Answer a GET (subclasses add routes); ``/health`` is always 200."""
        if path.rstrip("/") == "/health":
            return 200, {"status": "ok"}
        return 404, {"error": {"message": f"no route GET {path}"}}

    def handle_post(self, handler: _Handler, path: str, body: dict) -> None:
        """Answer a POST (subclasses implement their protocol)."""
        handler._send_json(404, {"error": {"message": f"no route POST {path}"}})

    @staticmethod
    def default_answer(body: dict) -> str:
        """Deterministic answer derived from the whole body (protocol subclasses add its text)."""
        return "ECHO #" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]
