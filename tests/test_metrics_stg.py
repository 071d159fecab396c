"""STG parser and metric: the official eval_stg.py behaviour."""

import math

import pytest

from mvbench.tasks import stg

GT = {"1.0": [0, 0, 10, 10], "5.0": [10, 10, 20, 20], "9.0": [0, 0, 10, 10]}


def rec(answer, boxes=GT, source="CoPESD"):
    return {"qa_type": "stg", "answer": answer, "metadata": {"fps": "0.5"}, "data_source": source,
            "struc_info": [{"object": "forceps", "bbox_dict": boxes}]}


def test_parse_requires_space_before_seconds():
    assert stg.parse("1.0 seconds: [1, 2, 3, 4]") == {"1.0": [1.0, 2.0, 3.0, 4.0]}
    assert stg.parse("1.0seconds: [1, 2, 3, 4]") == []
    assert stg.parse("1 second: [1, 2, 3, 4]") == []


def test_malformed_box_copies_last_valid_one():
    assert stg.parse("1 seconds: [1, 2, 3, 4] 5 seconds: [1, 2] 9 seconds: [a, b, c, d]") == {
        "1.0": [1.0, 2.0, 3.0, 4.0], "5.0": [1.0, 2.0, 3.0, 4.0], "9.0": [1.0, 2.0, 3.0, 4.0]}
    assert stg.parse("1 seconds: [1, 2] 5 seconds: [1, 2, 3, 4]") == {"5.0": [1.0, 2.0, 3.0, 4.0]}


def test_perfect_answer():
    text = " ".join(f"{k} seconds: {v}" for k, v in GT.items())
    assert stg.score_sample(rec(text))["miou"] == pytest.approx(1.0)


def test_missing_box_takes_previous_prediction():
    # 5.0 missing → uses the 1.0 box [0,0,10,10]: IoU 0 with [10,10,20,20]; 9.0 exact.
    s = stg.score_sample(rec("1.0 seconds: [0, 0, 10, 10] 9.0 seconds: [0, 0, 10, 10]"))
    assert s["miou"] == pytest.approx(2 / 3)
    # a zero box also counts as missing
    s = stg.score_sample(rec("1.0 seconds: [0, 0, 10, 10] 5.0 seconds: [0, 0, 0, 0] 9.0 seconds: [0, 0, 10, 10]"))
    assert s["miou"] == pytest.approx(2 / 3)


def test_first_missing_box_scores_zero_but_counts():
    s = stg.score_sample(rec("5.0 seconds: [10, 10, 20, 20]"))
    # key 1.0: [0,0,0,0] → IoU 0; 5.0 exact; 9.0 missing → previous [10,10,20,20] → 0
    assert s["miou"] == pytest.approx(1 / 3)


def test_fallback_integer_boxes_in_gt_order():
    boxes = {"1.0": [0, 0, 10, 10], "5.0": [10, 10, 20, 20]}
    s = stg.score_sample(rec("[[0, 0, 10, 10]] [[10, 10, 20, 20]]", boxes))
    assert s["miou"] == pytest.approx(1.0)
    # the fallback is used only when no "seconds:" entry matched
    assert stg.parse("[[0, 0, 10, 10]] 1 seconds: [1, 1, 2, 2]") == {"1.0": [1.0, 1.0, 2.0, 2.0]}


def test_fallback_keys_are_raw_gt_keys_so_integer_keys_miss():
    # Official quirk: fallback boxes are stored under "66" but looked up as "66.0".
    s = stg.score_sample(rec("[[0, 0, 10, 10]]", {"66": [0, 0, 10, 10]}))
    assert s["miou"] == 0.0


def test_unparseable_counts_as_zero_and_empty_gt_is_excluded():
    assert stg.score_sample(rec("no boxes"))["miou"] == 0.0
    assert stg.score_sample(rec("1.0 seconds: [0, 0, 1, 1]", {}))["miou"] is None


def test_nan_box_propagates_as_official():
    s = stg.score_sample(rec("1.0 seconds: [nan, 0, 10, 10]", {"1.0": [0, 0, 10, 10]}))
    assert math.isnan(s["miou"])


def test_aggregate_counted_only():
    recs = [rec("1.0 seconds: [0, 0, 10, 10]", {"1.0": [0, 0, 10, 10]}), rec("x", {}), rec("x", {"1.0": [0, 0, 5, 5]})]
    out = stg.aggregate(recs, [stg.score_sample(r) for r in recs])
    assert out["stg_miou"] == pytest.approx(0.5)
    assert stg.aggregate([rec("x", {})], [stg.score_sample(rec("x", {}))])["stg_miou"] == 0.0
