"""The response cache's guarantees: write-ahead replay, key content, what is never cached."""

from __future__ import annotations

import json
import threading

import pytest

from mvbench.llm.cache import LOG_NAME, ResponseCache

BASE = dict(provider="openai-chat", model="m", params={"temperature": 0.0, "max_tokens": 8},
            prompt="p-hash", images=["img-1"])


def test_put_get_roundtrip_and_counters(tmp_path):
    with ResponseCache(tmp_path / "c") as cache:
        key = ResponseCache.key(**BASE)
        assert cache.get(key) is None
        assert cache.put(key, "answer", {"uid": "s1"})
        assert cache.get(key) == "answer"
        assert (cache.stats.hits, cache.stats.misses, cache.stats.writes) == (1, 1, 1)
    with ResponseCache(tmp_path / "c") as reopened:
        assert reopened.get(key) == "answer"
        assert reopened.stats.replayed == 0


def test_crash_between_log_and_index_is_replayed(tmp_path, monkeypatch):
    cache = ResponseCache(tmp_path / "c")
    key = ResponseCache.key(**BASE)

    def crash(entry):
        raise RuntimeError("simulated crash after fsync, before the SQLite upsert")

    monkeypatch.setattr(cache, "_upsert", crash)
    with pytest.raises(RuntimeError):
        cache.put(key, "survives", {})
    monkeypatch.undo()
    assert cache.get(key) is None  # not indexed
    cache.close()

    with ResponseCache(tmp_path / "c") as recovered:
        assert recovered.stats.replayed == 1
        assert recovered.get(key) == "survives"


def test_torn_last_line_is_skipped_and_next_append_is_clean(tmp_path):
    root = tmp_path / "c"
    k1, k2 = ResponseCache.key(**BASE, uid=1), ResponseCache.key(**BASE, uid=2)
    with ResponseCache(root) as cache:
        cache.put(k1, "one", {})
    with open(root / LOG_NAME, "a") as f:
        f.write('{"key": "torn", "val')  # a crash mid-append
    with ResponseCache(root) as cache:
        cache.put(k2, "two", {})
    (root / "responses.sqlite").unlink()  # lose the whole index: the log alone rebuilds it
    for suffix in ("-wal", "-shm"):
        (root / f"responses.sqlite{suffix}").unlink(missing_ok=True)
    with ResponseCache(root) as rebuilt:
        assert rebuilt.stats.replayed == 2
        assert (rebuilt.get(k1), rebuilt.get(k2)) == ("one", "two")


@pytest.mark.parametrize("change", [
    {"model": "other"},
    {"provider": "gemini"},
    {"prompt": "other-prompt"},
    {"images": ["img-2"]},
    {"images": ["img-1", "img-1"]},
    {"params": {"temperature": 0.0, "max_tokens": 9}},
])
def test_key_changes_with_each_part(change):
    assert ResponseCache.key(**{**BASE, **change}) != ResponseCache.key(**BASE)


def test_key_is_canonical():
    same = dict(images=["img-1"], prompt="p-hash", model="m", provider="openai-chat",
                params={"max_tokens": 8, "temperature": 0})
    assert ResponseCache.key(**same) == ResponseCache.key(**BASE)


@pytest.mark.parametrize("value,meta", [("", {}), ("   \n", {}), (None, {}),
                                        ("partial", {"error": "timeout"})])
def test_empty_and_error_answers_are_never_cached(tmp_path, value, meta):
    with ResponseCache(tmp_path / "c") as cache:
        key = ResponseCache.key(**BASE)
        assert cache.put(key, value, meta) is False
        assert cache.get(key) is None
        assert cache.stats.skipped == 1
    assert (tmp_path / "c" / LOG_NAME).read_text() == ""


def test_sampled_calls_need_a_sample_index():
    sampled = {**BASE, "params": {"temperature": 0.7, "max_tokens": 8}}
    with pytest.raises(ValueError, match="sample_index"):
        ResponseCache.key(**sampled)
    k0 = ResponseCache.key(**sampled, sample_index=0)
    k1 = ResponseCache.key(**sampled, sample_index=1)
    assert k0 != k1


def test_concurrent_puts_from_threads(tmp_path):
    with ResponseCache(tmp_path / "c") as cache:
        def worker(t):
            for i in range(25):
                cache.put(ResponseCache.key(**BASE, t=t, i=i), f"{t}-{i}", {})
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert len(cache) == 200
    lines = (tmp_path / "c" / LOG_NAME).read_text().splitlines()
    assert len(lines) == 200 and all(json.loads(line)["value"] for line in lines)
