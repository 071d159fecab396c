"""NurViD builder: the real annotation release and the fixture; ID bases, anomalies, bad input."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from mvbench.builders import get_builder
from mvbench.builders.nurvid import NurVidBuilder, NurVidConfig, read_id_tables
from mvbench.builders.fixtures import make_fixture
from mvbench.errors import InputError, VideoError

IVBS_ACTIONS = ["Blood collection", "Check", "Disinfect skin", "Venipuncture"]


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    return make_fixture("nurvid", tmp_path_factory.mktemp("nurvid"), seed=0)


@pytest.fixture
def root(fixture_root, tmp_path) -> Path:
    """A private copy of the fixture, free to break."""
    return Path(shutil.copytree(fixture_root, tmp_path / "nurvid"))


@pytest.fixture(scope="module")
def real(nurvid_dir) -> NurVidBuilder:
    return NurVidBuilder(nurvid_dir)


# ---- the real annotation release (no videos: plan-only reading) --------------------------------
def test_real_release_reads_fully(real, nurvid_dir):
    ids = real.list_videos()
    assert len(ids) == 1538
    events = dropped = 0
    splits: Counter[str | None] = Counter()
    for vid in ids:
        ann = real.read_video(vid)
        assert ann.video.path == nurvid_dir / "videos" / f"{vid}.mp4"
        assert ann.video.attrs["video_present"] is False
        assert ann.video.num_frames == max(1, round(ann.video.native_fps * ann.video.duration_s))
        events += len(ann.events)
        dropped += sum("zero-length" in i for i in ann.issues)
        splits[ann.video.split] += 1
    assert (events, dropped) == (5614, 1)
    assert events + dropped == 5615
    assert splits == {"train": 1054, "test": 311, "val": 173}  # val.csv is not in the release: the rest


def test_real_id_base_mapping(real, nurvid_dir):
    procedures, actions = read_id_tables(nurvid_dir)
    assert (len(procedures), len(actions)) == (51, 177)
    assert procedures[10].name == "Intravenous Blood Sampling"  # JSON operationID 10 = xlsx ID 9
    assert procedures[1].name == "Surgical Hand Scrub" and actions[1] == "Clean and scrub the perineum"
    ann = real.read_video("-1mH9wYWd5w")  # operationID 25, actionID 49
    assert ann.video.attrs["procedure"] == "Wheelchair Transfer Technique"
    assert [e.label for e in ann.events] == ["Transport in wheelchair"]
    assert ann.video.split == "train" and (ann.video.width, ann.video.height) == (720, 1280)  # portrait


def test_real_workbook_equals_tsvs(nurvid_dir, tmp_path):
    shutil.copy(nurvid_dir / "procedure_action_ids.xlsx", tmp_path)
    from_xlsx = read_id_tables(tmp_path)
    from_tsv = read_id_tables(nurvid_dir)
    assert {k: p.name for k, p in from_xlsx[0].items()} == {k: p.name for k, p in from_tsv[0].items()}
    assert from_xlsx[1] == from_tsv[1]
    assert from_xlsx[0][2].name == "Cardiopulmonary Resuscitation WIth Manual Resuscitation Bag"  # typo kept


def test_real_procedure_vocab_matches_official_examples(real):
    # CODE oneshot_examples.json (tal, dense_captioning_gemini) and a TrainVal tal record
    assert real.read_video("OdDDaVpHojg").vocab["action"] == [
        "Blood collection", "Check", "Disinfect skin", "Document", "Handwashing", "Mix blood sample",
        "Select a vein", "Venipuncture"]
    by_procedure = {}
    for vid in real.list_videos():
        ann = real.read_video(vid)
        by_procedure.setdefault(ann.video.attrs["procedure"], ann.vocab["action"])
    assert ", ".join(by_procedure["Administering Oral Medications"]) == (
        "Assist patient taking medicine, Check, Document, Handwashing, Organize the bed unit, "
        "Position the patient, Prepare medications")
    assert by_procedure["Change a Two-Piece Pouching System"][:3] == [
        "Apply leak prevention ointment", "Apply skin protection film", "Cleanse skin"]
    assert len(by_procedure) == 51
    assert all(vocab == sorted(set(vocab)) for vocab in by_procedure.values())  # "Defibrillate" once


def test_real_anomalies_are_reported(real):
    short = real.read_video("6Ayxz5p7GBs")  # duration 5, segments up to 176.21 s
    assert short.video.duration_s == pytest.approx(176.21)
    assert short.video.num_frames == round(29 * 176.21)
    assert short.video.attrs["json_duration"] == 5
    assert any("annotated duration 5 s" in i and "176.21" in i for i in short.issues)
    assert len(short.events) == 5
    zero = real.read_video("xsqaL7c22q8")  # actionID 29 at [12.38, 12.38]
    assert any("zero-length" in i and "12.38" in i for i in zero.issues)
    assert all(e.end_s > e.start_s for e in zero.events) and len(zero.events) == 8
    kept = NurVidBuilder(real.root, zero_length="keep").read_video("xsqaL7c22q8")
    assert len(kept.events) == 9 and kept.events[0].start_s == kept.events[0].end_s == 12.38
    past = sum(int(i.split(" segment(s)")[0].rsplit(" ", 1)[1])
               for v in real.list_videos() for i in real.read_video(v).issues if "segment(s) end" in i)
    assert past == 23  # README: 23 segments end more than 1 s after `duration`


# ---- the fixture (stand-in videos present) ----------------------------------------------------
def test_registered_and_detected(fixture_root, tmp_path):
    assert get_builder("nurvid") is NurVidBuilder
    assert NurVidBuilder.detect(fixture_root) and not NurVidBuilder.detect(tmp_path)
    assert NurVidBuilder.tasks == ("TAG", "DVC", "NAP", "VS")


def test_fixture_videos_and_splits(fixture_root):
    b = NurVidBuilder(fixture_root)
    assert b.list_videos() == ["-1mH9wYWd5w", "2M2gPCNunZw", "OdDDaVpHojg", "uY3DU3N15kc", "vIAgrwEm2Lk"]
    splits = {v: b.read_video(v).video.split for v in b.list_videos()}
    assert splits == {"-1mH9wYWd5w": "train", "2M2gPCNunZw": "train", "OdDDaVpHojg": "train",
                      "uY3DU3N15kc": "test", "vIAgrwEm2Lk": "test"}
    assert (fixture_root / "train.csv").read_bytes().startswith(b"path-label\r\n/video_path/")


def test_fixture_events_vocab_and_attrs(fixture_root):
    ann = NurVidBuilder(fixture_root).read_video("OdDDaVpHojg")
    assert (ann.source, ann.data_source) == ("nurvid", "NurViD")
    assert [(e.kind, e.label, e.start_s, e.end_s, e.attrs["action_id"]) for e in ann.events] == [
        ("action", "Check", 6.14, 8.79, 5), ("action", "Disinfect skin", 9.11, 11.83, 2),
        ("action", "Venipuncture", 13.1, 15.79, 8), ("action", "Blood collection", 16.15, 20.06, 14)]
    assert ann.vocab == {"action": IVBS_ACTIONS}
    v = ann.video
    assert (v.native_fps, v.num_frames, v.duration_s, v.width, v.height) == (4.0, 108, 27.0, 36, 64)
    assert v.path == fixture_root / "videos" / "OdDDaVpHojg.mp4"
    assert v.attrs["procedure"] == "Intravenous Blood Sampling" and v.attrs["procedure_id"] == 10
    assert (v.attrs["json_fps"], v.attrs["json_resolution"], v.attrs["video_present"]) == (30, "720x1280", True)
    assert ann.issues == []


def test_events_are_in_time_order_with_clip_index(fixture_root):
    ann = NurVidBuilder(fixture_root).read_video("uY3DU3N15kc")
    assert [e.label for e in ann.events] == ["Disinfect skin", "Inject medication"] * 2
    assert [e.attrs["segment_index"] for e in ann.events] == [1, 2, 3, 4]


def test_segment_past_the_real_end_is_clipped(fixture_root):
    ann = NurVidBuilder(fixture_root).read_video("-1mH9wYWd5w")  # [0.33, 9.53] on a 9-s video
    assert [(e.start_s, e.end_s) for e in ann.events] == [(0.33, 9.0)]
    assert ann.issues == ["segment #1 (Transport in wheelchair) end 9.53 s clipped to the video end 9.00 s"]


def test_plan_only_without_videos(root):
    shutil.rmtree(root / "videos")
    b = NurVidBuilder(root)
    ann = b.read_video("OdDDaVpHojg")
    v = ann.video
    assert v.path == root / "videos" / "OdDDaVpHojg.mp4" and not v.path.exists()
    assert (v.native_fps, v.duration_s, v.num_frames, v.width, v.height) == (30.0, 27.0, 810, 720, 1280)
    assert v.attrs["video_present"] is False
    short = b.read_video("-1mH9wYWd5w")  # no video to clip to: max(duration, last end)
    assert short.video.duration_s == 9.53 and short.events[0].end_s == 9.53


def test_workbook_is_read_without_the_tsvs(root):
    (root / "nurvid_procedures.tsv").unlink()
    (root / "nurvid_actions.tsv").unlink()
    ann = NurVidBuilder(root).read_video("2M2gPCNunZw")
    assert ann.video.attrs["procedure"] == "Intramuscular Injection"
    assert ann.video.attrs["procedure_abbreviation"] == "IMInj"
    assert [e.label for e in ann.events] == ["Position the patient", "Disinfect skin", "Inject medication"]


def test_video_in_no_split_file_is_the_missing_val_split(root):
    path = root / "test.csv"
    path.write_bytes(path.read_bytes().replace(b"/video_path/vIAgrwEm2Lk.mp4 10\r\n", b""))
    assert NurVidBuilder(root).read_video("vIAgrwEm2Lk").video.split == "val"  # no val.csv in the release
    assert NurVidBuilder(root, unlisted="none").read_video("vIAgrwEm2Lk").video.split is None


def test_split_label_mismatch_is_reported(root):
    path = root / "train.csv"
    path.write_bytes(path.read_bytes().replace(b"2M2gPCNunZw.mp4 20", b"2M2gPCNunZw.mp4 19"))
    ann = NurVidBuilder(root).read_video("2M2gPCNunZw")
    assert ann.video.split == "train" and any("labels this video 19" in i for i in ann.issues)


def test_config_is_checked():
    with pytest.raises(ValueError):
        NurVidConfig(zero_length="maybe")
    with pytest.raises(ValueError):
        NurVidConfig(video_ext="mp4")


# ---- bad input: InputError naming the file ----------------------------------------------------
def _edit_json(root: Path, video_id: str, **changes) -> Path:
    path = root / "NurViD_annotations.json"
    data = json.loads(path.read_text())
    data[video_id].update(changes)
    path.write_text(json.dumps(data))
    return path


def test_malformed_json(root):
    path = root / "NurViD_annotations.json"
    path.write_text(path.read_text()[:-20])
    with pytest.raises(InputError, match="malformed JSON") as err:
        NurVidBuilder(root).list_videos()
    assert err.value.path == str(path)


def test_missing_annotation_file(root):
    (root / "NurViD_annotations.json").unlink()
    with pytest.raises(InputError, match="not found") as err:
        NurVidBuilder(root).list_videos()
    assert err.value.path.endswith("NurViD_annotations.json")


def test_unknown_action_id(root):
    path = _edit_json(root, "OdDDaVpHojg", annotations=[{"actionID": 178, "segment": [1, 2]}])
    with pytest.raises(InputError, match="unknown actionID 178") as err:
        NurVidBuilder(root).read_video("OdDDaVpHojg")
    assert err.value.path == str(path) and err.value.record == "OdDDaVpHojg.annotations[0]"


def test_unknown_operation_id(root):
    path = _edit_json(root, "OdDDaVpHojg", operationID=0)  # a 0-based id: the ID-base trap
    with pytest.raises(InputError, match="unknown operationID 0") as err:
        NurVidBuilder(root).read_video("OdDDaVpHojg")
    assert err.value.path == str(path) and err.value.record == "OdDDaVpHojg"


@pytest.mark.parametrize("segment, message", [([5, 3], "not an interval"), (["a", 3], "must be a number")])
def test_bad_segment(root, segment, message):
    _edit_json(root, "OdDDaVpHojg", annotations=[{"actionID": 5, "segment": segment}])
    with pytest.raises(InputError, match=message):
        NurVidBuilder(root).read_video("OdDDaVpHojg")


def test_segment_past_the_video_end(root):
    path = _edit_json(root, "OdDDaVpHojg", annotations=[{"actionID": 5, "segment": [40.0, 45.0]}])
    with pytest.raises(InputError, match="past the end") as err:
        NurVidBuilder(root).read_video("OdDDaVpHojg")  # the stand-in video lasts 27 s
    assert err.value.path == str(path) and "OdDDaVpHojg.mp4" in str(err.value)


def test_bad_resolution(root):
    _edit_json(root, "OdDDaVpHojg", resolution="720p")
    with pytest.raises(InputError, match="not 'WxH'"):
        NurVidBuilder(root).read_video("OdDDaVpHojg")


def test_malformed_split_csv(root):
    path = root / "test.csv"
    path.write_bytes(path.read_bytes() + b"/video_path/abc.mp4\r\n")
    with pytest.raises(InputError, match="<path> <label>") as err:
        NurVidBuilder(root).read_video("OdDDaVpHojg")
    assert err.value.path == str(path) and err.value.record == "row 4"


def test_video_in_two_splits(root):
    path = root / "test.csv"
    path.write_bytes(path.read_bytes() + b"/video_path/OdDDaVpHojg.mp4 10\r\n")
    with pytest.raises(InputError, match="both train.csv"):
        NurVidBuilder(root).read_video("OdDDaVpHojg")


def test_missing_id_tables(root):
    for name in ("nurvid_procedures.tsv", "nurvid_actions.tsv", "procedure_action_ids.xlsx"):
        (root / name).unlink()
    with pytest.raises(InputError, match="procedure_action_ids.xlsx"):
        NurVidBuilder(root).read_video("OdDDaVpHojg")


def test_corrupt_workbook(root):
    (root / "nurvid_procedures.tsv").unlink()
    (root / "procedure_action_ids.xlsx").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="xlsx") as err:
        NurVidBuilder(root).read_video("OdDDaVpHojg")
    assert err.value.path.endswith("procedure_action_ids.xlsx")


def test_id_base_mismatch_in_tsv(root):
    path = root / "nurvid_actions.tsv"
    path.write_text(path.read_text().replace("4\t5\tCheck", "5\t5\tCheck"))
    with pytest.raises(InputError, match="ID-base trap") as err:
        NurVidBuilder(root).read_video("OdDDaVpHojg")
    assert err.value.path == str(path)


def test_corrupt_video_file(root):
    path = root / "videos" / "OdDDaVpHojg.mp4"
    path.write_bytes(b"")
    with pytest.raises(VideoError) as err:
        NurVidBuilder(root).read_video("OdDDaVpHojg")
    assert "OdDDaVpHojg.mp4" in str(err.value)
