"""VS/RC judge-reply parser, the judge (retries, cache, failures) and caption pooling."""

import asyncio

import pytest

from mvbench.eval.judge import Judge, cache_key
from mvbench.tasks import captions as caption

GOOD = "R2: 4\nR3: 3\nR8: 5\nR5: 4\nR4: 2"


class DictCache:
    def __init__(self):
        self.data, self.meta = {}, {}

    def get(self, key):
        return self.data.get(key)

    def put(self, key, value, meta):
        self.data[key], self.meta[key] = value, meta


def test_parse_variants():
    assert caption.parse(GOOD) == {"R2": 4, "R3": 3, "R8": 5, "R5": 4, "R4": 2}
    assert caption.parse("**R2**: 3") == {"R2": 3}
    assert caption.parse("R2 = 5 R3 4") == {"R2": 5, "R3": 4}
    assert caption.parse("") == {}


def test_task_routing_by_substring():
    from mvbench.tasks import task_for_qa_type

    assert task_for_qa_type("video_summary_gemini").key == "vs" and task_for_qa_type("region_caption").key == "rc"


def test_judge_retries_until_all_five_parse():
    replies = iter(["R2: 4", "R2: 4\nR3: 3", GOOD])
    calls = []

    def complete(messages, **params):
        calls.append(params)
        return next(replies)

    judge = Judge(complete, backoff=0)
    assert judge.judge_many([("pred", "ref", "vs")]) == [caption.parse(GOOD)]
    assert len(calls) == 3 and calls[0]["temperature"] == 0.0
    assert judge.stats.retries == 2 and judge.stats.failed == 0


def test_judge_drops_pairs_failing_five_times_and_counts_them():
    async def complete(messages, **params):
        raise RuntimeError("server down")

    judge = Judge(complete, backoff=0)
    assert judge.judge_many([("p", "r", "rc")]) == [None]
    assert judge.stats.calls == 5 and judge.stats.failed == 1
    assert "RuntimeError" in judge.info()["sample_errors"][0]


def test_judge_prompt_and_cache():
    seen = []

    async def complete(messages, **params):
        seen.append(messages)
        return GOOD

    cache = DictCache()
    judge = Judge(complete, model="m", cache=cache, backoff=0)
    assert asyncio.run(judge.ajudge("the {reference} pred", "the ref", "vs")) is not None
    user = seen[0][-1]["content"]
    assert len(seen[0]) == 1 and seen[0][0]["role"] == "user"  # official: one user message
    assert "**Ground Truth:** the ref" in user and "**Prediction:** the {reference} pred" in user
    assert "predicted video summary" in user
    for aspect in ("R2 - Medical Terminology", "R3 - Anatomical", "R8 - Specificity", "R5 - Clinical", "R4 - Action"):
        assert aspect in user
    key = cache_key("m", judge.prompt_version, "video_summary", "the {reference} pred", "the ref")
    assert cache.data[key] == GOOD
    again = Judge(complete, model="m", cache=cache, backoff=0)
    again.judge_many([("the {reference} pred", "the ref", "vs")])
    assert len(seen) == 1 and again.stats.cache_hits == 1


def test_aggregate_mean_of_aspect_means_and_empty_pairs():
    recs = [{"answer": "a", "gnd": "b"}, {"answer": "", "gnd": "b"}, {"answer": "a", "gnd": "b"}]
    samples = [caption.score_sample(r) for r in recs]
    assert [s["judgeable"] for s in samples] == [1.0, 0.0, 1.0]
    samples[0].update({"R2": 5, "R3": 5, "R8": 5, "R5": 5, "R4": 1})
    samples[2].update({"R2": 3, "R3": 3, "R8": 3, "R5": 3, "R4": 3})
    out = caption.aggregate(recs, samples, prefix="vs")
    assert out["vs_llm"] == pytest.approx((4 + 4 + 4 + 4 + 2) / 5)
    assert caption.aggregate(recs, [{}, {}, {}], prefix="rc")["rc_llm"] is None


def test_a_connected_judge_opens_and_closes_one_client_per_batch_in_its_event_loop():
    clients = []

    class Client:
        def __init__(self):
            self.loop, self.closed_in, self.calls = asyncio.get_running_loop(), None, 0
            clients.append(self)

        async def complete(self, messages, **params):
            assert asyncio.get_running_loop() is self.loop and self.closed_in is None
            self.calls += 1
            return GOOD

        async def aclose(self):
            self.closed_in = asyncio.get_running_loop()

    judge = Judge(connect=Client, backoff=0)
    assert judge.judge_many([("a", "b", "vs"), ("c", "d", "rc")]) == [caption.parse(GOOD)] * 2
    assert judge.judge_many([("e", "f", "vs")]) == [caption.parse(GOOD)]  # reusable: a new client
    assert asyncio.run(judge.ajudge("g", "h", "dvc")) == caption.parse(GOOD)
    assert [c.calls for c in clients] == [2, 1, 1]
    assert all(c.closed_in is c.loop for c in clients)  # closed in the loop that opened it
    with pytest.raises(ValueError, match="either"):
        Judge()
    with pytest.raises(ValueError, match="either"):
        Judge(lambda m, **p: GOOD, connect=Client)
