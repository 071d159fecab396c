"""CoPESD builder: smllm instruction JSON + keyframes → motion events, knife/forceps tracks, xyxy/xywh per folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mvbench.builders import get_builder
from mvbench.builders.copesd import LABELS, CoPESDBuilder, CoPESDConfig, map_motion_label
from mvbench.builders.fixtures import make_fixture
from mvbench.errors import InputError

TEST_JSON = "annotations/smllm/smllm_test.json"
TRAIN_JSON = "annotations/smllm/smllm_train.json"


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fixture("copesd", tmp_path_factory.mktemp("copesd"), seed=0)


@pytest.fixture()
def broken(raw: Path, tmp_path: Path) -> Path:
    """A writable copy of the fixture tree to damage."""
    return Path(shutil.copytree(raw, tmp_path / "CoPESD"))


def _edit_record(root: Path, rel: str, index: int, motion: str | None = None, instruction: str | None = None) -> Path:
    path = root / rel
    records = json.loads(path.read_text())
    turns = records[index]["conversations"]
    if instruction is not None:
        turns[0]["value"] = instruction
    if motion is not None:
        turns[1]["value"] = motion
    path.write_text(json.dumps(records, indent=4))
    return path


def test_registered_and_detected(raw: Path) -> None:
    assert get_builder("copesd") is CoPESDBuilder
    assert CoPESDBuilder.detect(raw) and not CoPESDBuilder.detect(raw / "annotations")


def test_list_videos_and_splits_from_file_names(raw: Path) -> None:
    b = CoPESDBuilder(raw)
    assert b.list_videos() == ["014014_part0", "023521_part0", "233029_part0"]
    assert [b.read_video(v).video.split for v in b.list_videos()] == ["train", "test", "train"]


def test_video_meta_is_a_keyframe_store(raw: Path) -> None:
    a = CoPESDBuilder(raw).read_video("023521_part0")
    v = a.video
    assert (v.native_fps, v.num_frames, v.duration_s, v.width, v.height) == (1.0, 37, 37.0, 64, 48)
    assert sorted(v.frame_files) == list(range(1, 37))
    assert v.frame_files[5] == raw / "high_light_images" / "023521" / "0005.jpg"
    assert v.attrs["folder"] == "023521" and v.attrs["box_format"] == "xyxy" and a.issues == []
    assert a.vocab == {"action": list(LABELS)} and a.data_source == "CoPESD"


def test_keyframe_labels_become_events(raw: Path) -> None:
    a = CoPESDBuilder(raw).read_video("023521_part0")
    assert [(e.label, e.start_s, e.end_s) for e in a.events] == [
        ("position flap with forceps and knife", 1.0, 7.0), ("retract flap edge with forceps and knife", 7.0, 13.0),
        ("lift flap with forceps", 13.0, 19.0), ("dissect flap tissue with knife", 19.0, 27.0),
        ("adjust camera", 27.0, 30.0), ("position flap with forceps only", 30.0, 37.0)]
    first = a.events[0].attrs
    assert first["frames"] == [1, 6] and all("[" not in m for m in first["motions"])
    assert any("Forceps" in m for m in first["motions"])


def test_all_eight_labels_are_reachable(raw: Path) -> None:
    b = CoPESDBuilder(raw)
    seen = {e.label for v in b.list_videos() for e in b.read_video(v).events}
    assert seen == set(LABELS)


def test_xyxy_boxes_denormalised_and_tracks_split_at_camera_gap(raw: Path) -> None:
    a = CoPESDBuilder(raw).read_video("023521_part0")
    by_id = {t.track_id: t for t in a.tracks}
    assert sorted(by_id) == ["forceps:0", "forceps:1", "knife:0", "knife:1"]
    forceps = by_id["forceps:0"]
    assert forceps.label == "forceps" and (min(forceps.boxes), max(forceps.boxes)) == (1.0, 26.0)
    # Forceps[0.14, 0.21, 0.47, 0.77] (xyxy) on a 64x48 keyframe
    assert forceps.boxes[1.0] == pytest.approx((0.14 * 64, 0.21 * 48, 0.47 * 64, 0.77 * 48))
    assert by_id["knife:0"].boxes[1.0] == pytest.approx((0.71 * 64, 0.44 * 48, 0.89 * 64, 0.77 * 48))
    assert (min(by_id["knife:1"].boxes), max(by_id["knife:1"].boxes)) == (30.0, 36.0)


def test_xywh_folder_is_detected_and_reported(raw: Path) -> None:
    a = CoPESDBuilder(raw).read_video("233029_part0")
    assert a.video.attrs["box_format"] == "xywh"
    assert a.issues and "233029" in a.issues[0] and "xywh" in a.issues[0]
    knife = next(t for t in a.tracks if t.track_id == "knife:0")
    # Knife[0.74, 0.27, 0.25, 0.50] read as xywh: x2 = 0.99, y2 = 0.77
    assert knife.boxes[1.0] == pytest.approx((0.74 * 64, 0.27 * 48, 0.99 * 64, 0.77 * 48))
    forced = CoPESDBuilder(raw, box_format_by_folder={"233029": "xyxy"})
    with pytest.raises(InputError, match="empty when read as normalised xyxy"):
        forced.read_video("233029_part0")


def test_parts_are_rebased(raw: Path) -> None:
    b = CoPESDBuilder(raw, part_max_frames=20)
    assert "023521_part1" in b.list_videos()
    a = b.read_video("023521_part1")
    assert a.video.attrs["frame_offset"] == 20 and sorted(a.video.frame_files)[0] == 1
    assert a.video.frame_files[1].name == "0021.jpg" and a.video.duration_s == 17.0
    assert (a.events[0].label, a.events[0].start_s, a.events[0].end_s) == ("dissect flap tissue with knife", 1.0, 7.0)


def test_map_motion_label_and_config_checks() -> None:
    assert map_motion_label("Use the Forceps to pull back the mucosa flap.",
                            "Transport the Forceps[0.1, 0.1, 0.2, 0.2] until they touch the edge of the mucosa "
                            "flap.") == "position flap with forceps only"
    assert map_motion_label("Wave at the nurse.", "No tools.") is None
    with pytest.raises(ValueError, match="labels missing"):
        CoPESDConfig(label_rules=(("wave", "x", ""),))
    with pytest.raises(ValueError, match="box format"):
        CoPESDConfig(box_format="cxcywh")


def test_malformed_json_names_the_file(broken: Path) -> None:
    path = broken / TEST_JSON
    path.write_text(path.read_text()[:-30])
    with pytest.raises(InputError, match="malformed JSON") as e:
        CoPESDBuilder(broken).list_videos()
    assert e.value.path == str(path)


def test_record_without_turns(broken: Path) -> None:
    path = broken / TRAIN_JSON
    records = json.loads(path.read_text())
    del records[3]["conversations"]
    path.write_text(json.dumps(records))
    with pytest.raises(InputError, match="malformed record") as e:
        CoPESDBuilder(broken).list_videos()
    assert e.value.path == str(path) and e.value.record == "[3]"


def test_unknown_instrument(broken: Path) -> None:
    path = _edit_record(broken, TEST_JSON, 2, motion="Move the Scissors[0.1, 0.2, 0.3, 0.4] to the flap.")
    with pytest.raises(InputError, match="unknown instrument 'Scissors'") as e:
        CoPESDBuilder(broken).list_videos()
    assert e.value.path == str(path) and "023521/0003.jpg" in e.value.record


def test_box_outside_the_frame(broken: Path) -> None:
    path = _edit_record(broken, TEST_JSON, 0, motion="Move the Forceps[0.10, 0.20, 1.40, 0.70] to the edge.")
    with pytest.raises(InputError, match="outside the frame") as e:
        CoPESDBuilder(broken).list_videos()
    assert e.value.path == str(path)


def test_unmapped_instruction_errors_or_is_skipped(broken: Path) -> None:
    path = _edit_record(broken, TEST_JSON, 0, instruction="Irrigate the field.")
    with pytest.raises(InputError, match="no label rule") as e:
        CoPESDBuilder(broken, unmapped="error").read_video("023521_part0")
    assert e.value.path == str(path)
    a = CoPESDBuilder(broken).read_video("023521_part0")  # default: skip and report
    assert a.events[0].start_s == 2.0 and "left unlabelled" in a.issues[0]
    assert min(next(t for t in a.tracks if t.label == "forceps").boxes) == 1.0


def test_listed_folder_without_images(broken: Path) -> None:
    shutil.rmtree(broken / "high_light_images" / "014014")
    b = CoPESDBuilder(broken)
    assert "014014_part0" in b.list_videos()
    with pytest.raises(InputError, match="has no images"):
        b.read_video("014014_part0")
    with pytest.raises(InputError, match="unknown video id"):
        b.read_video("999999_part0")


def test_missing_annotation_file(broken: Path) -> None:
    shutil.rmtree(broken / "annotations")
    with pytest.raises(InputError, match="no CoPESD instruction JSON") as e:
        CoPESDBuilder(broken).list_videos()
    assert e.value.path == str(broken)


def test_doctests() -> None:
    import doctest

    import mvbench.builders.copesd as module

    assert doctest.testmod(module).failed == 0
