"""The pipeline over every real source builder's fixture, and over the real NurViD annotations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mvbench.builders import BUILTIN_SOURCES, builder_names, get_builder
from mvbench.builders.pipeline import BuildOptions, build
from mvbench.dataset_io import read_parquet

NURVID = Path("/work/shared/data/nurvid")
SOURCES = [s for s in BUILTIN_SOURCES if s in builder_names()]


@pytest.mark.slow
@pytest.mark.parametrize("name", SOURCES)
def test_fixture_build_covers_every_task_and_segment(name, tmp_path):
    cls = get_builder(name)
    root = cls.make_fixture(tmp_path / "raw", seed=0)
    manifest = build([(name, root)], BuildOptions(out=tmp_path / "out", workers=1))
    assert manifest["failures"] == []
    records = read_parquet(tmp_path / "out")
    for r in records:
        r.validate()
        assert r.data_source == cls.data_source
    assert {r.task for r in records} == set(cls.tasks)
    cov = manifest["coverage"][name]
    for task, n in cov["segments_covered"].items():
        assert n == cov["segments"], f"{task}: {n} of {cov['segments']} segments used"
    splits: dict[str, set[str]] = {}
    for r in records:
        splits.setdefault(r.source_video, set()).add(r.split)
        assert all((tmp_path / "out" / p).is_file() for p in r.video)
    assert all(len(s) == 1 for s in splits.values())


@pytest.mark.skipif(not (NURVID / "NurViD_annotations.json").is_file(), reason="real NurViD data absent")
def test_real_nurvid_annotations_plan_only_use_every_segment(tmp_path):
    """A 60-video slice of the real release (all tables and split CSVs kept)."""
    root = tmp_path / "nurvid"
    shutil.copytree(NURVID, root)
    data = json.loads((NURVID / "NurViD_annotations.json").read_text())
    keep = sorted(data)[:50] + ["6Ayxz5p7GBs", "xsqaL7c22q8"]  # duration trap; zero-length segment
    (root / "NurViD_annotations.json").write_text(json.dumps({k: data[k] for k in keep}))
    manifest = build([("nurvid", root)], BuildOptions(out=tmp_path / "out", workers=1, plan_only=True))
    assert manifest["failures"] == [] and not (tmp_path / "out" / "frames").exists()
    cov = manifest["coverage"]["nurvid"]
    assert cov["segments_covered"] == {"TAG": cov["segments"], "DVC": cov["segments"]}
    n_annotated = sum(len(data[k]["annotations"]) for k in keep)
    assert cov["segments"] == n_annotated - 1  # the zero-length segment is dropped by the builder ...
    assert any("12.38" in msg or "zero" in msg.lower()  # ... and reported
               for msg in manifest["anomalies"]["nurvid"]["xsqaL7c22q8"])
    assert "6Ayxz5p7GBs" in manifest["anomalies"]["nurvid"]
    records = read_parquet(tmp_path / "out")
    tag = next(r for r in records if r.task == "TAG")
    vid, start, end, fps = tag.id.split("&&")
    assert start == f"{float(tag.metadata['input_video_start_time']):.2f}" and fps == tag.metadata["fps"]
    assert set(tag.struc_info[0]) == {"procedure", "action_list", "action", "spans"}
    dvc = next(r for r in records if r.task == "DVC")
    assert "dc_segments" in dvc.struc_info[0]
