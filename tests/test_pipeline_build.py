"""The build pipeline end to end on the test-only fixture sources (see test_pipeline_helpers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

import test_pipeline_helpers as helpers  # registers the test-only sources
from mvbench.builders import pipeline
from mvbench.builders.manifest import read_manifest
from mvbench.builders.pipeline import BuildOptions, build, work_paths
from mvbench.dataset_io import read_parquet
from mvbench.errors import InputError, VideoError
from mvbench.tasks import TASKS
from mvbench.video.synth import read_frame_number

ALL_TASKS = set(helpers.TinyVideoBuilder.tasks)


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("raw")
    return {"tinyvid": helpers.write_tinyvid(base / "tinyvid"),
            "tinyframes": helpers.write_tinyframes(base / "tinyframes")}


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("out")
    manifest = build(list(raw.items()), BuildOptions(out=out, workers=1))
    return out, manifest


def _frame_number(path: Path) -> int:
    return read_frame_number(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))


def test_records_validate_and_cover_every_supported_task(built):
    out, manifest = built
    records = read_parquet(out)
    assert len(records) == manifest["records"] > 0
    for r in records:
        r.validate()
        assert r.generator == "template" and r.builder_version
        assert r.task == TASKS.get(r.task).name
        assert all(isinstance(v, str) for v in r.metadata.values())
    by_source = {}
    for r in records:
        by_source.setdefault(r.data_source, set()).add(r.task)
    assert by_source["AVOS"] == ALL_TASKS
    assert by_source["CholecTrack20"] == set(helpers.TinyFramesBuilder.tasks)
    assert len({r.uid for r in records}) == len(records)
    assert set(manifest["counts"]) == {"tinyvid", "tinyframes"}


def test_official_fields_follow_the_published_style(built):
    out, _ = built
    records = read_parquet(out)
    avos = next(r for r in records if r.data_source == "AVOS" and r.task == "TAG")
    vid, start, end, fps = avos.id.split("&&")
    assert (vid, start, end) == (avos.source_video, str(avos.frame_indices[0]), str(avos.frame_indices[-1]))
    assert fps == avos.metadata["fps"] and avos.train == (avos.split != "test")
    assert avos.video[0] == f"frames/tinyvid/{vid}/{avos.frame_indices[0]:06d}.jpg"
    ct = next(r for r in records if r.data_source == "CholecTrack20" and r.task == "STG")
    assert ct.id == f"{ct.metadata['fps']}${ct.source_video}${ct.frame_indices[0]}${ct.frame_indices[-1]}"
    assert all(i % 25 == 0 for i in ct.frame_indices)  # snapped to the 1-in-25 frames on disk
    rc = next(r for r in records if r.task == "RC")
    assert rc.is_RC and rc.RC_info["start_frame"] in rc.video and len(rc.RC_info["start_frame_bbox"]) == 4
    assert rc.qa_type == "region_caption" and rc.struc_info[0]["struc_info"]["object"] == "forceps"
    stg = next(r for r in records if r.task == "STG")
    keys = list(stg.struc_info[0]["bbox_dict"])
    assert all(k == f"{float(k):.1f}" for k in keys)
    assert stg.answer == TASKS.get("STG").format_answer(stg.struc_info)
    tag = next(r for r in records if r.task == "TAG")
    spans = tag.struc_info[0]["spans"]
    assert all(0 <= s["start"] <= s["end"] <= tag.clip_end_s - tag.clip_start_s + 0.05 for s in spans)
    for r in records:
        assert len(r.video) <= 256 and r.video == [f"frames/{r.video[0].split('/')[1]}/{r.source_video}/{i:06d}.jpg"
                                                   for i in r.frame_indices]


def test_every_segment_lands_in_a_tag_and_a_dvc_instance(built):
    _, manifest = built
    cov = manifest["coverage"]["tinyvid"]
    assert cov["segments"] > 0 and cov["segments_eligible"]["TAG"] == cov["segments"]
    assert 0 < cov["segments_eligible"]["DVC"] <= cov["segments"]  # DVC: the main kind only
    assert cov["segments_covered"] == cov["segments_eligible"]


def test_written_frames_are_the_indexed_frames_and_written_once(built):
    out, manifest = built
    records = read_parquet(out)
    paths = {p for r in records for p in r.video}
    assert manifest["frames"]["count"] == len(paths)
    files = list((out / "frames").rglob("*.jpg"))
    assert len(files) == len(paths)  # shared frames exist once; nothing extra written
    for rel in sorted(paths)[:: max(1, len(paths) // 12)]:
        index = int(Path(rel).stem)
        number = _frame_number(out / rel)
        if "tinyframes" in rel:
            assert number == index // 25  # image k of the folder is native frame 25k
        else:
            assert number == index


def test_no_source_video_in_both_train_and_test(built):
    out, _ = built
    splits: dict[tuple[str, str], set[str]] = {}
    for r in read_parquet(out):
        splits.setdefault((r.data_source, r.source_video), set()).add(r.split)
    assert all(len(s) == 1 for s in splits.values())
    assert {next(iter(s)) for s in splits.values()} == {"train", "test"}


def test_parquet_reads_back_with_hf_datasets(built):
    datasets = pytest.importorskip("datasets")
    out, manifest = built
    files = [str(out / s) for s in manifest["shards"]]
    ds = datasets.load_dataset("parquet", data_files=files, split="train")
    assert len(ds) == manifest["records"]
    assert {"conversations", "video", "metadata", "qa_type", "uid", "split"} <= set(ds.column_names)


def test_plan_only_decodes_nothing_and_gives_the_same_records(raw, built, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("plan-only must not decode")

    monkeypatch.setattr(pipeline, "extract_frames", refuse)
    monkeypatch.setattr(pipeline, "ImageSequence", refuse)
    manifest = build(list(raw.items()), BuildOptions(out=tmp_path, workers=1, plan_only=True))
    assert not (tmp_path / "frames").exists()
    assert manifest["content_hash"] == built[1]["content_hash"]
    assert manifest["frames"]["written"] is False


class Interrupt(Exception):
    pass


def test_interrupted_build_resumes_to_the_same_hash(raw, built, tmp_path):
    done: list[str] = []

    def stop_after_two(source, video_id, summary):
        done.append(video_id)
        if len(done) == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        build(list(raw.items()), BuildOptions(out=tmp_path, workers=1), on_video_done=stop_after_two)
    assert not (tmp_path / "manifest.json").exists()
    redone: list[str] = []
    manifest = build(list(raw.items()), BuildOptions(out=tmp_path, workers=1),
                     on_video_done=lambda s, v, _: redone.append(v))
    assert len(redone) == 7 - 2  # 4 + 3 videos, two finished before the interruption
    assert manifest["content_hash"] == built[1]["content_hash"]


def test_bad_video_stops_the_build_or_is_skipped_with_keep_going(raw, tmp_path):
    root = tmp_path / "raw"
    helpers.write_tinyvid(root, n_videos=3)
    ann = json.loads((root / helpers.ANN).read_text())
    ann["vid01"]["broken"] = True
    (root / helpers.ANN).write_text(json.dumps(ann))
    (root / "videos" / "vid02.mp4").write_bytes(b"not a video at all")
    with pytest.raises(InputError, match=r"annotations.json \[vid01\]"):
        build([("tinyvid", root)], BuildOptions(out=tmp_path / "a", workers=1))
    manifest = build([("tinyvid", root)], BuildOptions(out=tmp_path / "b", workers=1, keep_going=True))
    failures = {f["video_id"]: f for f in manifest["failures"]}
    assert set(failures) == {"vid01", "vid02"}
    assert "vid02.mp4" in failures["vid02"]["error"] and failures["vid02"]["error_type"] == "VideoError"
    assert {r.source_video for r in read_parquet(tmp_path / "b")} == {"vid00"}
    assert read_manifest(tmp_path / "b")["failures"] == manifest["failures"]


def test_corrupt_video_raises_video_error_naming_the_file(tmp_path):
    root = helpers.write_tinyvid(tmp_path / "raw", n_videos=2)
    (root / "videos" / "vid00.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(VideoError, match="vid00.mp4"):
        build([("tinyvid", root)], BuildOptions(out=tmp_path / "o", workers=1, tasks=["SA"]))


def test_task_filter_and_stale_shards(raw, tmp_path):
    m1 = build([("tinyvid", raw["tinyvid"])], BuildOptions(out=tmp_path, workers=1, shard_size=3))
    assert len(m1["shards"]) > 2
    m2 = build([("tinyvid", raw["tinyvid"])], BuildOptions(out=tmp_path, workers=1, tasks=["SA", "CVS"]))
    assert set(m2["counts"]["tinyvid"]) == {"SA", "CVS"}
    on_disk = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert on_disk == m2["shards"]


def test_split_file_overrides_the_hash(raw, tmp_path):
    split_file = tmp_path / "splits.json"
    split_file.write_text(json.dumps({"vid00": "test", "vid01": "test", "vid02": "train", "vid03": "val"}))
    build([("tinyvid", raw["tinyvid"])], BuildOptions(out=tmp_path / "o", workers=1, tasks=["SA"],
                                                     split_file=split_file))
    got = {r.source_video: r.split for r in read_parquet(tmp_path / "o")}
    assert got == {"vid00": "test", "vid01": "test", "vid02": "train", "vid03": "train"}


@pytest.mark.slow
def test_two_workers_give_the_same_hash(raw, built, tmp_path):
    manifest = build(list(raw.items()), BuildOptions(out=tmp_path, workers=2))
    assert manifest["content_hash"] == built[1]["content_hash"]


@pytest.mark.slow
def test_killed_subprocess_build_resumes_to_the_same_hash(raw, built, tmp_path):
    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
              "import test_pipeline_helpers\n"
              "from mvbench.builders.pipeline import build, BuildOptions\n"
              f"build([('tinyvid', {str(raw['tinyvid'])!r}), ('tinyframes', {str(raw['tinyframes'])!r})],"
              f" BuildOptions(out={str(tmp_path)!r}, workers=1))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    marker = work_paths(tmp_path, "tinyvid", "vid00")[1]
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert marker.exists() and not (tmp_path / "manifest.json").exists()
    manifest = build(list(raw.items()), BuildOptions(out=tmp_path, workers=1))
    assert manifest["content_hash"] == built[1]["content_hash"]


@pytest.mark.ray
@pytest.mark.slow
def test_ray_executor_gives_the_same_hash(raw, built, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}})
    try:
        manifest = build(list(raw.items()), BuildOptions(out=tmp_path, workers=2, executor="ray"))
    finally:
        ray.shutdown()
    assert manifest["content_hash"] == built[1]["content_hash"]
    assert manifest["config"]["executor"] == "ray"
