"""CVS parser and metric: component-balanced accuracy of eval_cvs_assessment.py."""

import pytest

from mvbench.tasks import cvs


def rec(answer, scores=(2, 1, 0), source="Cholec80_CVS", vid="video01"):
    comps = dict(zip(cvs.COMPONENTS, scores))
    return {"qa_type": "cvs_assessment", "answer": answer, "data_source": source, "question": "q",
            "gnd": "Two structures: {}, Cystic plate: {}, Hepatocystic triangle: {}".format(*scores),
            "metadata": {"video_id": vid, "fps": "1.0"},
            "struc_info": [{"cvs_scores": {**comps, "total": sum(scores), "critical_view_achieved": False}}]}


def test_parse():
    assert cvs.parse("Two structures: 2, Cystic plate: 1, Hepatocystic triangle: 0") == {
        "two_structures": 2, "cystic_plate": 1, "hepatocystic_triangle": 0}
    assert cvs.parse("Two structure: 1") == {}  # the part must contain "two structures"
    assert cvs.parse("garbage, cystic plate: x") == {}


def test_omissions_and_garbage_cost_nothing():
    s = cvs.score_sample(rec("Cystic plate: 1, lorem ipsum"))
    assert s == {"comp:cystic_plate": 1.0, "n_components": 1.0}
    assert cvs.score_sample(rec("nothing"))["n_components"] == 0.0


def test_hyphen_and_underscore_sources_are_separate_groups():
    recs = [rec("Two structures: 2, Cystic plate: 1, Hepatocystic triangle: 0"),  # Cholec80_CVS: 1.0
            rec("Two structures: 0, Cystic plate: 0, Hepatocystic triangle: 1", source="Cholec80-CVS")]  # 0.0
    out = cvs.aggregate(recs, [cvs.score_sample(r) for r in recs])
    assert out["cvs_acc"] == pytest.approx(0.5)


def test_per_component_then_mean():
    recs = [rec("Two structures: 2"), rec("Two structures: 0, Cystic plate: 1"), rec("Cystic plate: 1")]
    out = cvs.aggregate(recs, [cvs.score_sample(r) for r in recs])
    # two_structures 1/2, cystic_plate 2/2 → (0.5 + 1) / 2
    assert out["cvs_acc"] == pytest.approx(0.75)


def test_missing_source_with_video_id_joins_underscore_group():
    assert cvs.group_of(rec("x", source=None, vid="video12")) == "Cholec80_CVS"
    assert cvs.group_of(rec("x", source="Unknown", vid="video12")) == "Cholec80_CVS"
