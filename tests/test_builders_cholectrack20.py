"""CholecTrack20 builder: 25-fps frame numbers → seconds, normalised/pixel boxes → xyxy, tracks, phases."""

from __future__ import annotations

import doctest
import json
import shutil
from pathlib import Path

import pytest

from mvbench.builders import cholectrack20, get_builder
from mvbench.builders.cholectrack20 import CholecTrack20Builder, CholecTrack20Config
from mvbench.builders.fixtures import make_fixture
from mvbench.errors import InputError


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fixture("cholectrack20", tmp_path_factory.mktemp("ct20"))


@pytest.fixture()
def copy_root(fixture_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(fixture_root, tmp_path / "CholecTrack20"))


def _label_path(root: Path, vid: str = "VID02") -> Path:
    split = "Testing" if vid == "VID25" else "Training"
    return root / split / vid / f"{vid}.json"


def _edit(root: Path, edit, vid: str = "VID02") -> Path:
    path = _label_path(root, vid)
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


def test_doctests() -> None:
    assert doctest.testmod(cholectrack20).failed == 0


def test_registered_detected_and_layout(fixture_root: Path) -> None:
    assert get_builder("cholectrack20") is CholecTrack20Builder
    assert CholecTrack20Builder.detect(fixture_root)
    assert (fixture_root / "Testing" / "VID25" / "Frames" / "000026.png").is_file()
    keys = list(json.loads(_label_path(fixture_root).read_text())["annotations"])
    assert keys[:3] == ["1", "26", "51"]


def test_read_tracks_and_time_base(fixture_root: Path) -> None:
    b = CholecTrack20Builder(fixture_root)
    assert b.list_videos() == ["VID02", "VID04", "VID25"]
    ann = b.read_video("VID02")
    v = ann.video
    assert (v.native_fps, v.num_frames, v.width, v.height, v.split) == (25.0, 577, 96, 54, "train")
    assert v.duration_s == pytest.approx(23.08)
    assert sorted(v.frame_files)[:3] == [1, 26, 51] and v.frame_files[26].name == "000026.png"
    assert ann.data_source == "CholecTrack20" and ann.issues == []
    tracks = {t.track_id: t for t in ann.tracks}
    assert sorted(tracks) == ["1", "2"]
    hook, grasper = tracks["2"], tracks["1"]
    assert (hook.label, grasper.label) == ("hook", "grasper")
    assert hook.attrs["operators"] == ["MSRH"] and grasper.attrs["operators"] == ["MSLH"]
    # frame 51 (k=2) ↔ 2.04 s; normalised [0.25, 0.48, 0.25, 0.25] on 96x54
    assert min(hook.boxes) == pytest.approx(2.04)
    assert hook.boxes[51 / 25] == pytest.approx((24.0, 25.92, 48.0, 39.42))
    assert 301 / 25 not in hook.boxes and len(hook.boxes) == 11  # k 2-13 except 12
    assert grasper.boxes[126 / 25] == (30.0, 10.0, 50.0, 25.0)  # pixel-valued tool_bbox kept as pixels
    assert grasper.boxes[1 / 25] == pytest.approx((9.6, 5.4, 28.8, 21.6))
    phases = [(e.label, round(e.start_s, 2), round(e.end_s, 2)) for e in ann.events]
    assert phases == [("preparation", 0.04, 8.04), ("calot triangle dissection", 8.04, 16.04),
                      ("clipping and cutting", 16.04, 23.08)]
    assert all(e.kind == "phase" for e in ann.events)
    assert ann.vocab["phase"][-1] == "gallbladder retraction" and ann.vocab["tool"] == ["grasper", "hook"]


def test_specimen_bag_retraction_and_test_split(fixture_root: Path) -> None:
    b = CholecTrack20Builder(fixture_root)
    vid04 = b.read_video("VID04")
    assert {t.label for t in vid04.tracks} == {"grasper", "specimen bag"}
    assert vid04.events[-1].label == "gallbladder retraction"
    assert b.read_video("VID25").video.split == "test"


def test_track_type_selects_track_ids(fixture_root: Path) -> None:
    ann = CholecTrack20Builder(fixture_root, track_type="visibility_track").read_video("VID02")
    assert sorted(t.track_id for t in ann.tracks) == ["101", "102"]
    with pytest.raises(ValueError, match="track_type"):
        CholecTrack20Config(track_type="tool_track")


def test_absent_ids_skipped_and_reported(copy_root: Path) -> None:
    def edit(d):
        d["annotations"]["26"][0]["instrument"] = -1
        d["annotations"]["51"][0]["intraoperative_track"] = -2
    _edit(copy_root, edit)
    ann = CholecTrack20Builder(copy_root).read_video("VID02")
    grasper = next(t for t in ann.tracks if t.label == "grasper")
    assert 26 / 25 not in grasper.boxes and 51 / 25 not in grasper.boxes
    assert any("without an instrument" in i for i in ann.issues)
    assert any("with no intraoperative_track id" in i for i in ann.issues)


def test_mp4_when_no_frames(copy_root: Path) -> None:
    from mvbench.video.synth import make_test_video

    vdir = copy_root / "Testing" / "VID25"
    shutil.rmtree(vdir / "Frames")
    make_test_video(vdir / "VID25.mp4", 22, 25, 96, 54)
    ann = CholecTrack20Builder(copy_root).read_video("VID25")
    assert ann.video.path == vdir / "VID25.mp4" and ann.video.num_frames == 550
    assert ann.tracks[0].label == "grasper"


@pytest.mark.parametrize("case", ["malformed", "unknown_instrument", "box_outside", "past_end", "bad_box"])
def test_bad_label_file_names_file_and_record(copy_root: Path, case: str) -> None:
    path = _label_path(copy_root)
    if case == "malformed":
        path.write_text('{"annotations": {"1": [{"instrument": 0,')
    elif case == "unknown_instrument":
        _edit(copy_root, lambda d: d["annotations"]["76"][1].__setitem__("instrument", 9))
    elif case == "box_outside":
        _edit(copy_root, lambda d: d["annotations"]["76"][1].__setitem__("tool_bbox", [0.9, 0.5, 0.5, 0.2]))
    elif case == "past_end":
        _edit(copy_root, lambda d: d["annotations"].__setitem__("5001", []))
    else:
        _edit(copy_root, lambda d: d["annotations"]["76"][0].__setitem__("tool_bbox", [0.1, 0.2]))
    with pytest.raises(InputError) as err:
        CholecTrack20Builder(copy_root).read_video("VID02")
    assert err.value.path == str(path)
    record = {"malformed": None, "unknown_instrument": "'76'", "box_outside": "'76'", "past_end": "'5001'",
              "bad_box": "'76'"}[case]
    if record:
        assert record in str(err.value.record)


def test_missing_files(copy_root: Path) -> None:
    b = CholecTrack20Builder(copy_root)
    with pytest.raises(InputError, match="VID99"):
        b.read_video("VID99")
    shutil.rmtree(copy_root / "Training" / "VID04" / "Frames")
    with pytest.raises(InputError, match="no frames") as err:
        b.read_video("VID04")
    assert err.value.path.endswith("VID04")
