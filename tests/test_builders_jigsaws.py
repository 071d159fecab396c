"""JIGSAWS builder: fixture → trials with GRS scores and gesture events; bad input names the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mvbench.builders import get_builder
from mvbench.builders.jigsaws import GRS_ASPECTS, JigsawsBuilder, JigsawsConfig, read_meta_file
from mvbench.builders.fixtures import make_fixture
from mvbench.errors import InputError


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    return make_fixture("jigsaws", tmp_path_factory.mktemp("jigsaws"), seed=0)


@pytest.fixture
def root(fixture_root, tmp_path) -> Path:
    """A private copy of the fixture, free to break."""
    return Path(shutil.copytree(fixture_root, tmp_path / "jigsaws"))


def test_registered_and_detected(fixture_root, tmp_path):
    assert get_builder("jigsaws") is JigsawsBuilder
    assert JigsawsBuilder.detect(fixture_root)
    assert not JigsawsBuilder.detect(tmp_path)
    assert JigsawsBuilder.tasks == ("SA", "TAG", "DVC")


def test_meta_file_keeps_its_quirks(fixture_root):
    raw = (fixture_root / "Suturing" / "meta_file_Suturing.txt").read_bytes()
    assert raw.startswith(b"Suturing_B001\t\tN\t13\t\t3\t2\t1\t2\t2\t3\r\n")
    meta = read_meta_file(fixture_root / "Suturing" / "meta_file_Suturing.txt")
    assert list(meta) == ["Suturing_B001", "Suturing_C002", "Suturing_E003"]
    assert meta["Suturing_E003"].skill == "E" and meta["Suturing_E003"].grs_total == 27


def test_list_videos(fixture_root):
    assert JigsawsBuilder(fixture_root).list_videos() == [
        "Knot_Tying_D001", "Suturing_B001", "Suturing_C002", "Suturing_E003"]


def test_scores_and_video_facts(fixture_root):
    ann = JigsawsBuilder(fixture_root).read_video("Suturing_B001")
    assert (ann.source, ann.data_source) == ("jigsaws", "JIGSAWS")
    v = ann.video
    assert v.path == fixture_root / "Suturing" / "video" / "Suturing_B001_capture1.avi"
    assert (v.native_fps, v.num_frames, v.duration_s, v.width, v.height) == (10.0, 200, 20.0, 64, 48)
    assert v.split is None
    assert v.attrs["task"] == "Suturing" and v.attrs["task_name"] == "suturing"
    assert (v.attrs["subject"], v.attrs["trial"], v.attrs["skill_level"]) == ("B", 1, "N")
    assert v.attrs["kinematics_frames"] == 600
    [score] = ann.scores
    assert score.kind == "grs" and score.level == "N"
    assert (score.start_s, score.end_s) == (0.0, 20.0)
    assert list(score.values) == list(GRS_ASPECTS)
    assert score.values == {"Respect for tissue": 3, "Suture/needle handling": 2, "Time and motion": 1,
                            "Flow of operation": 2, "Overall performance": 2, "Quality of final product": 3}
    assert score.attrs["grs_total"] == 13
    assert ann.issues == []


def test_gestures_convert_1_based_inclusive_frames(fixture_root):
    ann = JigsawsBuilder(fixture_root).read_video("Suturing_B001")
    got = [(e.kind, e.attrs["gesture"], e.label, e.start_s, e.end_s) for e in ann.events]
    assert got == [
        ("gesture", "G1", "Reaching for needle with right hand", 0.0, 2.0),        # frames 1-60
        ("gesture", "G5", "Moving to center with needle in grip", 2.0, 5.0),       # 61-150
        ("gesture", "G8", "Orienting needle", 5.0, 10.0),                          # 151-300
        ("gesture", "G2", "Positioning needle", 10.0, 14.0),                       # 301-420
        ("gesture", "G3", "Pushing needle through tissue", 14.0, 20.0),            # 421-600
    ]
    late = JigsawsBuilder(fixture_root).read_video("Suturing_E003").events[0]
    assert late.attrs["start_frame"] == 12 and late.start_s == pytest.approx(11 / 30)
    # the task's vocabulary: every gesture used in its transcriptions, in gesture-number order
    assert ann.vocab["gesture"] == [
        "Reaching for needle with right hand", "Positioning needle", "Pushing needle through tissue",
        "Moving to center with needle in grip", "Pulling suture with left hand", "Orienting needle",
        "Dropping suture at end and moving to end points"]


def test_trial_without_transcription_has_scores_only(fixture_root):
    ann = JigsawsBuilder(fixture_root).read_video("Knot_Tying_D001")
    assert ann.events == [] and ann.vocab == {}
    assert ann.scores[0].level == "I" and ann.scores[0].values["Respect for tissue"] == 4
    assert any("no gesture transcription" in i for i in ann.issues)


def test_vocabulary_comes_from_the_readme(root):
    readme = root / "Suturing" / "readme.txt"
    readme.write_text(readme.read_text().replace("Reaching for needle with right hand", "Reach needle (R)"))
    assert JigsawsBuilder(root).read_video("Suturing_B001").events[0].label == "Reach needle (R)"
    published = JigsawsBuilder(root, gesture_source="published").read_video("Suturing_B001")
    assert published.events[0].label == "Reaching for needle with right hand"


def test_camera_is_configurable(root):
    video = root / "Suturing" / "video"
    shutil.copy(video / "Suturing_B001_capture1.avi", video / "Suturing_B001_capture2.avi")
    builder = JigsawsBuilder(root, JigsawsConfig(camera="capture2"))
    ann = builder.read_video("Suturing_B001")
    assert ann.video.path.name == "Suturing_B001_capture2.avi" and ann.video.attrs["camera"] == "capture2"
    with pytest.raises(InputError, match="Suturing_C002_capture2.avi"):
        builder.read_video("Suturing_C002")
    with pytest.raises(ValueError):
        JigsawsConfig(camera="left")


def test_gesture_slightly_past_end_is_clipped_and_reported(root):
    path = root / "Suturing" / "transcriptions" / "Suturing_B001.txt"
    path.write_text(path.read_text().replace("421 600 G3", "421 615 G3"))
    ann = JigsawsBuilder(root).read_video("Suturing_B001")
    assert ann.events[-1].end_s == 20.0
    assert any("clipped" in i for i in ann.issues)


def test_grs_total_mismatch_is_reported(root):
    path = root / "Suturing" / "meta_file_Suturing.txt"
    path.write_bytes(path.read_bytes().replace(b"\tN\t13\t", b"\tN\t14\t"))
    assert any("GRS total 14" in i for i in JigsawsBuilder(root).read_video("Suturing_B001").issues)


def test_missing_kinematics_is_reported(root):
    (root / "Suturing" / "kinematics" / "AllGestures" / "Suturing_C002.txt").unlink()
    assert any("no kinematics" in i for i in JigsawsBuilder(root).read_video("Suturing_C002").issues)


# ---- bad input: InputError naming the file ----------------------------------------------------
def _replace(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new))


@pytest.mark.parametrize("old, new, message", [
    (b"\tN\t13\t\t3\t2\t1\t2\t2\t3", b"\tN\t13\t\t3\t2\t1\t2\t2", "9 non-empty"),
    (b"\tN\t13\t", b"\tX\t13\t", "skill level 'X'"),
    (b"\t2\t2\t3\r\n", b"\t2\t7\t3\r\n", "out of 1-5"),
    (b"\tN\t13\t", b"\tN\tthirteen\t", "integers"),
])
def test_malformed_meta_file(root, old, new, message):
    path = root / "Suturing" / "meta_file_Suturing.txt"
    _replace(path, old, new)
    with pytest.raises(InputError, match=message) as err:
        JigsawsBuilder(root).list_videos()
    assert err.value.path == str(path) and err.value.record == "line 1"


@pytest.mark.parametrize("old, new, message", [
    (b"151 300 G8", b"151 300 G99", "unknown gesture G99"),
    (b"151 300 G8", b"151 G8", "expected 'start end G<k>'"),
    (b"151 300 G8", b"300 151 G8", "start <= end"),
    (b"421 600 G3", b"421 900 G3", "past the end"),
])
def test_bad_transcription(root, old, new, message):
    path = root / "Suturing" / "transcriptions" / "Suturing_B001.txt"
    _replace(path, old, new)
    with pytest.raises(InputError, match=message) as err:
        JigsawsBuilder(root).read_video("Suturing_B001")
    assert err.value.path == str(path) and str(err.value.record).startswith("line ")


def test_missing_video(root):
    (root / "Suturing" / "video" / "Suturing_C002_capture1.avi").unlink()
    with pytest.raises(InputError, match="video file not found") as err:
        JigsawsBuilder(root).read_video("Suturing_C002")
    assert err.value.path.endswith("Suturing_C002_capture1.avi")


def test_kinematics_with_wrong_columns(root):
    path = root / "Suturing" / "kinematics" / "AllGestures" / "Suturing_E003.txt"
    path.write_text("\n".join(" ".join(["0.1"] * 75) for _ in range(360)) + "\n")
    with pytest.raises(InputError, match="75 values, expected 76") as err:
        JigsawsBuilder(root).read_video("Suturing_E003")
    assert err.value.path == str(path)
    assert JigsawsBuilder(root, check_kinematics=False).read_video("Suturing_E003").video.attrs[
        "kinematics_frames"] is None


def test_unknown_trial_and_missing_meta(root, tmp_path):
    with pytest.raises(InputError, match="not in any meta file"):
        JigsawsBuilder(root).read_video("Suturing_B009")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="meta_file_Suturing.txt") as err:
        JigsawsBuilder(empty).list_videos()
    assert err.value.path == str(empty)


def test_trial_name_of_another_task_is_rejected(root):
    _replace(root / "Suturing" / "meta_file_Suturing.txt", b"Suturing_C002", b"Knot_Tying_C002")
    with pytest.raises(InputError, match="not Suturing_") as err:
        JigsawsBuilder(root).list_videos()
    assert err.value.record == "line 2"


def test_a_broken_transcription_only_fails_its_own_trial(root):
    (root / "Suturing" / "transcriptions" / "Suturing_C002.txt").write_bytes(b"\xff\xfe garbage")
    assert len(JigsawsBuilder(root).read_video("Suturing_B001").events) == 5
    with pytest.raises(InputError, match="not UTF-8") as err:
        JigsawsBuilder(root).read_video("Suturing_C002")
    assert err.value.path.endswith("Suturing_C002.txt")
