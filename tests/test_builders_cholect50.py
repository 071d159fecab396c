"""CholecT50 builder: fixture tree → phase/triplet events and hook track; bad inputs name the file."""

from __future__ import annotations

import doctest
import json
import shutil
from pathlib import Path

import pytest

from mvbench.builders import cholect50, get_builder
from mvbench.builders.cholect50 import PHASES, TRIPLETS, CholecT50Builder, CholecT50Config
from mvbench.builders.fixtures import make_fixture
from mvbench.errors import InputError


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fixture("cholect50", tmp_path_factory.mktemp("ct50"))


@pytest.fixture()
def copy_root(fixture_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(fixture_root, tmp_path / "CholecT50"))


def _edit_label(root: Path, vid: str, edit) -> Path:
    path = root / "labels" / f"{vid}.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


def test_doctests() -> None:
    assert doctest.testmod(cholect50).failed == 0


def test_registered_and_detected(fixture_root: Path) -> None:
    assert get_builder("cholect50") is CholecT50Builder
    assert CholecT50Builder.detect(fixture_root)
    assert not CholecT50Builder.detect(fixture_root / "labels")
    assert len(TRIPLETS) == 100 and TRIPLETS[0] == "grasper,dissect,cystic_plate"
    assert TRIPLETS[94:] == tuple(f"{i},null_verb,null_target" for i in cholect50.INSTRUMENTS)


def test_fixture_is_real_layout(fixture_root: Path) -> None:
    assert (fixture_root / "videos" / "VID01" / "000000.png").is_file()
    assert (fixture_root / "videos" / "VID110" / "000035.png").is_file()
    lines = (fixture_root / "label_mapping.txt").read_text().splitlines()
    assert lines[0] == "# IVT, I, V, T, IV, IT" and len(lines) == 101
    assert lines[2].startswith("1,0,2,0,")  # grasper, dissect, gallbladder (README example)
    data = json.loads((fixture_root / "labels" / "VID01.json").read_text())
    assert data["categories"]["phase"]["1"] == "carlot-triangle-dissection"
    assert all(len(v) == 15 for vs in data["annotations"].values() for v in vs)


def test_list_and_read_boxed_video(fixture_root: Path) -> None:
    b = CholecT50Builder(fixture_root)
    assert b.list_videos() == ["VID01", "VID06", "VID110"]
    ann = b.read_video("VID01")
    v = ann.video
    assert (v.native_fps, v.num_frames, v.duration_s, v.width, v.height) == (1.0, 40, 40.0, 96, 54)
    assert v.split == "train" and v.path is None and v.frame_files[16].name == "000016.png"
    assert ann.data_source == "CholecT50" and ann.issues == []
    phases = [(e.label, e.start_s, e.end_s) for e in ann.events if e.kind == "phase"]
    assert phases == [("preparation", 0.0, 10.0), ("carlot-triangle-dissection", 10.0, 25.0),
                      ("clipping-and-cutting", 25.0, 40.0)]
    triplets = [(e.label, e.start_s, e.end_s, e.attrs["triplet"]) for e in ann.events if e.kind == "triplet"]
    # the 2-frame gap (9, 10) splits grasper runs; the 1-frame gap at 16 is bridged (merge_gap_s=1)
    assert triplets == [("grasper retract gallbladder", 2.0, 9.0, "grasper,retract,gallbladder"),
                        ("grasper retract gallbladder", 11.0, 31.0, "grasper,retract,gallbladder"),
                        ("hook dissect cystic plate", 12.0, 21.0, "hook,dissect,cystic_plate")]
    assert ann.vocab["phase"] == list(PHASES)
    assert ann.vocab["triplet"] == ["grasper retract gallbladder", "hook dissect cystic plate"]
    [track] = ann.tracks
    assert (track.label, track.track_id, track.kind) == ("hook", "hook-1", "tool")
    assert sorted(track.boxes) == [12.0, 13.0, 14.0, 15.0, 17.0, 18.0, 19.0, 20.0]
    assert track.boxes[12.0] == (24.0, 27.0, 48.0, 40.5)  # [0.25, 0.5, 0.25, 0.25] on 96x54
    assert track.boxes[20.0] == pytest.approx((31.68, 27.0, 55.68, 40.5))


def test_unboxed_videos_and_official_split(fixture_root: Path) -> None:
    b = CholecT50Builder(fixture_root)
    vid06 = b.read_video("VID06")
    assert vid06.video.split == "test" and vid06.tracks == []
    assert [e.label for e in vid06.events if e.kind == "phase"] == [
        "gallbladder-dissection", "gallbladder-packaging", "gallbladder-extraction"]
    vid110 = b.read_video("VID110")  # starts with phase-only frames (fourteen -1, then the phase)
    assert vid110.events[0].kind == "phase" and vid110.events[0].start_s == 0.0
    assert vid110.video.frame_files[0].parent.name == "VID110"
    challenge = CholecT50Builder(fixture_root, split_variant="cholect50-challenge")
    assert challenge.read_video("VID110").video.split == "test"
    assert CholecT50Builder(fixture_root, split_variant=None).read_video("VID01").video.split is None


def test_categories_list_form_and_fallbacks(copy_root: Path) -> None:
    def to_list(d):
        d["categories"] = [{k: v} for k, v in d["categories"].items()]
    _edit_label(copy_root, "VID01", to_list)
    ann = CholecT50Builder(copy_root).read_video("VID01")
    assert ann.issues == [] and ann.events[0].label == "preparation"

    _edit_label(copy_root, "VID06", lambda d: d.pop("categories"))
    ann = CholecT50Builder(copy_root).read_video("VID06")
    assert "grasper pack gallbladder" in ann.vocab["triplet"]  # triplet names from label_mapping.txt
    assert any("categories.phase" in i for i in ann.issues)


def test_recoverable_anomalies_are_reported(copy_root: Path) -> None:
    def edit(d):
        d["annotations"]["41"] = [[-1] * 14 + [2]]  # 1 s past the last frame: within tolerance
        d["annotations"]["13"][0][3:7] = [0.8, 0.5, 0.21, 0.25]  # overhangs the right edge by 1 %
    _edit_label(copy_root, "VID01", edit)
    ann = CholecT50Builder(copy_root).read_video("VID01")
    assert ann.events[2].end_s == 40.0
    assert ann.tracks[0].boxes[13.0] == pytest.approx((76.8, 27.0, 96.0, 40.5))
    assert any("past the last frame" in i for i in ann.issues)
    assert any("clipped" in i for i in ann.issues)


@pytest.mark.parametrize("case", ["malformed", "unknown_triplet", "box_outside", "past_end", "short_vector"])
def test_bad_label_file_names_file_and_record(copy_root: Path, case: str) -> None:
    path = copy_root / "labels" / "VID01.json"
    if case == "malformed":
        path.write_text('{"annotations": {"0": [[-1, ')
    elif case == "unknown_triplet":
        _edit_label(copy_root, "VID01", lambda d: d["annotations"]["3"][0].__setitem__(0, 150))
    elif case == "box_outside":
        _edit_label(copy_root, "VID01", lambda d: d["annotations"]["14"][1].__setitem__(3, 1.5))
    elif case == "past_end":
        _edit_label(copy_root, "VID01", lambda d: d["annotations"].__setitem__("500", [[-1] * 14 + [2]]))
    else:
        _edit_label(copy_root, "VID01", lambda d: d["annotations"].__setitem__("5", [[17, 0, 1]]))
    with pytest.raises(InputError) as err:
        CholecT50Builder(copy_root).read_video("VID01")
    assert err.value.path == str(path)
    expected_record = {"malformed": None, "unknown_triplet": "'3'", "box_outside": "'14'", "past_end": "'500'",
                       "short_vector": "'5'"}[case]
    if expected_record:
        assert expected_record in str(err.value.record)


def test_missing_files(copy_root: Path) -> None:
    b = CholecT50Builder(copy_root)
    with pytest.raises(InputError, match="not found") as err:
        b.read_video("VID77")
    assert err.value.path.endswith("VID77.json")
    shutil.rmtree(copy_root / "videos" / "VID06")
    with pytest.raises(InputError, match="frame folder") as err:
        b.read_video("VID06")
    assert err.value.path.endswith("VID06")
    shutil.rmtree(copy_root / "labels")
    with pytest.raises(InputError):
        b.list_videos()


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="split_variant"):
        CholecT50Config(split_variant="cholect99")
    with pytest.raises(ValueError):
        CholecT50Config(merge_gap_s=-1)
