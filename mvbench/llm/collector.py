"""Keep the garbage collector from stalling an event loop that has many requests in flight.

A run that sends thousands of calls holds long-lived structures (planned instances, records,
cached frames): CPython's collector scans them again and again as young objects pile up, and each
scan stops the event loop for milliseconds, delaying every answer waiting to be read. While a
batch of calls is in flight, :func:`collector_tuned` freezes what already exists (moved out of the
collector's view, nothing is freed early) and collects young objects less often; the old settings
come back afterwards. Measured with ``bench/generate.py``: 0.82 of the bound at 64 requests in
flight with the default settings, 0.89-0.91 tuned (whole-run ratios of 16 waves).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None


@contextlib.contextmanager
def collector_tuned(gen0_threshold: int = 50_000) -> Iterator[None]:
    """Freeze existing objects and raise the young-generation threshold for the block (nestable,
    thread-safe: only the outermost block changes and restores the settings)."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(max(gen0_threshold, _saved[0]), _saved[1], _saved[2])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                gc.unfreeze()
