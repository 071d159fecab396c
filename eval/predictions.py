"""``predictions.jsonl``: every answer is persisted the moment it arrives, before any scoring.

One JSON object per line: ``{"uid", "qa_type", "prediction", "error", "cached", "latency_s"}``; a line
with ``error`` set records a failed request (``prediction`` null). The last line per uid wins, so a
resumed run that answers a previously failed sample simply appends. A failed request and an empty
(or whitespace-only) answer are both *not done*: a rerun requests them again, as the response cache
never stores an empty answer either. Each append is flushed and
fsynced; a torn last line (kill -9 mid-write) is ignored on load.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from mvbench.errors import InputError
from mvbench.strict_json import dumps

_START_OVER = "rerun with --overwrite to discard these predictions and start over"


def is_answer(prediction: object) -> bool:
    """Whether a stored prediction is a usable answer: a string with something besides whitespace.

    >>> is_answer("tying"), is_answer("  \\n"), is_answer(None)
    (True, False, False)
    """
    return isinstance(prediction, str) and bool(prediction.strip())


class PredictionStore:
    """Append-only store of predictions keyed by sample uid.

    Args:
        path: the ``predictions.jsonl`` file (created with its folder if missing).

    Raises:
        InputError: a damaged line that is not the last (not JSON, not an object, no ``uid``),
            naming ``file:line`` and suggesting ``--overwrite``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.entries: dict[str, dict[str, Any]] = self._load()
        self._file = open(self.path, "a", encoding="utf-8")

    def _load(self) -> dict[str, dict[str, Any]]:
        entries: dict[str, dict[str, Any]] = {}
        if not self.path.exists():
            return entries
        with open(self.path, "rb") as f:
            data = f.read()
        lines = data.split(b"\n")
        torn = False
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            where = f"{self.path}:{i + 1}"
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                if i == len(lines) - 1:  # torn final line from a killed writer
                    torn = True
                    continue
                raise InputError(f"{where}: damaged line (not JSON: {e}); {_START_OVER}") from None
            if not isinstance(obj, dict):
                raise InputError(f"{where}: damaged line (a JSON {type(obj).__name__}, not an object); {_START_OVER}")
            if not isinstance(obj.get("uid"), str):
                raise InputError(f"{where}: damaged line (no string 'uid'); {_START_OVER}")
            entries[obj["uid"]] = obj
        if torn:  # cut the torn tail in place (never rewrite the saved answers) so the next append starts clean
            with open(self.path, "rb+") as f:
                f.truncate(len(data) - len(lines[-1]))
                f.flush()
                os.fsync(f.fileno())
        elif data and not data.endswith(b"\n"):  # a whole last line without its newline: keep it
            with open(self.path, "ab") as f:
                f.write(b"\n")
        return entries

    def done(self, uid: str) -> bool:
        """Whether ``uid`` already has a non-empty answer (failed requests and empty answers are not done)."""
        e = self.entries.get(uid)
        return e is not None and is_answer(e.get("prediction"))

    def append(self, entry: dict[str, Any]) -> None:
        """Persist one result (flush + fsync) and index it."""
        line = dumps(entry) + "\n"  # strict JSON
        with self._lock:
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())
            self.entries[entry["uid"]] = entry

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> "PredictionStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
