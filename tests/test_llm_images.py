"""Qwen's smart_resize rule, the RC box (green, scaled, after the portrait rotation), encoding."""

from __future__ import annotations

import pytest
from PIL import Image

from mvbench.errors import InputError
from mvbench.llm.images import (draw_rc_box, resize_frame, hash_bytes, prepare_frame, prepare_rc_frame,
                                smart_resize)

MIN, MAX = 8 * 28 * 28, 48 * 28 * 28


@pytest.mark.parametrize("hw,expected", [
    ((1080, 1920), (140, 252)),
    ((1920, 1080), (252, 140)),
    ((480, 854), (140, 252)),
    ((224, 224), (168, 168)),  # above max: floor after scaling
    ((28, 28), (84, 84)),      # below min: ceil after scaling
    ((100, 100), (112, 112)),
    ((140, 252), (140, 252)),  # already on the grid and in range: unchanged
])
def test_smart_resize_known_sizes(hw, expected):
    assert smart_resize(*hw, min_pixels=MIN, max_pixels=MAX) == expected


def test_smart_resize_default_qwen_budget():
    # Qwen2-VL's defaults (min 56*56, max 28*28*1280): a 1080p frame
    assert smart_resize(1080, 1920, min_pixels=56 * 56, max_pixels=28 * 28 * 1280) == (728, 1316)


def test_smart_resize_invariants():
    # (for aspect ratios where neither side hits the 28-pixel floor, which can exceed max_pixels)
    for h in range(30, 2000, 97):
        for w in range(30, 2000, 89):
            if max(h, w) / min(h, w) > 6:
                continue
            nh, nw = smart_resize(h, w, min_pixels=MIN, max_pixels=MAX)
            assert nh % 28 == 0 and nw % 28 == 0
            assert MIN <= nh * nw <= MAX


def test_smart_resize_rejects_extreme_aspect():
    with pytest.raises(ValueError, match="aspect"):
        smart_resize(10, 3000)


def test_box_is_green_at_its_raw_coordinates_on_the_resized_frame():
    img = resize_frame(Image.new("RGB", (1920, 1080), (255, 255, 255)), MIN, MAX)
    assert img.size == (224, 112)  # the official frame grid (factor 56)
    out = draw_rc_box(img, (60, 40, 120, 100))  # drawn as given, like the official inference
    assert out.getpixel((62, 70)) == (0, 255, 0)     # left edge
    assert out.getpixel((90, 42)) == (0, 255, 0)     # top edge
    assert out.getpixel((90, 70)) == (255, 255, 255)  # inside, past the width-8 outline
    assert out.getpixel((20, 20)) == (255, 255, 255)  # outside


def test_original_pixel_box_is_not_scaled_and_can_fall_off_the_frame():
    img = resize_frame(Image.new("RGB", (854, 480), (255, 255, 255)), MIN, MAX)
    out = draw_rc_box(img, (592, 151, 750, 280))  # a real CholecTrack20 test box
    assert all(out.getpixel((x, y)) == (255, 255, 255) for x in range(out.width) for y in range(out.height))


def test_portrait_frame_is_rotated_270_before_the_box():
    img = resize_frame(Image.new("RGB", (1080, 1920), (255, 255, 255)), MIN, MAX)
    img.paste((255, 0, 0), (0, 0, 30, 30))  # red mark at the top-left
    out = draw_rc_box(img, (0, 0, 10, 10))
    assert out.size == (224, 112)  # 112x224, turned landscape
    # PIL's rotate(270) turns 90 deg clockwise: the top-left goes to the top-right
    r, g, b = out.getpixel((220, 20))
    assert r > 200 and g < 60 and b < 60


def test_bad_box_and_missing_frame_name_the_file(tmp_path):
    p = tmp_path / "start.png"
    Image.new("RGB", (64, 64)).save(p)
    with pytest.raises(InputError, match="start.png"):
        prepare_rc_frame(p, (10, 10, 5, 5), MIN, MAX)
    with pytest.raises(InputError, match="missing.png"):
        prepare_frame(tmp_path / "missing.png", MIN, MAX)


def test_encoding_is_deterministic_and_hash_tracks_content(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("RGB", (320, 240), (1, 2, 3)).save(a)
    Image.new("RGB", (320, 240), (9, 2, 3)).save(b)
    assert hash_bytes(prepare_frame(a, MIN, MAX)) == hash_bytes(prepare_frame(a, MIN, MAX))
    assert hash_bytes(prepare_frame(a, MIN, MAX)) != hash_bytes(prepare_frame(b, MIN, MAX))
