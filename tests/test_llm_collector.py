"""collector_tuned freezes and raises the young threshold for a block, nests, and restores the settings."""

from __future__ import annotations

import gc
import threading

from mvbench.llm.collector import collector_tuned


def test_settings_change_inside_and_come_back() -> None:
    before = gc.get_threshold()
    with collector_tuned(123_456):
        assert gc.get_threshold()[0] == max(123_456, before[0])
        assert gc.get_freeze_count() > 0
        with collector_tuned():  # nested: no change, no early restore
            assert gc.get_threshold()[0] == max(123_456, before[0])
        assert gc.get_threshold()[0] == max(123_456, before[0])
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_restored_after_an_exception_and_across_threads() -> None:
    before = gc.get_threshold()
    try:
        with collector_tuned():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
    inside = threading.Event()
    release = threading.Event()

    def worker() -> None:
        with collector_tuned():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(10)
    with collector_tuned():
        pass
    assert gc.get_threshold() != before  # the worker's block is still open
    release.set()
    t.join(10)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
