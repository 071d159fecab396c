"""Frame extraction: right frames on disk, resumable, atomic, one decode."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from mvbench.errors import VideoError
from mvbench.video import frames as frames_module
from mvbench.video.frames import extract_frames, frame_path, write_jpeg_atomic
from mvbench.video.readers import BACKENDS, VideoReader, available_backends, open_video
from mvbench.video.sampling import sample_indices
from mvbench.video.synth import make_frame_folder, make_test_video, read_frame_number


class CountingReader(VideoReader):
    """Wraps a reader and records every iter_frames call."""

    def __init__(self, inner: VideoReader, fail_after: int | None = None):
        self.inner, self.info, self.calls, self.fail_after = inner, inner.info, [], fail_after

    def iter_frames(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        self.calls.append(sorted(set(indices)))
        for n, item in enumerate(self.inner.iter_frames(indices)):
            if self.fail_after is not None and n == self.fail_after:
                raise VideoError("simulated decode failure", path=self.info.path)
            yield item


def _read_numbers(paths: list[Path]) -> list[int]:
    return [read_frame_number(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)) for p in paths]


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_test_video(tmp_path_factory.mktemp("v") / "clip.mp4", duration_s=5, fps=12,
                           width=96, height=64)


def test_frame_path_layout():
    assert frame_path("/r", "CholecT50", "VID01", 7) == Path("/r/CholecT50/VID01/000007.jpg")
    assert frame_path("/r", "EgoSurgery", "01_1", 1234567, ext="png").name == "1234567.png"
    for bad in ("a/b", "..", ""):
        with pytest.raises(ValueError):
            frame_path("/r", "AVOS", bad, 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_extracted_jpegs_show_the_sampled_frames(tmp_path, video, backend):
    if backend not in available_backends():
        pytest.skip(f"{backend} not installed")
    idx = sample_indices(0.4, 4.6, fps=1, native_fps=12, num_frames=60)
    assert idx == [5, 17, 29, 41, 53]
    out = tmp_path / "frames"
    paths = extract_frames(video, idx + [17], out, backend=backend)
    assert paths == [out / f"{i:06d}.jpg" for i in idx + [17]]
    assert _read_numbers(paths) == idx + [17]
    assert sorted(p.name for p in out.iterdir()) == [f"{i:06d}.jpg" for i in idx]


def test_present_frames_are_skipped(tmp_path, video):
    out = tmp_path / "f"
    reader = CountingReader(open_video(video))
    extract_frames(reader, [1, 2, 3], out)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    extract_frames(reader, [3, 2, 10, 1, 20], out)
    assert reader.calls == [[1, 2, 3], [10, 20]]
    assert all(mtimes[p.name] == p.stat().st_mtime_ns for p in out.iterdir() if p.name in mtimes)
    extract_frames(reader, [20, 1], out)
    assert len(reader.calls) == 2  # nothing missing: no decode at all
    assert _read_numbers([out / "000010.jpg", out / "000020.jpg"]) == [10, 20]


def test_all_present_does_not_open_the_video(tmp_path, video):
    out = tmp_path / "f"
    extract_frames(video, [4, 8], out)
    missing_video = tmp_path / "gone.mp4"
    assert extract_frames(missing_video, [8, 4], out) == [out / "000008.jpg", out / "000004.jpg"]
    with pytest.raises(VideoError, match="gone.mp4"):
        extract_frames(missing_video, [4, 5], out)


def test_empty_file_counts_as_missing(tmp_path, video):
    out = tmp_path / "f"
    out.mkdir()
    (out / "000006.jpg").write_bytes(b"")
    extract_frames(video, [6], out)
    assert _read_numbers([out / "000006.jpg"]) == [6]


def test_failure_midway_leaves_only_complete_files(tmp_path, video):
    out = tmp_path / "f"
    reader = CountingReader(open_video(video), fail_after=2)
    with pytest.raises(VideoError, match="simulated"):
        extract_frames(reader, [0, 10, 20, 30], out)
    assert sorted(p.name for p in out.iterdir()) == ["000000.jpg", "000010.jpg"]
    assert _read_numbers(sorted(out.iterdir())) == [0, 10]


def test_failed_rename_removes_temp_file(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(frames_module.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_jpeg_atomic(np.zeros((16, 16, 3), np.uint8), tmp_path / "a.jpg")
    assert list(tmp_path.iterdir()) == []


def test_max_side_and_quality(tmp_path, video):
    small = extract_frames(video, [33], tmp_path / "s", max_side=48, quality=95)[0]
    image = cv2.imread(str(small))
    assert image.shape[:2] == (32, 48)
    assert _read_numbers([small]) == [33]
    big = extract_frames(video, [33], tmp_path / "b", max_side=1000)[0]
    assert cv2.imread(str(big)).shape[:2] == (64, 96)  # never upscaled
    with pytest.raises(ValueError):
        extract_frames(video, [1], tmp_path / "q", quality=0)


def test_frame_folder_source(tmp_path):
    src = tmp_path / "VID01"
    make_frame_folder(src, n=8, fps=1, size=(32, 32))
    paths = extract_frames(src, [7, 3], tmp_path / "out", fps=1)
    assert _read_numbers(paths) == [7, 3]


def test_out_of_range_index_names_file_and_index(tmp_path, video):
    with pytest.raises(VideoError, match=r"clip\.mp4.*\b60\b"):
        extract_frames(video, [59, 60], tmp_path / "f")


def test_doctests_pass():
    import doctest

    result = doctest.testmod(frames_module)
    assert result.attempted >= 1 and result.failed == 0
