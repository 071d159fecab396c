"""A persistent, crash-safe cache of LLM responses, keyed by content.

Design
------
Store: an SQLite database in WAL mode (the index that ``get`` reads) plus a JSONL log
(the write-ahead log and audit trail).

Write order: every ``put`` first appends one JSON line to the log, flushes and fsyncs it, and
only then upserts the row into SQLite. A crash after the fsync loses nothing: on the next open,
:meth:`ResponseCache._replay_log` re-inserts every log entry whose key SQLite lacks. A crash
mid-append leaves at most one torn last line, which the replay skips.

Layout, for ``ResponseCache(path)`` with ``path`` a directory (created if missing)::

    path/responses.sqlite   # table responses(key TEXT PRIMARY KEY, value TEXT, meta TEXT, created REAL)
    path/responses.jsonl    # one {"key", "value", "meta", "created"} object per line, append-only

Key: :meth:`ResponseCache.key` is the sha256 of canonical JSON (sorted keys, ``(",", ":")``
separators, non-ASCII kept) over ``{"schema": SCHEMA_VERSION, **parts}``. Callers pass what
changes an answer: ``provider``, ``model``, normalised generation ``params`` (temperature as a
float, so 0 and 0.0 agree), a ``prompt`` hash (or the messages themselves) and ``images``
hashes. Bumping :data:`SCHEMA_VERSION` invalidates every old entry safely.

Sampled calls: a call with ``temperature > 0`` is not deterministic, so caching it under the
same key as another sample would replay one sample for all. Such keys must carry a
``sample_index`` part; :meth:`ResponseCache.key` raises ``ValueError`` otherwise, so the rule is
enforced wherever a key is built (the clients build their keys through it).

Only non-empty answers are cached: ``put`` ignores empty or whitespace-only values and values
marked as errors (``meta={"error": ...}``), so a failed call is retried on the next run.

Concurrency: one lock serialises writes and reads inside a process; SQLite calls are short, so
holding a threading lock from async code is acceptable (no awaits happen while it is held).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from mvbench.errors import InputError


def cache_root(kind: str) -> Path:
    """``$MVBENCH_CACHE/<kind>`` (default ``~/.cache/mvbench/<kind>``): the one rule for every cache folder."""
    return Path(os.environ.get("MVBENCH_CACHE") or Path.home() / ".cache" / "mvbench") / kind

SCHEMA_VERSION = 1
DB_NAME = "responses.sqlite"
LOG_NAME = "responses.jsonl"


def canonical_json(obj: object) -> str:
    """Serialise ``obj`` deterministically (sorted keys, compact separators).

    Args:
        obj: any JSON-serialisable value.

    Returns:
        The canonical JSON text.
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_text(text: str) -> str:
    """Hex sha256 of a UTF-8 string (used for prompt hashes)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class CacheStats:
    """Counters of one :class:`ResponseCache` since it was opened."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    skipped: int = 0
    replayed: int = 0


class ResponseCache:
    """SQLite-indexed, JSONL-logged cache of model answers (see the module docstring).

    Args:
        path: directory holding ``responses.sqlite`` and ``responses.jsonl``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise InputError("the response cache path must be a directory", path=self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.db_path = self.path / DB_NAME
        self.log_path = self.path / LOG_NAME
        self.stats = CacheStats()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses ("
            "key TEXT PRIMARY KEY, value TEXT NOT NULL, meta TEXT NOT NULL, created REAL NOT NULL)"
        )
        self._replay_log()
        self._log = open(self.log_path, "a", encoding="utf-8")

    @staticmethod
    def key(**parts: object) -> str:
        """Build a cache key from the parts that change an answer.

        Args:
            **parts: e.g. ``provider``, ``model``, ``params`` (a dict), ``prompt`` (hash or
                messages), ``images`` (list of image hashes), ``sample_index``. A ``params``
                dict with ``temperature > 0`` requires a ``sample_index`` part.

        Returns:
            The hex sha256 of the canonical JSON of the schema version plus ``parts``.

        Raises:
            ValueError: a sampled call (temperature > 0) without ``sample_index``.
        """
        params = parts.get("params")
        if isinstance(params, dict):
            temperature = float(params.get("temperature", 0.0) or 0.0)
            params = {**params, "temperature": temperature}
            parts = {**parts, "params": params}
            if temperature > 0 and parts.get("sample_index") is None:
                raise ValueError(
                    "a sampled call (temperature > 0) must pass sample_index to the cache key, "
                    "or every sample would replay the first one"
                )
        return hashlib.sha256(canonical_json({"schema": SCHEMA_VERSION, **parts}).encode()).hexdigest()

    def get(self, key: str) -> str | None:
        """Return the cached answer for ``key``, or None (counted as a hit or a miss)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.stats.misses += 1
                return None
            self.stats.hits += 1
            return row[0]

    def put(self, key: str, value: str | None, meta: dict | None = None) -> bool:
        """Store an answer: append + fsync it to the log, then upsert it into SQLite.

        Args:
            key: from :meth:`key`.
            value: the answer text. Empty or whitespace-only answers are not stored.
            meta: JSON-serialisable provenance (model, uid, latency...). A truthy ``error``
                entry marks a failed call, which is not stored.

        Returns:
            True if stored, False if skipped.
        """
        meta = dict(meta or {})
        if not isinstance(value, str) or not value.strip() or meta.get("error"):
            with self._lock:
                self.stats.skipped += 1
            return False
        entry = {"key": key, "value": value, "meta": meta, "created": time.time()}
        line = canonical_json(entry) + "\n"
        with self._lock:
            self._log.write(line)
            self._log.flush()
            os.fsync(self._log.fileno())
            self._upsert(entry)
            self.stats.writes += 1
        return True

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        """Close the log and the database (idempotent)."""
        with self._lock:
            if not self._log.closed:
                self._log.close()
            self._db.close()

    def __enter__(self) -> "ResponseCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _upsert(self, entry: dict) -> None:
        self._db.execute(
            "INSERT INTO responses(key, value, meta, created) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value, meta=excluded.meta, "
            "created=excluded.created",
            (entry["key"], entry["value"], canonical_json(entry["meta"]), entry["created"]),
        )

    def _replay_log(self) -> None:
        """Insert log entries that SQLite lacks (a crash between fsync and upsert).

        The last log entry of a key wins, as it did when written. A torn last line is skipped,
        and a newline is added after it so the next append starts on a fresh line.
        """
        if not self.log_path.exists():
            return
        known = {row[0] for row in self._db.execute("SELECT key FROM responses")}
        pending: dict[str, dict] = {}
        with open(self.log_path, encoding="utf-8") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                    key, value = entry["key"], entry["value"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue
                if key in known or not isinstance(value, str) or not value.strip():
                    continue
                entry.setdefault("meta", {})
                entry.setdefault("created", time.time())
                pending[key] = entry
        for entry in pending.values():
            self._upsert(entry)
        self.stats.replayed = len(pending)
        with open(self.log_path, "rb+") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")
