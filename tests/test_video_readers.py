"""Readers: every backend returns the right frames; bad files raise VideoError naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from mvbench.errors import VideoError
from mvbench.video.readers import (
    BACKEND_ENV_VAR,
    BACKENDS,
    ImageSequence,
    available_backends,
    open_video,
    probe,
    resolve_backend,
)
from mvbench.video.synth import make_frame_folder, make_test_video, read_frame_number


def _backend(name: str) -> str:
    if name not in available_backends():
        pytest.skip(f"{name} not installed")
    return name


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    return {codec: make_test_video(root / f"{codec}.mp4", duration_s=4, fps=10, width=64, height=48,
                                   codec=codec, gop=12)
            for codec in ("h264", "mpeg4")}


@pytest.mark.parametrize("codec", ["h264", "mpeg4"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_frames_are_the_requested_ones(videos, backend, codec):
    with open_video(videos[codec], _backend(backend)) as reader:
        info = reader.info
        assert (info.num_frames, info.fps, info.width, info.height) == (40, 10.0, 64, 48)
        assert info.duration_s == pytest.approx(4.0)
        assert info.backend == backend
        # unsorted, duplicated, spanning several GOPs (gop=12), last frame included
        got = list(reader.iter_frames([39, 0, 13, 13, 1, 25, 24]))
    assert [i for i, _ in got] == [0, 1, 13, 24, 25, 39]
    for i, frame in got:
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
        assert read_frame_number(frame) == i


@pytest.mark.parametrize("backend", BACKENDS)
def test_reader_can_be_iterated_twice(videos, backend):
    with open_video(videos["h264"], _backend(backend)) as reader:
        assert [i for i, _ in reader.iter_frames([30, 5])] == [5, 30]
        assert [read_frame_number(f) for _, f in reader.iter_frames([2, 3])] == [2, 3]
        assert list(reader.iter_frames([])) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_index_past_end_names_file_and_index(videos, backend):
    with open_video(videos["h264"], _backend(backend)) as reader:
        with pytest.raises(VideoError) as err:
            list(reader.iter_frames([3, 40]))
    assert "h264.mp4" in str(err.value) and "40" in str(err.value)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["missing", "empty", "corrupt"])
def test_bad_files_raise_video_error_naming_the_file(tmp_path, backend, kind):
    path = tmp_path / f"{kind}-x.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "corrupt":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError) as err:
        open_video(path, _backend(backend))
    assert str(path) in str(err.value)
    assert err.value.path == str(path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_video_without_frames_raises(tmp_path, backend):
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.skip("needs the ffmpeg binary")
    path = tmp_path / "audio-only.mp4"
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
                    "-t", "0.5", "-c:a", "aac", str(path)], check=True)
    with pytest.raises(VideoError, match="audio-only.mp4"):
        open_video(path, _backend(backend))


def test_truncated_video_raises_video_error(tmp_path, videos):
    data = videos["h264"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])  # mp4 with moov at the end: header lost
    with pytest.raises(VideoError, match="cut.mp4"):
        probe(cut)


def test_backend_selection(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV_VAR, raising=False)
    assert resolve_backend() == available_backends()[0]
    last = available_backends()[-1]
    monkeypatch.setenv(BACKEND_ENV_VAR, last)
    assert resolve_backend() == last
    assert resolve_backend(available_backends()[0]) == available_backends()[0]  # argument wins
    with pytest.raises(ValueError, match="known"):
        resolve_backend("gstreamer")


def test_env_var_forces_backend(monkeypatch, videos):
    last = available_backends()[-1]
    monkeypatch.setenv(BACKEND_ENV_VAR, last)
    assert probe(videos["h264"]).backend == last


def test_image_sequence_folder(tmp_path):
    folder = tmp_path / "VID01"
    made = make_frame_folder(folder, n=12, fps=1, size=(48, 32))
    (folder / "labels.json").write_text("{}")  # non-images are ignored
    reader = open_video(folder, fps=1)
    assert isinstance(reader, ImageSequence)
    assert reader.info == made
    got = list(reader.iter_frames([11, 0, 5, 5]))
    assert [i for i, _ in got] == [0, 5, 11]
    assert [read_frame_number(f) for _, f in got] == [0, 5, 11]
    with pytest.raises(VideoError, match="12"):
        list(reader.iter_frames([12]))


def test_image_sequence_natural_order_and_sparse_names(tmp_path):
    # CholecTrack20-style names (25-fps frame numbers at 1 fps), unpadded so text order is wrong.
    names = [f"frame_{25 * k + 1}.jpg" for k in range(12)]
    make_frame_folder(tmp_path, n=12, fps=1, size=(48, 32), names=names)
    reader = ImageSequence(tmp_path, fps=1)
    assert [p.name for p in reader.paths] == names
    assert [read_frame_number(f) for _, f in reader.iter_frames(range(12))] == list(range(12))


def test_image_sequence_from_list(tmp_path):
    make_frame_folder(tmp_path, n=6, fps=0.5, size=(32, 32), pattern="01_1_{:04d}.jpg")
    paths = [tmp_path / f"01_1_{k:04d}.jpg" for k in (4, 2, 0)]  # explicit order wins
    reader = open_video(paths, fps=0.5)
    assert reader.info.num_frames == 3 and reader.info.duration_s == 6.0
    assert [read_frame_number(f) for _, f in reader.iter_frames([0, 1, 2])] == [4, 2, 0]


def test_image_sequence_errors_name_the_file(tmp_path):
    with pytest.raises(VideoError, match="nothere"):
        ImageSequence(tmp_path / "nothere", fps=1)
    with pytest.raises(VideoError, match="no frame images"):
        ImageSequence(tmp_path, fps=1)
    (tmp_path / "000000.png").write_bytes(b"not a png")
    with pytest.raises(VideoError, match="000000.png"):
        ImageSequence(tmp_path, fps=1)
    with pytest.raises(ValueError, match="fps"):
        open_video(tmp_path)


def test_pyav_stream_without_timestamps_is_read_by_counting(tmp_path, videos):
    """A raw .h264 elementary stream has no packet timestamps: PyAV falls back to counting frames."""
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.skip("needs the ffmpeg binary")
    raw = tmp_path / "raw.h264"
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(videos["h264"]), "-c", "copy",
                    "-f", "h264", str(raw)], check=True)
    with open_video(raw, _backend("pyav")) as reader:
        assert reader.info.num_frames == 40
        got = [(i, read_frame_number(f)) for i, f in reader.iter_frames([3, 17, 39])]
        assert reader._timeline == ({}, [], [])  # the counting path was taken
    assert got == [(3, 3), (17, 17), (39, 39)]
