"""Issue 13: the readers on files shaped like the real releases (the fixture variants).

Each variant reproduces traits of a real release the default fixtures do not have: sparse label
keys whose frame folders hold only the labelled frames (CholecT50 challenge validation), CRLF
transcriptions with gestures shorter than one sampling step (JIGSAWS), detection CSVs whose boxes
are tens of seconds apart and no media (AVOS), instruction JSON without images (CoPESD). The
invariants: no frame twice in a record and answer times counting from the first frame shown; no
back-to-back segments with one label; every gold answer at full marks; key spacing, changed rates,
skipped instances and empty tasks reported; planning from annotations alone, every error naming
the option that gets past it.
"""

from __future__ import annotations

import json
import shutil
from itertools import pairwise
from pathlib import Path

import pytest
from mvbench.builders import get_builder
from mvbench.builders.fixtures import fixture_variants, make_fixture
from mvbench.builders.fixtures.avos import SPARSE_VIDEOS
from mvbench.builders.fixtures.cholect50 import CHALLENGE_VIDEOS, challenge_keys
from mvbench.builders.fixtures.jigsaws import CRLF_TRIALS
from mvbench.builders.generators import GenConfig
from mvbench.builders.pipeline import BuildOptions, build

from mvbench.dataset_io import read_parquet
from mvbench.errors import InputError
from mvbench.tasks.dvc import gt_segments

VARIANTS = {  # variant → (source, builder options for a plan from annotations alone)
    "cholect50/challenge": ("cholect50", {}),
    "jigsaws/crlf": ("jigsaws", {}),
    "avos/sparse": ("avos", {}),
    "copesd/no_images": ("copesd", {"frame_size": (64, 48)}),
}


def test_every_variant_is_listed():
    assert sorted(fixture_variants()) == sorted(VARIANTS)


@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> dict[str, tuple[Path, dict, dict]]:
    """Each variant planned from its files (``--plan-only``): (raw root, manifest, video metas)."""
    base = tmp_path_factory.mktemp("variants")
    out = {}
    for name, (source, options) in VARIANTS.items():
        root = make_fixture(source, base / "raw" / name.replace("/", "_"), variant=name.split("/")[1])
        manifest = build([(source, root)], BuildOptions(out=base / "out" / name.replace("/", "_"), workers=1,
                                                        plan_only=True, builder_overrides={source: options}))
        builder = get_builder(source)(root, plan_only=True, **options)
        metas = {v: builder.read_video(v).video for v in builder.list_videos()}
        out[name] = (base / "out" / name.replace("/", "_"), manifest, metas)
    return out


def _records(planned, name):
    return read_parquet(planned[name][0])


@pytest.mark.parametrize("name", list(VARIANTS))
def test_no_frame_twice_and_times_count_from_the_first_frame(planned, name):
    out, _, metas = planned[name]
    records = read_parquet(out)
    assert records
    for r in records:
        meta = metas[r.source_video]
        idx = r.frame_indices
        assert all(b > a for a, b in pairwise(idx)), (r.uid, idx)
        # the first frame shown is the frame at the clip start ...
        assert abs(idx[0] / meta.native_fps - r.clip_start_s) <= 0.5 / meta.native_fps + 1e-3, r.uid
        # ... and frame k is the frame nearest start + k / fps (within half a sample period)
        for k, i in enumerate(idx):
            assert abs(i / meta.native_fps - (r.clip_start_s + k / r.fps)) <= 0.5 / r.fps + 1e-6, (r.uid, k)
        if meta.frame_files is not None:
            assert set(idx) <= set(meta.frame_files)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_gold_answers_score_full_marks(planned, name):
    from mvbench.eval.score import merged_record, score_records

    out, manifest, _ = planned[name]
    records = read_parquet(out)
    source = VARIANTS[name][0]
    report = manifest["gold_check"][source]
    for task in {r.task for r in records}:
        if task in ("VS", "RC"):
            assert "caption task" in report[task]["skipped"]
        else:
            assert report[task]["checked"] == report[task]["at_max"] == sum(r.task == task for r in records), task
    metrics = score_records([merged_record(r, r.answer) for r in records]).metrics
    for task, key in (("TAG", "tag_miou_0.3"), ("TAG", "tag_miou_0.5"), ("STG", "stg_miou"), ("NAP", "nap_acc"),
                      ("SA", "sa_acc"), ("DVC", "dvc_f1")):
        if any(r.task == task for r in records):
            assert metrics[key] == 1.0, (key, metrics[key])


def test_sparse_keys_are_merged_and_their_spacing_reported(planned):
    out, manifest, metas = planned["cholect50/challenge"]
    keys = {v: challenge_keys(v, 0) for v in CHALLENGE_VIDEOS}
    spacing = manifest["label_keys"]["cholect50"]
    for vid, ks in keys.items():
        steps = sorted(b - a for a, b in pairwise(ks))
        assert spacing[vid]["keys"] == len(ks) and spacing[vid]["first_s"] == ks[0]
        assert spacing[vid]["spacing_s"] == pytest.approx(steps[len(steps) // 2], abs=1)
        assert spacing[vid]["merge_tolerance_s"] >= 2 * spacing[vid]["spacing_s"] - 1
        # num_frames in the label file is the labelled count, not the length: reported, not used
        assert metas[vid].num_frames == ks[-1] + 1
        assert any(f"num_frames={len(ks)}" in msg and "labelled frames" in msg
                   for msg in manifest["anomalies"]["cholect50"][vid])
    assert {(m.width, m.height) for m in metas.values()} == {size for size, *_ in CHALLENGE_VIDEOS.values()}
    builder = get_builder("cholect50")(make_fixture("cholect50", out.parent / "again", variant="challenge"))
    for vid, (_, _, _, plan, _) in CHALLENGE_VIDEOS.items():
        phases = [e for e in builder.read_video(vid).events if e.kind == "phase"]
        # one event per planned phase (plus the lone noise key of VID05 and the phase it interrupts)
        assert len(phases) == len(plan) + (2 if vid == "VID05" else 0), [(e.label, e.start_s, e.end_s) for e in phases]
        assert all(b.start_s >= a.end_s - 1e-6 for a, b in pairwise(phases))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_no_back_to_back_segments_with_one_label(planned, name):
    for r in _records(planned, name):
        if r.task != "DVC":
            continue
        segs = sorted(gt_segments({"struc_info": r.struc_info}), key=lambda s: s["start"])
        for a, b in pairwise(segs):
            assert not (a["action"] == b["action"] and b["start"] - a["end"] < 0.1 + 1e-6), (r.uid, a, b)
        if name == "cholect50/challenge":  # phases persist between keys: one segment per phase
            assert all(a["action"] != b["action"] for a, b in pairwise(segs)), r.uid


def test_sparse_stores_lower_the_rate_or_skip_and_say_so(planned):
    _, manifest, _ = planned["cholect50/challenge"]
    plan = manifest["planning"]["cholect50"]
    assert any(key.endswith("0.5>0.25") for key in plan["lowered"])  # VID18: keys 1-3 s apart
    assert any("sparse_store" in key for key in plan["skipped"])  # VID68: gaps over 10 s
    assert any("at 0.25 fps instead of 0.5 fps" in msg for msg in manifest["anomalies"]["cholect50"]["VID18"])
    assert any("skipped (sparse_store)" in msg for msg in manifest["anomalies"]["cholect50"]["VID68"])


def test_gestures_shorter_than_a_sampling_step_keep_full_marks(planned):
    """JIGSAWS: 0.0-1.8 s at 0.5 fps collapses under int(t * fps); the rate is raised instead."""
    out, manifest, _ = planned["jigsaws/crlf"]
    records = [r for r in read_parquet(out) if r.task == "DVC"]
    assert manifest["planning"]["jigsaws"]["raised"]
    first = [r for r in records if r.source_video == "Suturing_B001"
             and any(s["start"] == 0.0 and s["end"] == 1.8 for s in gt_segments({"struc_info": r.struc_info}))]
    assert first and all(r.fps >= 1.0 for r in first)
    for r in records:
        for s in gt_segments({"struc_info": r.struc_info}):
            assert int(s["start"] * r.fps) < int(s["end"] * r.fps), (r.uid, s, r.fps)
    n_gestures = sum(len(g) for *_, g in CRLF_TRIALS.values())
    cov = manifest["coverage"]["jigsaws"]
    assert cov["segments"] == n_gestures and cov["segments_covered"]["DVC"] == n_gestures  # CRLF, blanks read


def test_a_declared_task_with_no_instance_is_reported_with_reason_and_option(planned, tmp_path):
    _, manifest, _ = planned["avos/sparse"]
    assert "STG" not in manifest["counts"]["avos"]
    empty = manifest["empty_tasks"]["avos"]["STG"]
    assert empty["reason"] == "single_box_tracks" and "--stg-keyframes" in empty["option"]
    assert "max_gap_s" in empty["option"] and "too far apart" in empty["explanation"]
    spacing = manifest["label_keys"]["avos"]["VsKw5d-4rq8"]
    assert spacing["spacing_s"] > 20 and spacing["merge_tolerance_s"] == 2.0
    # the options it names do change it
    root = make_fixture("avos", tmp_path / "raw", variant="sparse")
    keyframes = build([("avos", root)], BuildOptions(out=tmp_path / "k", workers=1, plan_only=True,
                                                     gen=GenConfig(stg_keyframes=True)))
    assert keyframes["counts"]["avos"]["STG"] and "avos" not in keyframes["empty_tasks"]
    boxes = {(v, f, label): b for v, (_, _, dets) in SPARSE_VIDEOS.items() for f, label, b in dets}
    for r in read_parquet(tmp_path / "k"):
        if r.task != "STG":
            continue
        (key, box), = r.struc_info[0]["bbox_dict"].items()
        frame = r.frame_indices[round(float(key) * r.fps)]
        assert boxes[(r.source_video, frame, r.struc_info[0]["object"])] == box  # the box of the frame shown
        assert f"at {float(key):g} seconds" in r.question or f"at {key} seconds" in r.question
    assert keyframes["gold_check"]["avos"]["STG"]["below"] == 0
    linked = build([("avos", root)], BuildOptions(out=tmp_path / "g", workers=1, plan_only=True,
                                                  builder_overrides={"avos": {"max_gap_s": 60.0}}))
    assert linked["counts"]["avos"].get("STG")


def test_plan_only_from_annotations_alone_and_errors_name_the_option(planned, tmp_path):
    _, manifest, _ = planned["avos/sparse"]
    assert manifest["planning"]["avos"]["planned_without_media"] == sorted(SPARSE_VIDEOS)
    root = make_fixture("avos", tmp_path / "avos", variant="sparse")
    with pytest.raises(InputError, match=r"--option missing_video=skip.*--plan-only"):
        build([("avos", root)], BuildOptions(out=tmp_path / "full", workers=1))
    copesd = make_fixture("copesd", tmp_path / "copesd", variant="no_images")
    with pytest.raises(InputError, match=r"--option frame_size=WxH"):
        build([("copesd", copesd)], BuildOptions(out=tmp_path / "c1", workers=1, plan_only=True))
    with pytest.raises(InputError, match=r"--plan-only with --option frame_size=WxH"):
        build([("copesd", copesd)], BuildOptions(out=tmp_path / "c2", workers=1,
                                                 builder_overrides={"copesd": {"frame_size": (64, 48)}}))
    # planned without images at the given size: boxes as on the 64x48 keyframes of the default tree
    _, with_images, _ = planned["copesd/no_images"]
    default = build([("copesd", make_fixture("copesd", tmp_path / "copesd_img"))],
                    BuildOptions(out=tmp_path / "c3", workers=1, plan_only=True))
    assert with_images["content_hash"] == default["content_hash"]


# Media of each default fixture tree (removed to plan from annotations alone) and the options a plan needs.
MEDIA = {"cholect50": (["videos"], {"frame_size": (96, 54)}),
         "cholectrack20": (["Training/VID02/Frames", "Training/VID04/Frames", "Testing/VID25/Frames"], {}),
         "cholec80_cvs": (["videos"], {}), "copesd": (["high_light_images"], {"frame_size": (64, 48)}),
         "avos": (["videos"], {}), "egosurgery": (["images"], {}),
         "jigsaws": (["Suturing/video", "Knot_Tying/video"], {}), "nurvid": (["videos"], {})}


@pytest.mark.slow
@pytest.mark.parametrize("source", list(MEDIA))
def test_every_source_plans_without_media_or_names_the_option(source, tmp_path):
    root = make_fixture(source, tmp_path / "raw")
    dirs, options = MEDIA[source]
    for d in dirs:
        shutil.rmtree(root / d)
    with pytest.raises(InputError, match=r"--plan-only"):
        build([(source, root)], BuildOptions(out=tmp_path / "full", workers=1))
    if options:
        with pytest.raises(InputError, match=r"--option frame_size=WxH"):
            build([(source, root)], BuildOptions(out=tmp_path / "bare", workers=1, plan_only=True))
    manifest = build([(source, root)], BuildOptions(out=tmp_path / "plan", workers=1, plan_only=True,
                                                    builder_overrides={source: options}))
    assert manifest["failures"] == [] and manifest["records"] > 0
    assert all(b["below"] == 0 for b in manifest["gold_check"][source].values() if "below" in b)
    if source != "nurvid":  # NurViD always planned absent videos from the annotation file
        assert manifest["planning"][source]["planned_without_media"]


def test_frame_size_option_reads_w_x_h():
    from mvbench.cli.build import _coerce

    for source in ("cholect50", "copesd", "cholectrack20"):
        assert _coerce(get_builder(source).config_class, "frame_size", "854x480") == (854, 480)
    assert _coerce(get_builder("copesd").config_class, "frame_size", "64,48") == (64, 48)
    with pytest.raises(InputError, match="frame_size"):
        _coerce(get_builder("copesd").config_class, "frame_size", "big")


def test_challenge_labels_use_a_dict_of_licenses_and_dict_categories(tmp_path):
    root = make_fixture("cholect50", tmp_path, variant="challenge")
    label = json.loads((root / "labels" / "VID68.json").read_text())
    assert isinstance(label["licenses"], dict) and isinstance(label["categories"]["phase"], dict)
    assert label["num_frames"] == len(label["annotations"]) == len(list((root / "videos" / "VID68").iterdir()))
