"""Cholec80-CVS builder: workbook rows → CVS scores over min:s intervals, phases, splits, bad inputs."""

from __future__ import annotations

import doctest
import shutil
from pathlib import Path

import openpyxl
import pytest

from mvbench.builders import cholec80_cvs, get_builder
from mvbench.builders.cholec80_cvs import CRITERIA, Cholec80CvsBuilder, Cholec80CvsConfig
from mvbench.builders.fixtures import make_fixture
from mvbench.errors import InputError


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fixture("cholec80_cvs", tmp_path_factory.mktemp("cvs"))


@pytest.fixture()
def copy_root(fixture_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(fixture_root, tmp_path / "Cholec80-CVS"))


def _set_cell(root: Path, row: int, column: str, value: object) -> Path:
    path = root / "surgeons_annotations.xlsx"
    wb = openpyxl.load_workbook(path)
    ws = wb.worksheets[0]
    header = [c.value for c in ws[1]]
    ws.cell(row=row, column=header.index(column) + 1, value=value)
    wb.save(path)
    return path


def _scores(ann) -> list[tuple[float, float, tuple[int, ...]]]:
    return [(s.start_s, s.end_s, tuple(s.values[c] for c in CRITERIA)) for s in ann.scores]


def test_doctests() -> None:
    assert doctest.testmod(cholec80_cvs).failed == 0


def test_registered_and_detected(fixture_root: Path) -> None:
    assert get_builder("cholec80_cvs") is Cholec80CvsBuilder
    assert Cholec80CvsBuilder.data_source == "Cholec80_CVS"
    assert Cholec80CvsBuilder.detect(fixture_root) and not Cholec80CvsBuilder.detect(fixture_root / "videos")
    header = [c.value for c in openpyxl.load_workbook(fixture_root / "surgeons_annotations.xlsx").worksheets[0][1]]
    assert header[:8] == ["video", "initial_minute", "initial_second", "final_minute", "final_second",
                          "two_structures", "cystic_plate", "hepatocystic_triangle"]
    assert (fixture_root / "phase_annotations" / "video01-phase.txt").read_text().startswith("Frame\tPhase\n0\t")


def test_scores_times_and_clipping(fixture_root: Path) -> None:
    b = Cholec80CvsBuilder(fixture_root)
    assert b.list_videos() == ["video01", "video05", "video12"]
    ann = b.read_video("video01")
    v = ann.video
    assert (v.native_fps, v.num_frames, v.duration_s, v.width, v.height) == (25.0, 1750, 70.0, 64, 48)
    assert v.split == "val" and v.path == fixture_root / "videos" / "video01.mp4"
    # 0:50-1:05 is clipped at the first ClippingCutting frame (1375 = 55 s), as the official labels end there
    assert _scores(ann) == [(10.0, 40.0, (1, 0, 1)), (40.0, 50.0, (2, 1, 1)), (50.0, 55.0, (2, 2, 2))]
    assert all(s.kind == "cvs" for s in ann.scores)
    assert ann.scores[2].attrs == {"row": 4, "total": 6, "critical_view": True, "annotated_end_s": 65.0}
    assert ann.issues == ["row 4: interval end 65s clipped at ClippingCutting (55s)"]
    phases = [(e.label, e.start_s, e.end_s) for e in ann.events]
    assert phases == [("preparation", 0.0, 8.0), ("calot triangle dissection", 8.0, 55.0),
                      ("clipping and cutting", 55.0, 62.0), ("gallbladder dissection", 62.0, 70.0)]
    assert ann.vocab["phase"][2] == "clipping and cutting"


def test_inverted_and_past_end_rows(fixture_root: Path) -> None:
    b = Cholec80CvsBuilder(fixture_root)
    vid05 = b.read_video("video05")
    assert vid05.video.split == "test"
    assert _scores(vid05) == [(15.0, 30.0, (0, 1, 0))]
    assert vid05.issues == ["row 6: final 35s < initial 40s; row dropped"]
    vid12 = b.read_video("video12")
    assert vid12.video.split == "train"
    assert _scores(vid12) == [(20.0, 30.0, (2, 2, 1))]
    assert any("past the video end" in i for i in vid12.issues)


def test_without_phases(fixture_root: Path) -> None:
    b = Cholec80CvsBuilder(fixture_root, read_phases=False, clip_at_phase=None)
    assert b.tasks == ("CVS",)
    ann = b.read_video("video01")
    assert ann.events == [] and _scores(ann)[2] == (50.0, 65.0, (2, 2, 2))
    vid12 = b.read_video("video12")
    assert _scores(vid12) == [(20.0, 40.0, (2, 2, 1))]
    with pytest.raises(ValueError, match="read_phases"):
        Cholec80CvsConfig(read_phases=False)


def test_total_mismatch_is_reported(copy_root: Path) -> None:
    _set_cell(copy_root, 2, "Total", 5)
    ann = Cholec80CvsBuilder(copy_root).read_video("video01")
    assert any(i.startswith("row 2: Total 5") for i in ann.issues)


@pytest.mark.parametrize("case", ["score_3", "start_past_end", "not_a_number"])
def test_bad_rows_name_workbook_and_row(copy_root: Path, case: str) -> None:
    if case == "score_3":
        path = _set_cell(copy_root, 3, "cystic_plate", 3)
    elif case == "start_past_end":  # video12 is 40 s long
        path = _set_cell(copy_root, 7, "initial_second", 45)
        _set_cell(copy_root, 7, "final_minute", 1)
    else:
        path = _set_cell(copy_root, 2, "initial_minute", "ten")
    row = {"score_3": "row 3", "start_past_end": "row 7", "not_a_number": "row 2"}[case]
    with pytest.raises(InputError) as err:
        b = Cholec80CvsBuilder(copy_root)
        for vid in b.list_videos():
            b.read_video(vid)
    assert err.value.path == str(path) and err.value.record == row


def test_bad_files(copy_root: Path) -> None:
    xlsx = copy_root / "surgeons_annotations.xlsx"
    (copy_root / "videos" / "video05.mp4").unlink()
    b = Cholec80CvsBuilder(copy_root)
    with pytest.raises(InputError, match="not found") as err:
        b.read_video("video05")
    assert err.value.path.endswith("video05.mp4")

    phase_file = copy_root / "phase_annotations" / "video12-phase.txt"
    phase_file.write_text(phase_file.read_text().replace("\tPreparation", "\tPrep", 1))
    with pytest.raises(InputError, match="unknown phase") as err:
        b.read_video("video12")
    assert err.value.path == str(phase_file) and err.value.record == "line 2"

    wb = openpyxl.load_workbook(xlsx)
    wb.worksheets[0].delete_cols(6)  # two_structures
    wb.save(xlsx)
    with pytest.raises(InputError, match="two_structures") as err:
        Cholec80CvsBuilder(copy_root).list_videos()
    assert err.value.path == str(xlsx)

    xlsx.write_bytes(b"PK\x03\x04 not a workbook")
    with pytest.raises(InputError, match="xlsx") as err:
        Cholec80CvsBuilder(copy_root).list_videos()
    assert err.value.path == str(xlsx)
    xlsx.unlink()
    with pytest.raises(InputError, match="not found"):
        Cholec80CvsBuilder(copy_root).list_videos()
