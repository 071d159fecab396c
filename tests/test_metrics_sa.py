"""SA parser and metric: aspect-balanced accuracy of eval_skill_assessment.py."""

import pytest

from mvbench.tasks import sa

NAMES = ["Respect for tissue", "Suture/needle handling", "Time and motion"]


def rec(answer, scores=(2, 3, 4), level="N", source="JIGSAWS", vid="Suturing_B001"):
    return {"qa_type": "skill_assessment", "answer": answer, "data_source": source, "question": "q",
            "gnd": ", ".join(f"{n}: {s}/5" for n, s in zip(NAMES, scores)),
            "metadata": {"video_id": vid, "fps": "1.0"},
            "struc_info": [{"skill_level": level, "skill_scores": dict(zip(NAMES, scores))}]}


def answer(scores):
    return ", ".join(f"{n}: {s}/5" for n, s in zip(NAMES, scores))


def test_parse():
    p = sa.parse(answer((2, 3, 4)))
    assert p.aspects == dict(zip(NAMES, (2, 3, 4))) and p.level == "intermediate"
    assert sa.parse("Respect for tissue: 2.5/5").aspects == {}
    # newline-separated: one comma part → at most one aspect
    assert len(sa.parse("Respect for tissue: 2/5\nTime and motion: 3/5").aspects) == 1


def test_unparseable_is_skipped():
    assert sa.score_sample(rec("Good technique"))["counted"] is None


def test_only_shared_aspects_count():
    s = sa.score_sample(rec("Respect for tissue: 2/5, Bogus: 1/5"))
    assert s["aspect:Respect for tissue"] == 1.0 and "aspect:Time and motion" not in s


def test_names_must_match_exactly():
    s = sa.score_sample(rec("respect for tissue: 2/5"))
    assert s["counted"] == 1.0 and not any(k.startswith("aspect:") for k in s)


def test_per_source_unweighted_mean():
    a = [rec(answer((2, 3, 4))), rec(answer((2, 3, 1)))]  # JIGSAWS: aspects 1, 1, 0.5 → 5/6
    b = [rec(answer((1, 1, 1)), source="Other")]  # 0
    recs = a + b
    out = sa.aggregate(recs, [sa.score_sample(r) for r in recs])
    assert out["sa_acc"] == pytest.approx((5 / 6 + 0) / 2)


def test_group_with_nothing_counted_contributes_zero():
    recs = [rec(answer((2, 3, 4))), rec("no scores", source="Other")]
    out = sa.aggregate(recs, [sa.score_sample(r) for r in recs])
    assert out["sa_acc"] == pytest.approx(0.5)


def test_missing_source_forms_jigsaws_group():
    r = rec(answer((2, 3, 4)), source=None)
    assert sa.group_of(r) == "jigsaws"
    assert sa.group_of(rec("x", source="Unknown", vid="abc")) == "Unknown"
