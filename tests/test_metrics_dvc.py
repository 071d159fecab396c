"""DVC parser, temporal F1 and judge aggregation: eval_dvc.py behaviour."""

import pytest

from mvbench.tasks import dvc

GT = [{"start": 0.0, "end": 10.0, "caption": "a"}, {"start": 10.0, "end": 20.0, "caption": "b"}]


def rec(answer, gt=GT, fps="1.0", source="AVOS"):
    return {"qa_type": "dense_captioning_gpt", "answer": answer, "metadata": {"fps": fps},
            "data_source": source, "struc_info": [gt], "gnd": ""}


def test_parse_and_dedupe():
    text = "0.0-10.0 seconds: a\nmore a\n0.0-10.0 seconds: again\n10.0-20.0 seconds: b"
    assert dvc.parse(text) == [{"start": 0.0, "end": 10.0, "caption": "a more a"},
                               {"start": 10.0, "end": 20.0, "caption": "b"}]
    # entries must start on a new line; spaces around "-" are not the strict form
    assert len(dvc.parse("0-5 seconds: a 5-9 seconds: b")) == 1
    assert dvc.parse("0 - 5 seconds - cut") == [{"start": 0.0, "end": 5.0, "caption": "cut"}]
    assert dvc.parse("nothing here") == []


def test_gt_locations():
    assert len(dvc.gt_segments({"struc_info": [GT]})) == 2
    assert len(dvc.gt_segments({"struc_info": [{"dc_segments": GT}]})) == 2
    assert len(dvc.gt_segments({"struc_info": GT})) == 2
    assert dvc.gt_segments({"struc_info": [{"action": "x", "spans": []}]}) == []


def test_perfect_and_unparseable():
    assert dvc.score_sample(rec("0.0-10.0 seconds: a\n10.0-20.0 seconds: b"))["f1"] == pytest.approx(1.0)
    assert dvc.score_sample(rec("no segments"))["f1"] is None


def test_strict_greater_threshold_for_f1():
    # frames at fps 1: [0,10] vs GT [0,10] and [10,20]; a pred [0,7] has IoU 0.7 exactly with GT1:
    # counted at 0.3 and 0.5 but not at 0.7 (strict >).
    p, r, f1 = dvc.temporal_prf([(0, 7)], [(0, 10)])
    assert p == pytest.approx(2 / 3) and r == pytest.approx(2 / 3)


def test_overlaps_are_flattened_keeping_longest_caption():
    segs = dvc.flatten([{"start": 0.0, "end": 10.0, "caption": "long"}, {"start": 5.0, "end": 7.0, "caption": "short"}])
    assert [(s["start"], s["end"], s["caption"]) for s in segs] == [(0, 5, "long"), (5, 7, "long"), (7, 10, "long")]


def test_llm_pairs_use_inclusive_threshold():
    # pred [0,5] vs GT [0,10]: IoU 0.5 exactly → paired at 0.3 and 0.5 (≥), not at 0.7
    pairs = dvc.judge_pairs(rec("0.0-5.0 seconds: x"))
    assert pairs[0.3] == [("x", "a")] and pairs[0.5] == [("x", "a")] and pairs[0.7] == []


def test_weighting_by_total_record_count():
    good = rec("0.0-10.0 seconds: a\n10.0-20.0 seconds: b", source="A")
    bad = rec("unparseable", source="A")  # excluded from A's mean but counts in A's weight
    other = rec("0.0-20.0 seconds: x", source="B")
    recs = [good, bad, bad, other]
    samples = [dvc.score_sample(r) for r in recs]
    f1_b = samples[3]["f1"]
    out = dvc.aggregate(recs, samples)
    assert out["dvc_f1"] == pytest.approx((1.0 * 3 + f1_b * 1) / 4)
    assert out["dvc_llm"] is None


def test_caption_score_averages_positive_aspects_and_thresholds():
    s = {f"judge_{t}_n": 0.0 for t in dvc.LLM_THRESHOLDS}
    s.update({f"judge_{t}_{a}_sum": 0.0 for t in dvc.LLM_THRESHOLDS for a in dvc.ASPECTS})
    s["judge_0.3_n"] = 2.0
    for a in dvc.ASPECTS:
        s[f"judge_0.3_{a}_sum"] = 8.0  # mean 4 at 0.3; 0.5 and 0.7 have no pairs → ignored
    assert dvc.caption_score([s]) == pytest.approx(4.0)
    assert dvc.caption_score([{}]) == 0.0
