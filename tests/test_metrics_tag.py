"""TAG (tal) parser and metric: the official eval_tal.py behaviour."""

import pytest

from mvbench.tasks import tag


def rec(answer, spans, fps="1.0", source="AVOS"):
    return {"qa_type": "tal", "answer": answer, "metadata": {"fps": fps}, "data_source": source,
            "struc_info": [{"action": "x", "spans": [{"start": a, "end": b} for a, b in spans]}]}


def test_parse_pairs_and_fallbacks():
    assert tag.parse("22.0-78.0, 89.0 - 94.0 seconds.") == [(22.0, 78.0), (89.0, 94.0)]
    assert tag.parse("It happens from 12.123 to 117 seconds") == [(12.12, 117.0)]
    # hh:mm:ss: "X to Y" also fires on "18 to 00", the official spurious (18, 0) segment
    assert tag.parse("00:00:18 to 00:01:03") == [(18.0, 0.0), (18.0, 63.0)]
    # en dash is not a hyphen: no pair; nothing else either
    assert tag.parse("1.0–3.0 seconds") == []
    assert tag.parse("") == []


def test_exact_answer_scores_one():
    s = tag.score_sample(rec("1.1-3.0 seconds.", [(1.1, 3.0)]))
    assert s["miou_0.3"] == pytest.approx(1.0) and s["recall_0.5"] == 1.0


def test_unparseable_scores_zero_and_counts():
    s = tag.score_sample(rec("I don't know.", [(1.0, 5.0)]))
    assert s["miou_0.3"] == 0.0 and s["miou_0.5"] == 0.0
    out = tag.aggregate([rec("I don't know.", [(1.0, 5.0)]), rec("1.0-5.0", [(1.0, 5.0)])],
                        [s, tag.score_sample(rec("1.0-5.0", [(1.0, 5.0)]))])
    assert out["tag_miou_0.3"] == pytest.approx(0.5)


def test_miou_at_05_can_exceed_03():
    # Two GTs: one prediction matches GT1 at IoU 0.4, another matches GT2 at IoU 1.0.
    # @0.3 both count: mean (0.4 + 1.0)/2 = 0.7; @0.5 only the perfect one: 1.0.
    r = rec("0.0-4.0, 20.0-30.0", [(0.0, 10.0), (20.0, 30.0)])
    s = tag.score_sample(r)
    assert s["miou_0.3"] == pytest.approx(0.7)
    assert s["miou_0.5"] == pytest.approx(1.0)
    assert s["miou_0.5"] > s["miou_0.3"]
    assert s["recall_0.3"] == 1.0 and s["recall_0.5"] == 0.5


def test_greedy_matching_uses_each_prediction_once():
    r = rec("0.0-10.0", [(0.0, 10.0), (0.0, 9.0)])
    s = tag.score_sample(r)
    assert s["recall_0.5"] == 0.5 and s["miou_0.5"] == pytest.approx(1.0)


def test_threshold_is_inclusive():
    # IoU exactly 0.5 (in frames at fps 1: [0,10] vs [5,10] → 5/10) matches at 0.5.
    s = tag.score_sample(rec("5-10", [(0, 10)]))
    assert s["miou_0.5"] == pytest.approx(0.5)


def test_pooling_is_over_samples_not_sources():
    recs = [rec("0-10", [(0, 10)], source="A"), rec("x", [(0, 10)], source="B"), rec("x", [(0, 10)], source="B")]
    out = tag.aggregate(recs, [tag.score_sample(r) for r in recs])
    assert out["tag_miou_0.3"] == pytest.approx(1 / 3)


def test_no_records_is_none():
    assert tag.aggregate([], [])["tag_miou_0.3"] is None
