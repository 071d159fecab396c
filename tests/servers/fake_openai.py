"""A fake OpenAI-compatible server: chat completions, models, and the files + batches endpoints.

Speaks enough of the protocol for the real ``openai`` client (and for vLLM-style clients):
chat-completion objects with one choice and a ``usage`` (prompt tokens: 10 + 100 per image part;
completion tokens: the answer's words), OpenAI-style error bodies, and a model list.

Batch API (openai 3.63's wire format, see the batch research notes): ``POST /v1/files``
(multipart, ``purpose=batch``), ``GET /v1/files/{id}/content``, ``POST /v1/batches``,
``GET /v1/batches/{id}`` (advances the job, :mod:`tests.servers.batch_jobs`), ``GET /v1/batches``
(list, newest first), ``POST /v1/batches/{id}/cancel``. Output and error files list their lines in
shuffled order; a line that never ran (expired, cancelled) has ``response: null`` and an ``error``.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import itertools
import json
import re
import threading
import time
from urllib.parse import parse_qs, urlsplit

from .base import FakeServer, _Handler
from .batch_jobs import BatchEngine, FakeBatchJob

_BATCH = re.compile(r"^/v1/batches/(?P<id>[^/]+)$")
_CANCEL = re.compile(r"^/v1/batches/(?P<id>[^/]+)/cancel$")
_CONTENT = re.compile(r"^/v1/files/(?P<id>[^/]+)/content$")
_STATUS = {"pending": "validating", "running": "in_progress", "succeeded": "completed", "failed": "failed",
           "expired": "expired", "cancelled": "cancelled"}


def last_user_text(body: dict) -> str:
    """The text parts of the last user message of a chat-completions body, joined by spaces.

    Args:
        body: the request JSON.

    Returns:
        The text ('' if there is none).
    """
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return " ".join(p.get("text", "") for p in content or [] if p.get("type") == "text")
    return ""


def usage_for(body: dict, text: str) -> dict:
    """Deterministic token counts: 10 + 100 per media part in, one per answer word out."""
    prompt = 10 + 100 * len(media_parts(body))
    completion = len(text.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def parse_multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Fields of a ``multipart/form-data`` body: name → (filename, bytes)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


def media_parts(body: dict) -> list[str]:
    """The non-text part types of all messages, in order (e.g. ``["image_url", "video_url"]``)."""
    kinds = []
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list):
            kinds += [p.get("type") for p in content if p.get("type") != "text"]
    return kinds


class FakeOpenAIServer(FakeServer):
    """OpenAI chat-completions server with injected faults (options: :class:`FakeServer`).

    Args:
        model: the id listed by ``/v1/models``.
        batch_polls / batch_gate / batch_outcomes / batch_create_faults: the batch jobs' script
            (:class:`tests.servers.batch_jobs.BatchEngine`).
        **kwargs: passed to :class:`tests.servers.base.FakeServer`.
    """

    finish_reason = "stop"  # set to e.g. "length" to mimic a reply cut by the token budget

    def __init__(self, model: str = "fake-model", batch_polls: int = 1, batch_gate: threading.Event | None = None,
                 batch_outcomes: tuple[str, ...] = (),
                 batch_create_faults: tuple[str, ...] = (), **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.batches = BatchEngine(self, polls=batch_polls, gate=batch_gate, outcomes=batch_outcomes,
                                   create_faults=batch_create_faults)
        self.files: dict[str, bytes] = {}
        self._file_ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        """The URL to give ``AsyncOpenAI(base_url=...)``: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.root_url}/v1"

    @staticmethod
    def default_answer(body: dict) -> str:
        """``ECHO: <last user text> #<8 hex of the whole body>``: deterministic, prompt-derived."""
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]
        return f"ECHO: {last_user_text(body)} #{digest}"

    def completion(self, body: dict, text: str) -> dict:
        """A chat-completion object answering ``body`` with ``text``."""
        return {
            "id": f"chatcmpl-{self.stats.calls}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [{"index": 0, "finish_reason": self.finish_reason, "logprobs": None,
                         "message": {"role": "assistant", "content": text}}],
            "usage": usage_for(body, text),
        }

    @staticmethod
    def error_body(status: int, message: str) -> dict:
        kind = "rate_limit_exceeded" if status == 429 else "server_error"
        return {"error": {"message": message, "type": kind, "param": None, "code": kind}}

    def handle_get(self, path: str) -> tuple[int, object]:
        route = urlsplit(path).path.rstrip("/")
        if route == "/v1/models":
            return 200, {"object": "list", "data": [
                {"id": self.model, "object": "model", "created": 0, "owned_by": "fake"}]}
        if route == "/v1/batches":
            return 200, self._list_batches(parse_qs(urlsplit(path).query))
        m = _BATCH.match(route)
        if m:
            job = self.batches.jobs.get(m.group("id"))
            if job is None:
                return 404, self.error_body(404, f"no batch {m.group('id')}")
            return 200, self._batch_object(self.batches.poll(job))
        return super().handle_get(path)

    def handle_get_raw(self, handler: _Handler, path: str) -> bool:
        m = _CONTENT.match(urlsplit(path).path)
        if m is None:
            return False
        data = self.files.get(m.group("id"))
        if data is None:
            handler._send_json(404, self.error_body(404, f"no file {m.group('id')}"))
        else:
            handler.send_raw(200, data, content_type="application/octet-stream")
        return True

    def handle_post_raw(self, handler: _Handler, path: str, raw: bytes) -> bool:
        if urlsplit(path).path.rstrip("/") != "/v1/files":
            return False
        fields = parse_multipart(handler.headers.get("Content-Type", ""), raw)
        filename, data = fields.get("file", (None, b""))
        purpose = fields.get("purpose", (None, b""))[1].decode()
        if purpose != "batch" or not (filename or "").endswith(".jsonl"):
            handler._send_json(400, self.error_body(400, "batch input must be a .jsonl file with purpose=batch"))
            return True
        file_id = self._store_file(data)
        with self._lock:
            self.stats.file_uploads += 1
        handler._send_json(200, {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                                 "filename": filename, "purpose": "batch", "status": "processed",
                                 "expires_at": None, "status_details": None})
        return True

    def handle_post(self, handler: _Handler, path: str, body: dict) -> None:
        route = urlsplit(path).path.rstrip("/")
        if route == "/v1/batches":
            self._create_batch(handler, body)
            return
        m = _CANCEL.match(route)
        if m:
            job = self.batches.jobs.get(m.group("id"))
            if job is None:
                handler._send_json(404, self.error_body(404, "no such batch"))
                return
            self.batches.cancel(job)
            handler._send_json(200, self._batch_object(job))
            return
        if route != "/v1/chat/completions":
            super().handle_post(handler, path, body)
            return
        self.run_post(handler, body, lambda text: self.completion(body, text), self.error_body)

    # --- batches ------------------------------------------------------------------------------
    def _store_file(self, data: bytes) -> str:
        with self._lock:
            file_id = f"file-{next(self._file_ids)}"
            self.files[file_id] = data
        return file_id

    def _create_batch(self, handler: _Handler, body: dict) -> None:
        data = self.files.get(body.get("input_file_id", ""))
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h" or data is None:
            handler._send_json(400, self.error_body(400, "bad batch request"))
            return
        lines, seen = [], set()
        for raw in data.decode("utf-8").splitlines():
            if not raw.strip():
                continue
            line = json.loads(raw)
            if line["custom_id"] in seen or line.get("url") != body["endpoint"] or line.get("method") != "POST":
                handler._send_json(400, self.error_body(400, f"bad line {line.get('custom_id')}"))
                return
            seen.add(line["custom_id"])
            lines.append((line["custom_id"], line["body"]))
        fault = self.batches.create_fault()
        if fault == "refuse":
            handler._send_json(500, self.error_body(500, "injected fault (batch create refused)"))
            return
        job = self.batches.create(lines, {"metadata": body.get("metadata") or {},
                                          "input_file_id": body["input_file_id"]}, prefix="batch_")
        if fault == "lose":  # the job exists, the reply says otherwise
            handler._send_json(500, self.error_body(500, "injected fault (batch create reply lost)"))
            return
        handler._send_json(200, self._batch_object(job))

    def _batch_object(self, job: FakeBatchJob) -> dict:
        out_id = err_id = None
        errors = None
        counts = {"total": len(job.lines), "completed": 0, "failed": 0}
        if job.results is not None and not job.labels.get("files"):
            ok = [r for r in job.results if r.ok]
            bad = [r for r in job.results if not r.ok]
            if ok:
                out_id = self._store_file("".join(json.dumps({
                    "id": f"batch_req_{r.custom_id[:8]}", "custom_id": r.custom_id,
                    "response": {"status_code": 200, "request_id": "req", "body": self.completion(r.body, r.text)},
                    "error": None}) + "\n" for r in ok).encode())
            if bad:
                err_id = self._store_file("".join(json.dumps(
                    {"id": f"batch_req_{r.custom_id[:8]}", "custom_id": r.custom_id, "response": None,
                     "error": {"code": r.error, "message": "This request could not be executed."}} if not r.ran else
                    {"id": f"batch_req_{r.custom_id[:8]}", "custom_id": r.custom_id,
                     "response": {"status_code": 500, "request_id": "req", "body": self.error_body(500, r.error)},
                     "error": None}) + "\n" for r in bad).encode())
            job.labels["files"] = (out_id, err_id)
            counts = {"total": len(job.lines), "completed": len(ok), "failed": len(bad)}
        elif job.labels.get("files"):
            out_id, err_id = job.labels["files"]
            counts = {"total": len(job.lines), "completed": sum(r.ok for r in job.results),
                      "failed": sum(not r.ok for r in job.results)}
        if job.state == "failed":
            errors = {"object": "list", "data": [{"code": "invalid_request", "message": "validation failed",
                                                  "param": None, "line": 1}]}
        now = int(time.time())
        return {"id": job.job_id, "object": "batch", "endpoint": "/v1/chat/completions", "model": self.model,
                "input_file_id": job.labels["input_file_id"], "completion_window": "24h",
                "status": _STATUS[job.state], "output_file_id": out_id, "error_file_id": err_id,
                "created_at": now, "in_progress_at": None, "expires_at": None, "finalizing_at": None,
                "completed_at": None, "failed_at": None, "expired_at": None, "cancelling_at": None,
                "cancelled_at": None, "request_counts": counts, "errors": errors,
                "metadata": job.labels["metadata"] or None, "usage": None}

    def _list_batches(self, query: dict) -> dict:
        jobs = sorted(self.batches.jobs.values(), key=lambda j: -j.created)
        after = (query.get("after") or [None])[0]
        if after:
            ids = [j.job_id for j in jobs]
            jobs = jobs[ids.index(after) + 1:] if after in ids else []
        limit = int((query.get("limit") or [20])[0])
        page = jobs[:limit]
        return {"object": "list", "data": [self._batch_object_static(j) for j in page],
                "has_more": len(jobs) > limit, "first_id": page[0].job_id if page else None,
                "last_id": page[-1].job_id if page else None}

    def _batch_object_static(self, job: FakeBatchJob) -> dict:
        """A job as listed (listing does not advance it)."""
        return self._batch_object(job)
