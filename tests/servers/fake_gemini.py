"""A fake Gemini Developer API server: ``generateContent``, batch mode and the file endpoints.

Speaks enough of the REST protocol for ``google-genai`` (point it here with
``HttpOptions(base_url=server.base_url)`` or ``GOOGLE_GEMINI_BASE_URL``): candidates with
text parts, usage metadata (prompt tokens: 10 + 100 per inline part; candidates: the answer's
words), and Google-style error bodies (``{"error": {code, message, status}}``); with
``retry_delay`` set, injected 429/503 bodies carry a ``google.rpc.RetryInfo`` detail.

Batch mode (google-genai 3.6.1's wire format, under ``/v1`` and ``/v1beta``):
``POST /{v}/models/{m}:batchGenerateContent`` (inlined requests, or ``fileName`` of an uploaded
JSONL file), ``GET /{v}/batches/{id}`` (advances the job, :mod:`tests.servers.batch_jobs`),
``GET /{v}/batches`` (list), ``POST /{v}/batches/{id}:cancel``; the resumable upload
(``POST /upload/{v}/files`` then ``POST /upload-session/{id}`` chunks) and
``GET /{v}/files/{id}:download``. Results are inlined for inline jobs and a responses file
(``{"key", "response"}`` / ``{"key", "error"}`` lines) for file jobs, both in shuffled order.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
from urllib.parse import parse_qs, urlsplit

from .base import FakeServer, _Handler
from .batch_jobs import BatchEngine, FakeBatchJob

_V = r"/(?P<version>v1(?:beta|alpha)?)"
_GENERATE = re.compile(_V + r"/models/(?P<model>[^/:]+):generateContent$")
_BATCH_CREATE = re.compile(_V + r"/models/(?P<model>[^/:]+):batchGenerateContent$")
_BATCH = re.compile(_V + r"/batches/(?P<id>[^/:]+)$")
_BATCH_CANCEL = re.compile(_V + r"/batches/(?P<id>[^/:]+):cancel$")
_BATCHES = re.compile(_V + r"/batches$")
_UPLOAD_START = re.compile(r"^/upload" + _V + r"/files$")
_UPLOAD_SESSION = re.compile(r"^/upload-session/(?P<id>[^/]+)$")
_DOWNLOAD = re.compile(_V + r"/files/(?P<id>[^/:]+):download$")
_STATUS_NAMES = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_STATES = {"pending": "BATCH_STATE_PENDING", "running": "BATCH_STATE_RUNNING", "succeeded": "BATCH_STATE_SUCCEEDED",
           "failed": "BATCH_STATE_FAILED", "expired": "BATCH_STATE_EXPIRED", "cancelled": "BATCH_STATE_CANCELLED"}


def last_user_text(body: dict) -> str:
    """The text parts of the last user turn of a ``generateContent`` body, joined by spaces."""
    for content in reversed(body.get("contents") or []):
        if content.get("role", "user") == "user":
            return " ".join(p["text"] for p in content.get("parts") or [] if "text" in p)
    return ""


def inline_parts(body: dict) -> list[str]:
    """MIME types of the inline-data parts of all turns, in order."""
    kinds = []
    for content in body.get("contents") or []:
        for part in content.get("parts") or []:
            data = part.get("inlineData") or part.get("inline_data")
            if data:
                kinds.append(data.get("mimeType") or data.get("mime_type"))
    return kinds


def usage_for(body: dict, text: str) -> dict:
    """Deterministic usage metadata: 10 + 100 per inline part in, one per answer word out."""
    prompt = 10 + 100 * len(inline_parts(body))
    out = len(text.split())
    return {"promptTokenCount": prompt, "candidatesTokenCount": out, "totalTokenCount": prompt + out}


class FakeGeminiServer(FakeServer):
    """Gemini server with injected faults (options: :class:`FakeServer`).

    Args:
        retry_delay: put ``RetryInfo.retryDelay`` (e.g. ``"7s"``) in injected 429/503 bodies.
        batch_polls / batch_gate / batch_outcomes / batch_create_faults: the batch jobs' script
            (:class:`tests.servers.batch_jobs.BatchEngine`).
        **kwargs: passed to :class:`tests.servers.base.FakeServer`.
    """

    finish_reason = "STOP"  # set to e.g. "MAX_TOKENS" to mimic a reply cut by the token budget

    def __init__(self, retry_delay: str | None = None, batch_polls: int = 1,
                 batch_gate: threading.Event | None = None, batch_outcomes: tuple[str, ...] = (),
                 batch_create_faults: tuple[str, ...] = (), **kwargs):
        super().__init__(**kwargs)
        self.retry_delay = retry_delay
        self.batches = BatchEngine(self, polls=batch_polls, gate=batch_gate, outcomes=batch_outcomes,
                                   create_faults=batch_create_faults)
        self.files: dict[str, bytes] = {}
        self.uploads: dict[str, dict] = {}
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        """The URL for ``HttpOptions(base_url=...)``: ``http://127.0.0.1:PORT/``."""
        return f"{self.root_url}/"

    @staticmethod
    def default_answer(body: dict) -> str:
        """``ECHO: <last user text> #<8 hex of the whole body>``."""
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]
        return f"ECHO: {last_user_text(body)} #{digest}"

    def response(self, body: dict, text: str, model: str) -> dict:
        """A ``GenerateContentResponse`` answering ``body`` with ``text``."""
        return {
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                            "finishReason": self.finish_reason, "index": 0}],
            "usageMetadata": usage_for(body, text),
            "modelVersion": model,
        }

    @staticmethod
    def error_body(status: int, message: str) -> dict:
        return {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}}

    def fault_body(self, payload: dict, status: int) -> dict:
        if self.retry_delay and status in (429, 503):
            payload["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                            "retryDelay": self.retry_delay}]
        return payload

    def handle_post(self, handler: _Handler, path: str, body: dict) -> None:
        route = urlsplit(path).path
        match = _GENERATE.match(route)
        if match is not None:
            model = match.group("model")
            self.run_post(handler, body, lambda text: self.response(body, text, model), self.error_body)
            return
        match = _BATCH_CREATE.match(route)
        if match is not None:
            self._create_batch(handler, match.group("model"), body)
            return
        match = _BATCH_CANCEL.match(route)
        if match is not None:
            job = self.batches.jobs.get(match.group("id"))
            if job is not None:
                self.batches.cancel(job)
            handler._send_json(200 if job else 404, {} if job else self.error_body(404, "no such batch"))
            return
        super().handle_post(handler, path, body)

    def handle_get(self, path: str) -> tuple[int, object]:
        route = urlsplit(path).path
        match = _BATCH.match(route)
        if match is not None:
            job = self.batches.jobs.get(match.group("id"))
            if job is None:
                return 404, self.error_body(404, f"no batch {match.group('id')}")
            return 200, self._operation(self.batches.poll(job))
        if _BATCHES.match(route):
            query = parse_qs(urlsplit(path).query)
            jobs = sorted(self.batches.jobs.values(), key=lambda j: -j.created)
            start = int((query.get("pageToken") or ["0"])[0] or 0)
            size = int((query.get("pageSize") or ["50"])[0])
            page = jobs[start:start + size]
            out: dict = {"operations": [self._operation(j) for j in page]}
            if start + size < len(jobs):
                out["nextPageToken"] = str(start + size)
            return 200, out
        return super().handle_get(path)

    # --- files --------------------------------------------------------------------------------
    def handle_post_raw(self, handler: _Handler, path: str, raw: bytes) -> bool:
        route = urlsplit(path).path
        if _UPLOAD_START.match(route):
            if handler.headers.get("X-Goog-Upload-Protocol") != "resumable" or \
                    handler.headers.get("X-Goog-Upload-Command") != "start":
                handler._send_json(400, self.error_body(400, "expected a resumable upload start"))
                return True
            session = f"u{next(self._ids)}"
            with self._lock:
                self.uploads[session] = {"size": int(handler.headers.get("X-Goog-Upload-Header-Content-Length") or 0),
                                         "data": b"", "mime": handler.headers.get("X-Goog-Upload-Header-Content-Type")}
            handler.send_raw(200, b"{}", headers={"X-Goog-Upload-URL": f"{self.root_url}/upload-session/{session}",
                                                  "X-Goog-Upload-Status": "active"})
            return True
        match = _UPLOAD_SESSION.match(route)
        if match is None:
            return False
        upload = self.uploads.get(match.group("id"))
        offset = int(handler.headers.get("X-Goog-Upload-Offset") or -1)
        if upload is None or offset != len(upload["data"]):
            handler._send_json(400, self.error_body(400, "bad upload session or offset"))
            return True
        upload["data"] += raw
        command = handler.headers.get("X-Goog-Upload-Command", "")
        if "finalize" not in command:
            handler.send_raw(200, b"{}", headers={"X-Goog-Upload-Status": "active"})
            return True
        file_id = f"f{next(self._ids)}"
        with self._lock:
            self.files[file_id] = upload["data"]
            self.stats.file_uploads += 1
        handler._send_json(200, {"file": {"name": f"files/{file_id}", "mimeType": upload["mime"],
                                          "sizeBytes": str(len(upload["data"])), "state": "ACTIVE",
                                          "uri": f"{self.root_url}/v1beta/files/{file_id}"}},
                           headers={"X-Goog-Upload-Status": "final"})
        return True

    def handle_get_raw(self, handler: _Handler, path: str) -> bool:
        match = _DOWNLOAD.match(urlsplit(path).path)
        if match is None:
            return False
        data = self.files.get(match.group("id"))
        if data is None:
            handler._send_json(404, self.error_body(404, "no such file"))
        else:
            handler.send_raw(200, data, content_type="application/octet-stream")
        return True

    # --- batches ------------------------------------------------------------------------------
    def _create_batch(self, handler: _Handler, model: str, body: dict) -> None:
        batch = body.get("batch") or {}
        source = batch.get("inputConfig") or {}
        lines: list[tuple[str, dict]] = []
        if "requests" in source:
            for item in source["requests"].get("requests", []):
                key = (item.get("metadata") or {}).get("key")
                lines.append((key, item["request"]))
            kind = "inline"
        elif source.get("fileName", "").startswith("files/"):
            data = self.files.get(source["fileName"].split("/", 1)[1])
            if data is None:
                handler._send_json(400, self.error_body(400, f"no file {source['fileName']}"))
                return
            for raw in data.decode("utf-8").splitlines():
                if raw.strip():
                    line = json.loads(raw)
                    lines.append((line["key"], line["request"]))
            kind = "file"
        else:
            handler._send_json(400, self.error_body(400, "batch needs inlined requests or a file"))
            return
        keys = [k for k, _ in lines]
        if None in keys or len(set(keys)) != len(keys):
            handler._send_json(400, self.error_body(400, "every request needs a unique key"))
            return
        fault = self.batches.create_fault()
        if fault == "refuse":
            handler._send_json(500, self.error_body(500, "injected fault (batch create refused)"))
            return
        job = self.batches.create(lines, {"display_name": batch.get("displayName"), "model": model, "kind": kind},
                                  prefix="b")
        if fault == "lose":  # the job exists, the reply says otherwise
            handler._send_json(500, self.error_body(500, "injected fault (batch create reply lost)"))
            return
        handler._send_json(200, self._operation(job))

    def _operation(self, job: FakeBatchJob) -> dict:
        meta: dict = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
                      "model": f"models/{job.labels['model']}", "state": _STATES[job.state],
                      "createTime": "2026-01-01T00:00:00Z", "updateTime": "2026-01-01T00:00:00Z",
                      "batchStats": {"requestCount": str(len(job.lines))}}
        if job.labels.get("display_name"):
            meta["displayName"] = job.labels["display_name"]
        if job.results is not None and job.state != "failed":
            items = []
            for r in job.results:
                if r.ok:
                    items.append({"key": r.custom_id, "response": self.response(r.body, r.text, job.labels["model"])})
                else:
                    items.append({"key": r.custom_id, "error": {"code": 500 if r.ran else 4, "message": r.error}})
            if job.labels["kind"] == "inline":
                meta["output"] = {"inlinedResponses": {"inlinedResponses": [
                    {"metadata": {"key": i.pop("key")}, **i} for i in items]}}
            else:
                if "out_file" not in job.labels:
                    file_id = f"f{next(self._ids)}"
                    self.files[file_id] = "".join(json.dumps(i) + "\n" for i in items).encode()
                    job.labels["out_file"] = file_id
                meta["output"] = {"responsesFile": f"files/{job.labels['out_file']}"}
        return {"name": f"batches/{job.job_id}", "metadata": meta, "done": job.state not in ("pending", "running")}
