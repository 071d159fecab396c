"""The frame-sampling rule: doctests, edge cases, and agreement with real decoded frames."""

from __future__ import annotations

import doctest

import pytest

from mvbench.video import sampling
from mvbench.video.readers import available_backends, open_video
from mvbench.video.sampling import index_to_time, pad_even, sample_indices, sample_times, time_to_index
from mvbench.video.synth import make_test_video, read_frame_number


def test_doctests_pass():
    result = doctest.testmod(sampling)
    assert result.attempted >= 10
    assert result.failed == 0


def test_times_stop_before_end_and_never_empty():
    assert sample_times(10.0, 13.0, fps=1) == [10.0, 11.0, 12.0]
    assert sample_times(10.0, 13.01, fps=1) == [10.0, 11.0, 12.0, 13.0]
    assert sample_times(5.0, 4.0, fps=2) == [5.0]
    assert len(sample_times(0.0, 100.0, fps=0.5)) == 50


@pytest.mark.parametrize("fps", [0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 3.0])
def test_no_float_noise_sample_at_the_end(fps):
    # n whole samples fit exactly in [start, start + n/fps): never n + 1.
    for start in (0.0, 0.1, 0.7, 12.3):
        assert len(sample_times(start, start + 7 / fps, fps)) == 7


def test_round_half_up_not_bankers():
    # Python's round(2.5) == 2; the rule says 3.
    assert time_to_index(0.5, native_fps=5, num_frames=100) == 3
    assert time_to_index(1.5, native_fps=1, num_frames=100) == 2
    assert time_to_index(0.1, native_fps=25, num_frames=100) == 3  # 2.5000000000000004 and 2.5 alike


def test_indices_clamped_and_inverse():
    assert sample_indices(-1.0, 1.0, fps=1, native_fps=10, num_frames=5) == [0, 0]
    assert sample_indices(0.0, 2.0, fps=4, native_fps=2, num_frames=4) == [0, 1, 1, 2, 2, 3, 3, 3]
    for i in (0, 1, 17, 999):
        assert time_to_index(index_to_time(i, 29.97), 29.97, 1000) == i


def test_bad_rates_rejected():
    with pytest.raises(ValueError):
        sample_times(0, 1, fps=0)
    with pytest.raises(ValueError):
        index_to_time(3, 0)


def test_pad_even():
    assert pad_even([]) == []
    assert pad_even([1, 2, 3]) == [1, 2, 3, 3]
    assert pad_even((4, 5)) == [4, 5]


@pytest.mark.parametrize("backend", ["decord", "pyav", "opencv"])
def test_sampled_indices_match_visible_frame_numbers(tmp_path, backend):
    if backend not in available_backends():
        pytest.skip(f"{backend} not installed")
    video = make_test_video(tmp_path / "v.mp4", duration_s=6, fps=25, width=64, height=48)
    with open_video(video, backend) as reader:
        info = reader.info
        idx = sample_indices(1.3, 5.2, fps=2, native_fps=info.fps, num_frames=info.num_frames)
        # t = 1.3, 1.8, ... 4.8 -> 32.5 (rounds up to 33), 45, 57.5 -> 58, ...
        assert idx == [33, 45, 58, 70, 83, 95, 108, 120]
        frames = dict(reader.iter_frames(idx))
    assert sorted(frames) == idx
    assert {i: read_frame_number(f) for i, f in frames.items()} == {i: i for i in idx}
