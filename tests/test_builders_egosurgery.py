"""EgoSurgery builder: fixture tree → sessions, phase events (0.5 fps), COCO boxes → linked tracks; bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mvbench.builders import get_builder
from mvbench.builders.egosurgery import EgoSurgeryBuilder, EgoSurgeryConfig, link_tracks
from mvbench.builders.fixtures import make_fixture
from mvbench.errors import InputError

TOOL_TRAIN = "annotations/coco_format/bbox/by_split/tool/train.json"


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fixture("egosurgery", tmp_path_factory.mktemp("ego"), seed=0)


@pytest.fixture()
def broken(raw: Path, tmp_path: Path) -> Path:
    """A writable copy of the fixture tree to damage."""
    return Path(shutil.copytree(raw, tmp_path / "EgoSurgery"))


def test_registered_and_detected(raw: Path) -> None:
    assert get_builder("egosurgery") is EgoSurgeryBuilder
    assert EgoSurgeryBuilder.detect(raw)
    assert not EgoSurgeryBuilder.detect(raw / "images")


def test_list_videos_and_official_split(raw: Path) -> None:
    b = EgoSurgeryBuilder(raw)
    assert b.list_videos() == ["01_1", "04_1", "09_1"]
    assert {v: b.read_video(v).video.split for v in b.list_videos()} == {"01_1": "train", "04_1": "test",
                                                                         "09_1": "val"}


def test_video_meta_is_a_half_fps_frame_store(raw: Path) -> None:
    a = EgoSurgeryBuilder(raw).read_video("01_1")
    v = a.video
    assert (v.native_fps, v.num_frames, v.duration_s, v.width, v.height) == (0.5, 21, 42.0, 64, 36)
    assert v.path is None and sorted(v.frame_files) == list(range(1, 21))
    assert v.frame_files[11] == raw / "images" / "01" / "01_1_0011.jpg"
    assert a.source == "egosurgery" and a.data_source == "EgoSurgery" and a.issues == []


def test_phase_runs_become_events_in_seconds(raw: Path) -> None:
    a = EgoSurgeryBuilder(raw).read_video("01_1")
    got = [(e.label, e.start_s, e.end_s, e.kind) for e in a.events]
    # frame k <-> 2k s; a run of frames f..l covers [2f, 2(l+1)).
    assert got == [("disinfection", 2.0, 10.0, "phase"), ("design", 10.0, 18.0, "phase"),
                   ("anesthesia", 18.0, 22.0, "phase"), ("incision", 22.0, 34.0, "phase"),
                   ("dissection", 34.0, 42.0, "phase")]
    assert a.vocab["phase"][0] == "disinfection" and a.vocab["phase"][-1] == "dressing"


def test_boxes_are_pixel_xyxy_and_linked_into_tracks(raw: Path) -> None:
    a = EgoSurgeryBuilder(raw).read_video("01_1")
    by_id = {t.track_id: t for t in a.tracks}
    scalpel = by_id["tool:Scalpel:0"]
    assert scalpel.kind == "tool" and sorted(scalpel.boxes) == [22.0, 24.0, 26.0, 28.0, 30.0, 32.0]
    assert scalpel.boxes[22.0] == (10.0, 8.0, 30.0, 20.0)  # planted xywh [10, 8, 20, 12]
    forceps = sorted((min(t.boxes), max(t.boxes), len(t.boxes)) for t in a.tracks if t.label == "Forceps")
    # two runs (frames 5-9, 14-18) and the far second box on frame 15 as its own track
    assert forceps == [(10.0, 18.0, 5), (28.0, 36.0, 5), (30.0, 30.0, 1)]
    assert by_id["tool:Forceps:2"].boxes[30.0] == (2.0, 24.0, 12.0, 32.0)
    hand = by_id["hand:Own hands right:0"]
    assert hand.kind == "hand" and len(hand.boxes) == 20


def test_link_tracks_prefers_best_iou_and_breaks_on_gaps() -> None:
    a, b = (0.0, 0.0, 10.0, 10.0), (20.0, 20.0, 30.0, 30.0)
    obs = [(1, a), (1, b), (2, (21.0, 21.0, 31.0, 31.0)), (2, (1.0, 1.0, 11.0, 11.0)), (5, a)]
    tracks = link_tracks(obs, max_gap=1, min_iou=0.1)
    assert [sorted(t) for t in tracks] == [[1, 2], [1, 2], [5]]
    assert tracks[0][2] == (1.0, 1.0, 11.0, 11.0) and tracks[1][2] == (21.0, 21.0, 31.0, 31.0)
    assert [sorted(t) for t in link_tracks(obs, max_gap=3, min_iou=0.1)] == [[1, 2, 5], [1, 2]]


def test_config_fps_changes_the_time_base(raw: Path) -> None:
    a = EgoSurgeryBuilder(raw, fps=1.0).read_video("01_1")
    assert a.video.duration_s == 21.0 and (a.events[0].start_s, a.events[0].end_s) == (1.0, 5.0)
    with pytest.raises(ValueError, match="named groups"):
        EgoSurgeryConfig(frame_regex=r"(\d+)")
    with pytest.raises(ValueError, match="fps"):
        EgoSurgeryConfig(fps=0)


def test_malformed_coco_json_names_the_file(broken: Path) -> None:
    path = broken / TOOL_TRAIN
    path.write_text(path.read_text()[:-20])
    with pytest.raises(InputError, match="malformed JSON") as e:
        EgoSurgeryBuilder(broken).read_video("01_1")
    assert e.value.path == str(path)


def _edit_first_annotation(broken: Path, **fields: object) -> Path:
    path = broken / TOOL_TRAIN
    doc = json.loads(path.read_text())
    doc["annotations"][0].update(fields)
    path.write_text(json.dumps(doc))
    return path


def test_unknown_category_id_names_file_and_record(broken: Path) -> None:
    path = _edit_first_annotation(broken, category_id=99)
    with pytest.raises(InputError, match="unknown category_id 99") as e:
        EgoSurgeryBuilder(broken).read_video("01_1")
    assert e.value.path == str(path) and "annotations[0]" in str(e.value.record)


def test_box_outside_the_frame(broken: Path) -> None:
    path = _edit_first_annotation(broken, bbox=[50, 20, 30, 10])
    with pytest.raises(InputError, match="outside the 64x36 frame") as e:
        EgoSurgeryBuilder(broken).read_video("01_1")
    assert e.value.path == str(path)


def test_phase_row_past_the_video_end(broken: Path) -> None:
    path = broken / "annotations/phase/01_1.csv"
    with open(path, "a") as f:
        f.write("01_1_0040,dissection\n")
    with pytest.raises(InputError, match="past the last image") as e:
        EgoSurgeryBuilder(broken).read_video("01_1")
    assert e.value.path == str(path) and e.value.record == "row 22"


def test_unknown_phase_label(broken: Path) -> None:
    path = broken / "annotations/phase/09_1.csv"
    path.write_text(path.read_text().replace("hemostasis", "suturing", 1))
    with pytest.raises(InputError, match="unknown phase 'suturing'") as e:
        EgoSurgeryBuilder(broken).read_video("09_1")
    assert e.value.path == str(path)


def test_listed_session_without_images(broken: Path) -> None:
    shutil.rmtree(broken / "images" / "04")
    b = EgoSurgeryBuilder(broken)
    assert "04_1" in b.list_videos()
    with pytest.raises(InputError, match="no images"):
        b.read_video("04_1")
    with pytest.raises(InputError, match="unknown video id"):
        b.read_video("77_1")


def test_missing_annotations(broken: Path) -> None:
    shutil.rmtree(broken / "annotations")
    with pytest.raises(InputError, match="no EgoSurgery annotations") as e:
        EgoSurgeryBuilder(broken).list_videos()
    assert e.value.path == str(broken)


def test_missing_phase_file_is_reported_not_fatal(broken: Path) -> None:
    (broken / "annotations/phase/04_1.csv").unlink()
    a = EgoSurgeryBuilder(broken).read_video("04_1")
    assert a.events == [] and a.tracks and "no phase file" in a.issues[0]


def test_doctests() -> None:
    import doctest

    import mvbench.builders.egosurgery as module

    assert doctest.testmod(module).failed == 0
