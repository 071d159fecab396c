"""Each task object owns its parser and metrics: the same calls serve `mvbench score`, eval and training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mvbench.eval.score import score_records
from mvbench.tasks import TASKS, task_for_qa_type
from tests.test_records_roundtrip import DOC_EXAMPLES


def _merged(rec: dict, answer: str | None = None) -> dict:
    gnd = rec["conversations"][1]["value"]
    return {"metadata": rec["metadata"], "qa_type": rec["qa_type"], "struc_info": rec.get("struc_info", []),
            "question": rec["conversations"][0]["value"].removeprefix("<video>\n"), "gnd": gnd,
            "answer": gnd if answer is None else answer, "data_source": rec["data_source"]}


@pytest.fixture(scope="module")
def records(samples_dir: Path) -> list[dict]:
    recs = [r for n in ("trainval_4_records.json", "trainval_dvc_gemini_avos.json")
            for r in json.loads((samples_dir / n).read_text(encoding="utf-8"))]
    return recs + json.loads(json.dumps(DOC_EXAMPLES))


def test_one_routing_for_every_qa_type() -> None:
    from mvbench.tasks import OFFICIAL_QA_TYPES
    from mvbench.tasks.base import owner_of

    for name, task in TASKS.items():
        for qa_type in task.qa_types:
            assert task_for_qa_type(qa_type) is task and owner_of(qa_type) == name
    assert len(OFFICIAL_QA_TYPES) == 11


def test_task_objects_parse_score_and_aggregate_their_own_metrics(records: list[dict]) -> None:
    structured = {"TAG", "STG", "DVC", "NAP", "SA", "CVS"}
    seen = set()
    for rec in records:
        task = task_for_qa_type(rec["qa_type"])
        merged = _merged(rec)
        task.parse(merged["answer"])  # never raises
        context = task.build_context([merged])
        sample = task.score_sample(merged, context)
        out = task.aggregate([merged], [sample])
        keys = {m.key for m in task.metrics}
        assert keys <= set(out), (task.name, out)
        if task.name in structured:  # the ground truth answering itself scores perfectly
            primary = task.metrics[0].key
            assert out[primary] == 1.0, (task.name, out)
        seen.add(task.name)
    assert seen == set(TASKS)


def test_task_api_equals_the_scorer(records: list[dict]) -> None:
    merged = [_merged(r) for r in records]
    summary = score_records(merged).summary
    by_task = {}
    for name, task in TASKS.items():
        recs = [m for m in merged if task_for_qa_type(m["qa_type"]) is task]
        ctx = task.build_context(recs)
        by_task[name] = task.aggregate(recs, [task.score_sample(m, ctx) for m in recs])
    assert by_task["TAG"]["tag_miou_0.3"] == summary["tag_miou_0.3"]
    assert by_task["STG"]["stg_miou"] == summary["stg_miou"]
    assert by_task["DVC"]["dvc_f1"] == summary["dvc_f1"]
    assert by_task["NAP"]["nap_acc"] == summary["nap_acc"]
    assert by_task["SA"]["sa_acc"] == summary["sa_acc"] and by_task["CVS"]["cvs_acc"] == summary["cvs_acc"]


def test_garbled_answers_never_raise(records: list[dict]) -> None:
    for rec in records:
        task = task_for_qa_type(rec["qa_type"])
        for garbage in ("", "\x00\ufffd", "seconds: [nan, inf, 1e999]", "1.0-" * 50, "Two structures: x"):
            merged = _merged(rec, garbage)
            task.parse(garbage)
            task.score_sample(merged, task.build_context([merged]))
