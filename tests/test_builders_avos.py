"""AVOS builder: fixture → action events, 15-fps store frames → seconds, RetinaNet boxes → tracks; bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mvbench.builders import get_builder
from mvbench.builders.avos import AVOSBuilder, AVOSConfig
from mvbench.builders.fixtures import make_fixture
from mvbench.errors import InputError

VID = "kcOqlifSukA"


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fixture("avos", tmp_path_factory.mktemp("avos"), seed=0)


@pytest.fixture()
def broken(raw: Path, tmp_path: Path) -> Path:
    """A writable copy of the fixture tree to damage."""
    return Path(shutil.copytree(raw, tmp_path / "AVOS"))


def _append(path: Path, line: str) -> Path:
    with open(path, "a") as f:
        f.write(line + "\n")
    return path


def test_registered_and_detected(raw: Path) -> None:
    assert get_builder("avos") is AVOSBuilder
    assert AVOSBuilder.detect(raw) and not AVOSBuilder.detect(raw / "videos")


def test_list_videos_and_splits(raw: Path) -> None:
    b = AVOSBuilder(raw)
    assert b.list_videos() == ["-3gFrKiC99I", VID, "rzKGRcXNXm4"]
    assert [b.read_video(v).video.split for v in b.list_videos()] == ["test", "train", "val"]


def test_video_meta_from_the_video_file(raw: Path) -> None:
    a = AVOSBuilder(raw).read_video(VID)
    v = a.video
    assert v.path == raw / "videos" / f"{VID}.mp4" and v.frame_files is None
    assert (v.native_fps, v.num_frames, v.duration_s, v.width, v.height) == (15.0, 600, 40.0, 64, 48)
    assert v.attrs["youtube_id"] == VID and v.attrs["negative_frames"] == 1
    assert a.data_source == "AVOS" and a.issues == []


def test_action_segments_become_ordered_events(raw: Path) -> None:
    a = AVOSBuilder(raw).read_video(VID)
    assert [(e.label, e.start_s, e.end_s, e.kind) for e in a.events] == [
        ("cutting", 2.0, 10.0, "action"), ("tying", 12.0, 18.5, "action"), ("suturing", 20.0, 35.0, "action"),
        ("cutting", 36.0, 39.0, "action")]
    assert a.vocab == {"action": ["cutting", "tying", "suturing"]}


def test_store_frames_become_seconds_and_tracks(raw: Path) -> None:
    a = AVOSBuilder(raw).read_video(VID)
    by_id = {t.track_id: t for t in a.tracks}
    assert sorted(by_id) == ["bovie:0", "bovie:1", "forceps:0", "hand:0", "hand:1"]
    bovie = by_id["bovie:0"]
    assert sorted(bovie.boxes) == [2.0, 3.0, 4.0]  # store frames 30, 45, 60 at 15 fps
    assert bovie.boxes[2.0] == (5.0, 6.0, 30.0, 40.0) and bovie.kind == "tool"
    assert list(by_id["bovie:1"].boxes) == [pytest.approx(200 / 15)]  # 140 frames later: a new track
    # two hands on frames 300 and 315 (listed in swapped order on 315) are followed by IoU
    assert by_id["hand:0"].boxes == {20.0: (2.0, 20.0, 20.0, 46.0), 21.0: (3.0, 20.0, 21.0, 46.0)}
    assert by_id["hand:1"].boxes == {20.0: (40.0, 20.0, 62.0, 46.0), 21.0: (41.0, 21.0, 62.0, 46.0)}
    assert by_id["hand:0"].kind == "hand"


def test_frame_store_fallback(broken: Path) -> None:
    from mvbench.video.synth import make_frame_folder

    (broken / "videos" / f"{VID}.mp4").unlink()
    make_frame_folder(broken / "frames_15fps" / VID, 3, 15.0, (64, 48), names=["0.jpg", "300.jpg", "599.jpg"])
    v = AVOSBuilder(broken).read_video(VID).video
    assert v.path is None and sorted(v.frame_files) == [0, 300, 599]
    assert (v.native_fps, v.num_frames, v.duration_s, v.width) == (15.0, 600, 40.0, 64)


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="missing_video"):
        AVOSConfig(missing_video="ignore")
    with pytest.raises(ValueError, match="named groups"):
        AVOSConfig(image_regex=r"(.{11})-(\d+)\.jpg")


def test_malformed_detection_row_names_file_and_row(broken: Path) -> None:
    path = _append(broken / "detections/train.csv", f"data/AVOS/images/{VID}-000000010.jpg,1,2,3")
    with pytest.raises(InputError, match="6 columns") as e:
        AVOSBuilder(broken).list_videos()
    assert e.value.path == str(path) and e.value.record == "row 11"


def test_unknown_class(broken: Path) -> None:
    path = _append(broken / "detections/val.csv", "data/AVOS/images/rzKGRcXNXm4-000000010.jpg,1,2,30,40,scalpel")
    with pytest.raises(InputError, match="unknown class 'scalpel'") as e:
        AVOSBuilder(broken).read_video("rzKGRcXNXm4")
    assert e.value.path == str(path)


def test_unknown_action_label(broken: Path) -> None:
    path = _append(broken / "actions/segments.csv", f"{VID},1.0,2.0,stapling")
    with pytest.raises(InputError, match="unknown action 'stapling'") as e:
        AVOSBuilder(broken).read_video(VID)
    assert e.value.path == str(path)


def test_box_outside_the_frame(broken: Path) -> None:
    path = _append(broken / "detections/train.csv", f"data/AVOS/images/{VID}-000000090.jpg,10,10,200,40,forceps")
    with pytest.raises(InputError, match="outside the 64x48 video frame") as e:
        AVOSBuilder(broken).read_video(VID)
    assert e.value.path == str(path)


def test_segment_past_the_end_errors_beyond_tolerance_and_clips_within(broken: Path) -> None:
    path = _append(broken / "actions/segments.csv", f"{VID},38.0,41.0,tying")
    a = AVOSBuilder(broken).read_video(VID)
    assert (a.events[-1].label, a.events[-1].end_s) == ("tying", 40.0) and "clipped" in a.issues[0]
    _append(path, f"{VID},39.0,55.0,tying")
    with pytest.raises(InputError, match="past the video end") as e:
        AVOSBuilder(broken).read_video(VID)
    assert e.value.path == str(path)


def test_listed_video_missing(broken: Path) -> None:
    (broken / "videos" / "rzKGRcXNXm4.mp4").unlink()
    with pytest.raises(InputError, match="annotated but neither"):
        AVOSBuilder(broken).read_video("rzKGRcXNXm4")
    assert "rzKGRcXNXm4" not in AVOSBuilder(broken, missing_video="skip").list_videos()


def test_missing_annotations(broken: Path) -> None:
    shutil.rmtree(broken / "detections")
    (broken / "actions/segments.csv").unlink()
    with pytest.raises(InputError, match="no AVOS annotations"):
        AVOSBuilder(broken).list_videos()
