"""Synthetic numbered videos: the number survives codecs, JPEG and resizing; bad input is refused."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mvbench.video import synth
from mvbench.video.readers import open_video
from mvbench.video.synth import draw_frame_number, make_test_video, read_frame_number


@pytest.mark.parametrize("number", [0, 1, 2, 255, 256, 12345, 65535])
def test_round_trip_through_jpeg_and_resize(number):
    frame = draw_frame_number(np.full((48, 64, 3), 128, np.uint8), number)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 30])
    jpeg = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    assert read_frame_number(jpeg) == number
    assert read_frame_number(cv2.resize(jpeg, (32, 24), interpolation=cv2.INTER_AREA)) == number
    assert read_frame_number(cv2.resize(frame, (640, 480))) == number


def test_non_synthetic_image_is_refused():
    with pytest.raises(ValueError, match="not a synthetic"):
        read_frame_number(np.full((48, 64, 3), 128, np.uint8))
    with pytest.raises(ValueError):
        draw_frame_number(np.zeros((48, 64, 3), np.uint8), 65536)


def test_bad_arguments():
    with pytest.raises(ValueError, match="even"):
        make_test_video("x.mp4", 1, 10, 63, 48)
    with pytest.raises(ValueError, match="codec"):
        make_test_video("x.mp4", 1, 10, 64, 48, codec="vp9")


def test_frame_count_and_fractional_fps(tmp_path):
    video = make_test_video(tmp_path / "ntsc.mp4", duration_s=2, fps=29.97, width=32, height=32)
    with open_video(video) as reader:
        assert reader.info.num_frames == 60
        assert reader.info.fps == pytest.approx(29.97, abs=0.01)
        assert [read_frame_number(f) for _, f in reader.iter_frames([0, 59])] == [0, 59]


def test_opencv_fallback_without_ffmpeg(tmp_path, monkeypatch):
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    video = make_test_video(tmp_path / "cv.mp4", duration_s=1, fps=10, width=64, height=48)
    with open_video(video, "opencv") as reader:
        assert reader.info.num_frames == 10
        assert [read_frame_number(f) for _, f in reader.iter_frames(range(10))] == list(range(10))
