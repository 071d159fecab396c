"""The run journal: every finished paid call, persisted the moment it returns.

``OUT/.generation/calls.jsonl`` holds one JSON object per successful call: ``call_id`` (the call's
identity, :func:`mvbench.generation.plan.call_id`), the instance ``uid``, the writer slot, provider
and model, how it was answered (``live``, ``batch`` or ``cache``), the answer text, token usage,
cost and attempts. Each line is flushed and fsynced before the answer is used, so a process killed
at any point loses at most the call in flight; a rerun never asks again for a call in the journal,
with or without the response cache. A torn last line (a kill mid-write) is dropped on load.

``OUT/.generation/failures.jsonl`` lists calls that failed after their retries (error text masked);
they are retried on the next run.

Group commit: :meth:`JsonlLog.append_async` queues the line and awaits a flush in a worker thread;
one ``fsync`` covers every line queued by then. Nothing blocks the event loop, and a caller goes
on only once its line is on disk, so the guarantee above holds at hundreds of answers a second.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path
from typing import Any

from mvbench.errors import InputError
from mvbench.redact import redact


class JsonlLog:
    """An append-only JSONL file of objects keyed by ``key_field`` (last line per key wins).

    Raises:
        InputError: a damaged line that is not the last (naming ``file:line``).
    """

    def __init__(self, path: Path, key_field: str):
        self.path = Path(path)
        self.key_field = key_field
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # held while writing and syncing
        self._queue_lock = threading.Lock()
        self._queue: list[tuple[int, str, dict[str, Any]]] = []
        self._queued = 0
        self._flushed = 0
        self._flusher: asyncio.Future | None = None  # the one flush in flight, shared by its waiters
        self.entries: dict[str, dict[str, Any]] = self._load()
        self._file = open(self.path, "a", encoding="utf-8")

    def _load(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        entries: dict[str, dict[str, Any]] = {}
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                key = obj[self.key_field]
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
                if i == len(lines) - 1:  # torn tail from a killed writer: drop it
                    self.path.write_bytes(b"\n".join(lines[:-1]) + (b"\n" if len(lines) > 1 else b""))
                    break
                raise InputError(f"{self.path}:{i + 1}: damaged journal line: remove that one line (or restore "
                                 "the file from a copy) and rerun; keep the rest of the folder: it holds paid "
                                 "answers, open batch jobs and the drafts snapshot of generated records") from None
            entries[str(key)] = obj
        else:
            if data and not data.endswith(b"\n"):
                with open(self.path, "ab") as f:
                    f.write(b"\n")
        return entries

    def _enqueue(self, entry: dict[str, Any]) -> int:
        line = json.dumps(entry, ensure_ascii=False, allow_nan=False) + "\n"
        with self._queue_lock:
            self._queued += 1
            self._queue.append((self._queued, line, entry))
            return self._queued

    def _flush_upto(self, seq: int) -> None:
        """Write and fsync every queued line (once), unless line ``seq`` is already on disk."""
        with self._lock:
            if self._flushed >= seq:
                return
            with self._queue_lock:
                batch, self._queue = self._queue, []
            self._file.write("".join(line for _, line, _ in batch))
            self._file.flush()
            os.fsync(self._file.fileno())
            for n, _, entry in batch:
                self.entries[str(entry[self.key_field])] = entry
                self._flushed = n

    def append(self, entry: dict[str, Any]) -> None:
        """Persist one entry (flush + fsync), then index it."""
        self._flush_upto(self._enqueue(entry))

    async def append_async(self, entry: dict[str, Any]) -> None:
        """:meth:`append` without blocking the event loop (group commit, see the module docstring)."""
        seq = self._enqueue(entry)
        while self._flushed < seq:
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.ensure_future(asyncio.to_thread(self._flush_upto, self._queued))
            await asyncio.shield(self._flusher)

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()


class Journal:
    """The calls journal and the failures log of one output folder (see the module docstring)."""

    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir)
        self.calls = JsonlLog(state_dir / "calls.jsonl", "call_id")
        self.failures = JsonlLog(state_dir / "failures.jsonl", "call_id")

    def done(self, call_id: str) -> bool:
        return call_id in self.calls.entries

    def get(self, call_id: str) -> dict[str, Any] | None:
        return self.calls.entries.get(call_id)

    async def record_success(self, entry: dict[str, Any]) -> None:
        """Persist a finished call (its text masked); returns once it is on disk."""
        await self.calls.append_async({**entry, "text": redact(entry["text"])})

    async def record_failure(self, call_id: str, uid: str, variant: str, error: str) -> None:
        """Persist a failed call (retried next run)."""
        await self.failures.append_async({"call_id": call_id, "uid": uid, "variant": variant,
                                          "error": redact(error)})

    def spent_usd(self) -> float:
        """USD spent on every journalled call (all runs into this folder, the validator's included)."""
        return sum(float(e.get("cost_usd") or 0.0) for e in self.calls.entries.values())

    def close(self) -> None:
        self.calls.close()
        self.failures.close()
