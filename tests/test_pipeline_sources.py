"""The pipeline over every real source builder's fixture, and over the real NurViD annotations."""

from __future__ import annotations

import json
import shutil

import pytest

from mvbench.builders import BUILTIN_SOURCES, builder_names, get_builder
from mvbench.builders.fixtures import make_fixture
from mvbench.builders.pipeline import BuildOptions, build
from mvbench.dataset_io import read_parquet
from real_nurvid import real_nurvid_dir  # noqa: F401 - fixture

SOURCES = [s for s in BUILTIN_SOURCES if s in builder_names()]


@pytest.mark.slow
@pytest.mark.parametrize("name", SOURCES)
def test_fixture_build_covers_every_task_and_segment(name, tmp_path):
    cls = get_builder(name)
    root = make_fixture(name, tmp_path / "raw", seed=0)
    manifest = build([(name, root)], BuildOptions(out=tmp_path / "out", workers=1))
    assert manifest["failures"] == []
    records = read_parquet(tmp_path / "out")
    for r in records:
        r.validate()
        assert r.data_source == cls.data_source
    assert {r.task for r in records} == set(cls.tasks)
    cov = manifest["coverage"][name]
    for task, n in cov["segments_covered"].items():
        need = cov["segments_eligible"][task]
        assert n == need, f"{task}: {n} of {need} segments used"
    if "TAG" in cov["segments_eligible"]:
        assert cov["segments_eligible"]["TAG"] == cov["segments"]
    splits: dict[str, set[str]] = {}
    for r in records:
        splits.setdefault(r.source_video, set()).add(r.split)
        assert all((tmp_path / "out" / p).is_file() for p in r.video)
    assert all(len(s) == 1 for s in splits.values())


def test_real_nurvid_annotations_plan_only_use_every_segment(real_nurvid_dir, tmp_path):  # noqa: F811
    """A 52-video slice of the real release (all tables and split CSVs kept)."""
    root = tmp_path / "nurvid"
    shutil.copytree(real_nurvid_dir, root)
    data = json.loads((real_nurvid_dir / "NurViD_annotations.json").read_text())
    keep = sorted(data)[:50] + ["6Ayxz5p7GBs", "xsqaL7c22q8"]  # duration trap; zero-length segment
    (root / "NurViD_annotations.json").write_text(json.dumps({k: data[k] for k in keep}))
    manifest = build([("nurvid", root)], BuildOptions(out=tmp_path / "out", workers=1, plan_only=True))
    assert manifest["failures"] == [] and not (tmp_path / "out" / "frames").exists()
    cov = manifest["coverage"]["nurvid"]
    assert cov["segments_covered"] == cov["segments_eligible"] == {"TAG": cov["segments"], "DVC": cov["segments"]}
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


@pytest.fixture(scope="module")
def all_fixtures(tmp_path_factory):
    """Every built-in source's fixture, planned into one dataset (no frames decoded)."""
    base = tmp_path_factory.mktemp("allfx")
    pairs = [(name, make_fixture(name, base / "raw" / name, seed=0)) for name in SOURCES]
    manifest = build(pairs, BuildOptions(out=base / "out", workers=1, plan_only=True))
    metas = {}
    tracks = {}
    for name, root in pairs:
        builder = get_builder(name)(root)
        for vid in builder.list_videos():
            ann = builder.read_video(vid)
            metas[(get_builder(name).data_source, vid)] = ann.video
            tracks[(get_builder(name).data_source, vid)] = ann.tracks
    return manifest, read_parquet(base / "out"), metas, tracks


def test_fixture_ground_truth_scores_perfectly_against_itself(all_fixtures):
    from mvbench.eval.score import score_records

    _, records, _, _ = all_fixtures
    merged = []
    for r in records:
        o = r.to_official()
        merged.append({"metadata": o["metadata"], "qa_type": o["qa_type"], "struc_info": o.get("struc_info"),
                       "question": o["conversations"][0]["value"].replace("<video>\n", ""),
                       "gnd": r.answer, "answer": r.answer, "data_source": o["data_source"]})
    metrics = score_records(merged).metrics
    for name in ("tag_miou_0.3", "tag_miou_0.5", "stg_miou", "nap_acc", "sa_acc", "cvs_acc", "dvc_f1"):
        assert metrics[name] == 1.0, (name, metrics[name])


def test_fixture_frames_lie_on_the_sampling_grid(all_fixtures):
    from mvbench.builders.windows import store_rate
    from mvbench.video.sampling import time_to_index

    _, records, metas, tracks = all_fixtures
    n_stg = n_rc = 0
    for r in records:
        meta = metas[(r.data_source, r.source_video)]
        assert all(b > a for a, b in zip(r.frame_indices, r.frame_indices[1:])), (r.uid, r.frame_indices)
        # Frame k is shown at clip_start + k / fps (within half a store period).
        for k, i in enumerate(r.frame_indices):
            assert abs(i / meta.native_fps - (r.clip_start_s + k / r.fps)) <= 0.5 / store_rate(meta) + 1e-3, r.uid
        if r.task == "STG":
            n_stg += 1
            for key in r.struc_info[0]["bbox_dict"]:
                assert abs(float(key) * r.fps - round(float(key) * r.fps)) < 1e-6, (r.uid, key, r.fps)
        if r.task == "RC":
            n_rc += 1
            inner = r.struc_info[0]["struc_info"]
            idx = inner["start_frame"]
            own = [list(map(lambda v: round(float(v), 2), box)) for t in tracks[(r.data_source, r.source_video)]
                   if t.label == inner["object"] for ts, box in t.boxes.items()
                   if time_to_index(ts, meta.native_fps, meta.num_frames) == idx]
            assert r.RC_info["start_frame_bbox"] in own, (r.uid, idx)
            assert r.RC_info["start_frame"] == r.video[round(inner["start"] * r.fps)]
    assert n_stg > 10 and n_rc > 5


def test_fixture_ids_follow_the_published_spelling(all_fixtures):
    _, records, _, _ = all_fixtures
    copesd = next(r for r in records if r.data_source == "CoPESD")
    assert copesd.source_video.endswith("_part0")
    assert copesd.metadata["video_id"] == copesd.source_video.removesuffix("_part0")
    assert copesd.id.split("$")[1] == copesd.source_video
    ego = next(r for r in records if r.data_source == "EgoSurgery")
    assert ego.metadata["video_id"] == ego.source_video and ego.id.split("$")[1] == f"{ego.source_video}_part0"
    for r in records:
        assert r.video[0] == f"frames/{r.video[0].split('/')[1]}/{r.source_video}/{r.frame_indices[0]:06d}.jpg"
