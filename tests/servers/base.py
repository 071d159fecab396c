"""The shared machinery of the fake provider servers (threaded stdlib HTTP, fault injection)."""

from __future__ import annotations

import hashlib
import json
import random
import select
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

# "503": service unavailable; "empty": HTTP 200 with no answer text; "echo_auth": HTTP 500 whose
# body repeats the request's credentials (a leaky proxy), for the secret-masking tests.
ACTIONS = ("ok", "500", "503", "429", "hang", "malformed", "empty", "echo_auth")
AUTH_HEADERS = ("Authorization", "x-goog-api-key", "api-key")


def body_digest(body: object) -> str:
    """A stable digest of a request body (counts repeats of the same successful call)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class ServerStats:
    """Request counters of one fake server.

    ``ok_by_body`` counts successful answers per request-body digest: a value above 1 means the
    same call was answered twice (a repeated paid call).
    """

    calls: int = 0
    ok: int = 0
    errors: int = 0
    hangs: int = 0
    malformed: int = 0
    dropped: int = 0
    abandoned: int = 0  # "hang" calls whose client gave up (closed the connection) first: never answered
    ok_by_body: Counter = field(default_factory=Counter)
    batch_creates: int = 0
    batch_create_requests: int = 0
    batch_lines_ok: int = 0
    file_uploads: int = 0

    def repeated(self) -> int:
        """How many successful answers repeated an earlier one (same request body)."""
        return sum(n - 1 for n in self.ok_by_body.values() if n > 1)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers; every reply sets Content-Length
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: "_Server"

    def log_message(self, format: str, *args: object) -> None:  # silence stderr
        pass

    def do_GET(self) -> None:
        if not self.server.owner.handle_get_raw(self, self.path):
            status, payload = self.server.owner.handle_get(self.path)
            self._send_json(status, payload)

    def do_DELETE(self) -> None:
        self.server.owner.handle_delete(self, self.path)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.server.owner.handle_post_raw(self, self.path, raw):
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_json(400, {"error": {"message": "request body is not JSON"}})
            return
        self.server.owner.handle_post(self, self.path, body)

    def _send_json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        self.send_raw(status, json.dumps(payload).encode(), headers=headers)

    def send_raw(self, status: int, data: bytes, content_type: str = "application/json",
                 headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
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
        hang_s: how long a ``"hang"`` waits before answering (keep it bounded); a client that gives
            up first (closes the connection) ends the hang, unanswered (``stats.abandoned``).
        max_lifetime_s: the server shuts itself down after this long.
        keep_requests: how many recent request bodies to keep in ``requests``.
        fault_headers: extra headers on every injected 429/503 reply (e.g. ``{"Retry-After": "7"}``).
        action_for: picks the action of a call from its body (None: the script / fail_rate rule),
            e.g. to fail one particular request every time.
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
        fault_headers: dict[str, str] | None = None,
        action_for: Callable[[dict], str | None] | None = None,
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
        self.fault_headers = dict(fault_headers or {})
        self.action_for = action_for
        self.stats = ServerStats()
        self.requests: deque[dict] = deque(maxlen=keep_requests)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._open = threading.Event()  # cleared by hold(): new calls wait, then are dropped
        self._open.set()
        self._drop = False
        self.inflight = 0  # generation calls past the hold gate and not yet answered
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

    # --- holding calls (for kill -9 tests) ------------------------------------------------
    def hold(self) -> None:
        """From now on, generation calls wait (unanswered) until :meth:`release`.

        Calls that passed the gate before are counted in ``inflight`` until answered, so once
        ``inflight`` is 0 after a hold, no answer is on its way.
        """
        with self._lock:
            self._drop = False
            self._open.clear()

    def release(self, drop: bool = False) -> None:
        """Let held calls go on; with ``drop`` they are closed unanswered (not counted as ok)."""
        with self._lock:
            self._drop = drop
            self._open.set()

    def _enter(self, handler: _Handler) -> bool:
        """Pass the hold gate (counted in ``inflight``); False if the call was dropped unanswered."""
        with self._lock:
            if self._open.is_set():
                self.inflight += 1
                return True
        while not self._open.wait(0.05):
            if self._stopping.is_set():
                break
        with self._lock:
            if self._drop:
                self.stats.dropped += 1
                handler.close_connection = True
                return False
            self.inflight += 1
            return True

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
        if not self._enter(handler):
            return
        try:
            self._run_action(handler, body, answer, error)
        finally:
            with self._lock:
                self.inflight -= 1

    def _run_action(self, handler: _Handler, body: dict, answer: Callable[[str], object],
                    error: Callable[[int, str], object]) -> None:
        action = self.next_action()
        forced = self.action_for(body) if self.action_for is not None else None
        action = forced or action
        if self.latency_s:
            self._stopping.wait(self.latency_s)
        if action == "hang":
            with self._lock:
                self.stats.hangs += 1
            if self._client_gave_up(handler, self.hang_s):
                with self._lock:
                    self.stats.abandoned += 1
                handler.close_connection = True
                return
            action = "ok"
        if action == "malformed":
            with self._lock:
                self.stats.malformed += 1
            handler.send_raw(200, b'{"choices": [ this is not json')
            return
        if action == "echo_auth":
            with self._lock:
                self.stats.errors += 1
            creds = "; ".join(f"{h}: {handler.headers.get(h)}" for h in AUTH_HEADERS if handler.headers.get(h))
            handler._send_json(500, error(500, f"upstream rejected the request with {creds}"))
            return
        status = {"500": 500, "503": 503, "429": 429, "fail": self.fail_status}.get(action)
        if status is not None:
            with self._lock:
                self.stats.errors += 1
            headers = self.fault_headers if status in (429, 503) else None
            handler._send_json(status, self.fault_body(error(status, f"injected fault ({action})"), status),
                               headers=headers)
            return
        try:
            text = "" if action == "empty" else self.respond(body)
        except Exception as exc:  # a test's respond() may raise to fail a request on purpose
            with self._lock:
                self.stats.errors += 1
            handler._send_json(500, error(500, f"respond() raised {type(exc).__name__}: {exc}"))
            return
        with self._lock:
            self.stats.ok += 1
            if text:
                self.stats.ok_by_body[body_digest(body)] += 1
        handler._send_json(200, answer(text))

    def _client_gave_up(self, handler: _Handler, wait_s: float) -> bool:
        """Hold a call up to ``wait_s``; True as soon as its client closes the connection (it timed
        out and retries elsewhere: an answer now would reach nobody, so it is neither sent nor
        counted), False once the wait is over or the server stops (then it is answered)."""
        sock = handler.connection
        deadline = time.monotonic() + wait_s
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                readable, _, _ = select.select([sock], [], [], min(0.05, left))
                if readable and sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                    return True
            except BlockingIOError:
                continue
            except OSError:  # reset by the client
                return True
            if readable:  # bytes of another request on this connection: the client is still there
                self._stopping.wait(left)
                return False
        return False

    def fault_body(self, payload: dict, status: int) -> dict:
        """The body of an injected 429/503/500 (subclasses add protocol details such as RetryInfo)."""
        return payload

    def answer_once(self, body: dict) -> tuple[bool, str]:
        """Answer one batched request with the same respond/script/fail rules as a live call.

        Returns:
            ``(ok, text or error message)``; successes are counted in ``ok_by_body``.
        """
        action = self.next_action()
        if action in ("500", "503", "429", "fail", "malformed", "echo_auth"):
            with self._lock:
                self.stats.errors += 1
            return False, f"injected fault ({action})"
        try:
            text = "" if action == "empty" else self.respond(body)
        except Exception as exc:  # noqa: BLE001
            with self._lock:
                self.stats.errors += 1
            return False, f"respond() raised {type(exc).__name__}: {exc}"
        with self._lock:
            self.stats.ok += 1
            self.stats.batch_lines_ok += 1
            if text:
                self.stats.ok_by_body[body_digest(body)] += 1
        return True, text

    def handle_get(self, path: str) -> tuple[int, object]:
        """Answer a GET (subclasses add routes); ``/health`` is always 200."""
        if path.rstrip("/") == "/health":
            return 200, {"status": "ok"}
        return 404, {"error": {"message": f"no route GET {path}"}}

    def handle_post(self, handler: _Handler, path: str, body: dict) -> None:
        """Answer a POST (subclasses implement their protocol)."""
        handler._send_json(404, {"error": {"message": f"no route POST {path}"}})

    def handle_post_raw(self, handler: _Handler, path: str, raw: bytes) -> bool:
        """Answer a POST whose body is not JSON (uploads); return False to fall back to JSON handling."""
        return False

    def handle_get_raw(self, handler: _Handler, path: str) -> bool:
        """Answer a GET with raw bytes (downloads); return False to fall back to :meth:`handle_get`."""
        return False

    def handle_delete(self, handler: _Handler, path: str) -> None:
        """Answer a DELETE (subclasses add routes)."""
        handler._send_json(404, {"error": {"message": f"no route DELETE {path}"}})

    @staticmethod
    def default_answer(body: dict) -> str:
        """Deterministic answer derived from the whole body (protocol subclasses add its text)."""
        return "ECHO #" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]
