"""Issue 8: every gold answer scores full marks on its own metric, as a validation rule of the build.

The build scores each record's own answer with its task (the task registry, as ``mvbench score``
does) and reports per source and task how many reached the maximum (``manifest["gold_check"]``).
Run here over every fixture source and over the real NurViD release.
"""

from __future__ import annotations

import copy

import pytest
from mvbench.builders import BUILTIN_SOURCES
from mvbench.builders.fixtures import make_fixture
from mvbench.builders.gold import below, gold_check
from mvbench.builders.pipeline import BuildOptions, build
from real_nurvid import real_nurvid_dir  # noqa: F401 - fixture

from mvbench.dataset_io import read_parquet
from mvbench.records import Record
from mvbench.tasks import TASKS

CAPTION_TASKS = {"VS", "RC"}


def _assert_all_at_max(manifest: dict, records: list[Record]) -> None:
    report = manifest["gold_check"]
    assert below(report) == []
    names = {info["data_source"]: s for s, info in manifest["sources"].items()}
    for r_task in {(names[r.data_source], r.task) for r in records}:
        source, task = r_task
        entry = report[source][task]
        if task in CAPTION_TASKS:
            assert "LLM judge" in entry["skipped"]
        else:
            n = sum(1 for r in records if names[r.data_source] == source and r.task == task)
            assert entry["checked"] == entry["at_max"] == n and entry["examples"] == []


@pytest.mark.slow
def test_every_fixture_source_passes_the_gold_check(tmp_path):
    pairs = [(name, make_fixture(name, tmp_path / "raw" / name)) for name in BUILTIN_SOURCES]
    manifest = build(pairs, BuildOptions(out=tmp_path / "out", workers=1, plan_only=True))
    records = read_parquet(tmp_path / "out")
    assert {r.task for r in records} == {"TAG", "STG", "DVC", "VS", "RC", "NAP", "SA", "CVS"}
    _assert_all_at_max(manifest, records)


@pytest.mark.slow
def test_the_real_nurvid_release_passes_the_gold_check(real_nurvid_dir, tmp_path):  # noqa: F811
    """The whole annotation release, planned (its overlapping and very short segments included)."""
    manifest = build([("nurvid", real_nurvid_dir)], BuildOptions(out=tmp_path / "out", workers=1, plan_only=True))
    records = read_parquet(tmp_path / "out")
    assert len(records) > 10_000
    _assert_all_at_max(manifest, records)
    assert manifest["gold_check"]["nurvid"]["DVC"]["checked"] > 2000
    # what it took: DVC rates raised where a segment held no sampled frame, such segments reported
    assert manifest["planning"]["nurvid"]["raised"]


def _record(task_records: list[Record], task: str) -> Record:
    return copy.deepcopy(next(r for r in task_records if r.task == task))


def test_the_gold_check_catches_answers_below_full_marks(tmp_path):
    """A DVC segment that collapses under int(t * fps), and a NAP answer the scorer would skip."""
    root = make_fixture("nurvid", tmp_path / "raw")
    build([("nurvid", root)], BuildOptions(out=tmp_path / "out", workers=1, plan_only=True))
    records = read_parquet(tmp_path / "out")
    dvc = _record(records, "DVC")
    segs = dvc.struc_info[0]["dc_segments"]
    fps = float(dvc.metadata["fps"])
    segs.append({"start": 1000.0, "end": round(1000.0 + 0.5 / fps, 1), "caption": "check: x", "action": "check"})
    dvc.conversations[1]["value"] = TASKS.get("DVC").format_answer(dvc.struc_info)  # the answer has it too
    nap = _record(records, "NAP")
    nap.struc_info = [{"next_action": "Dance"}]
    nap.conversations[1]["value"] = "Dance"
    source_of = {"NurViD": "nurvid"}
    report = gold_check([dvc, nap, *records], source_of)["nurvid"]
    assert report["DVC"]["below"] == 1 and report["DVC"]["examples"][0]["uid"] == dvc.uid
    assert report["DVC"]["examples"][0]["metric"] == "dvc_f1" and report["DVC"]["examples"][0]["value"] < 1
    assert report["NAP"]["below"] == 1 and report["NAP"]["examples"][0]["counted"] is False
    assert report["VS"] == {"skipped": report["VS"]["skipped"]} and "judge" in report["VS"]["skipped"]
    assert below({"nurvid": report}) == [("nurvid", "DVC", 1), ("nurvid", "NAP", 1)]
