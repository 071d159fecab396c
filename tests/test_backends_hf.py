"""HFBackend with the tiny random Qwen2.5-VL: video, image-list and RC requests, greedy determinism."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from mvbench.eval.backends.base import Backend, GenerationParams, GenerationRequest
from mvbench.eval.backends.hf_backend import HFBackend
from PIL import Image

from mvbench.errors import InputError, ServerError
from mvbench.testing import build_tiny_qwen2_5_vl


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-vl")
    build_tiny_qwen2_5_vl(directory, seed=0)
    hf = HFBackend(directory)
    yield hf
    asyncio.run(hf.aclose())


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> tuple[str, ...]:
    directory = tmp_path_factory.mktemp("frames")
    paths = []
    for i in range(5):
        path = directory / f"{i:06d}.jpg"
        pixels = np.random.RandomState(i).randint(0, 255, (270, 480, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    return tuple(paths)


def _request(frames, uid="s1", **params) -> GenerationRequest:
    return GenerationRequest(uid=uid, prompt="What happens next?", frames=frames, fps=1.0,
                             params=GenerationParams(max_tokens=8, **params))


def _answer(backend, request) -> str:
    return asyncio.run(backend.generate(request))


def test_is_a_backend(backend):
    assert isinstance(backend, Backend)
    fingerprint = backend.fingerprint()
    assert fingerprint["backend"] == "hf" and fingerprint["dtype"] == "float32"
    assert len(fingerprint["revision"]) == 16


def test_the_revision_changes_with_the_weights_in_the_same_folder(tmp_path):
    model = tmp_path / "final"
    build_tiny_qwen2_5_vl(model, seed=0)
    first = HFBackend(model).fingerprint()["revision"]
    assert HFBackend(model).fingerprint()["revision"] == first
    # A rerun into the same OUT: other weights, same file names and sizes (and here even the old time).
    build_tiny_qwen2_5_vl(tmp_path / "retrained", seed=1)
    weights = model / "model.safetensors"
    before = weights.stat()
    shutil.copyfile(tmp_path / "retrained" / "model.safetensors", weights)
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert weights.stat().st_size == before.st_size and weights.stat().st_mtime_ns == before.st_mtime_ns
    assert HFBackend(model).fingerprint()["revision"] != first
    # The same bytes written again (another time): conservatively another revision, never a stale hit.
    shutil.copyfile(tmp_path / "retrained" / "model.safetensors", weights)
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
    assert HFBackend(model).fingerprint()["revision"] != first


def test_video_request_encodes_frames_as_one_video(backend, frames):
    inputs = backend.encode(_request(frames))
    # 5 frames padded to 6 -> 3 temporal patches; 270x480 under 48*28*28 pixels on the official
    # frame grid (56) -> 112x224.
    assert inputs["video_grid_thw"].tolist() == [[3, 8, 16]]
    # Temporal positions as the leaderboard's runs: 2 fps whatever the record's rate (1 fps here).
    assert inputs["second_per_grid_ts"].tolist() == [1.0]
    assert "pixel_values" not in inputs
    n_video_tokens = int((inputs["input_ids"] == backend._processor.video_token_id).sum())
    assert n_video_tokens == 3 * 8 * 16 // 4


def test_inputs_carry_mm_token_type_ids_and_they_change_the_positions(backend, frames):
    import torch

    inputs = backend.encode(_request(frames))
    ids, types = inputs["input_ids"], inputs["mm_token_type_ids"]
    assert torch.equal(types == 2, ids == backend._processor.video_token_id) and not (types == 1).any()
    # Without them transformers 5.x silently uses 1-D positions: the same forward gives other logits.
    with torch.no_grad():
        with_types = backend._model(**inputs).logits
        without = backend._model(**{k: v for k, v in inputs.items() if k != "mm_token_type_ids"}).logits
    assert not torch.allclose(with_types, without)


def test_record_video_timing_uses_the_records_own_fps(backend, frames):
    request = _request(frames)
    official = backend.encode(request)
    timed = backend.encode(replace(request, fps=0.5, params=replace(request.params, video_timing="record")))
    assert timed["second_per_grid_ts"].tolist() == [4.0]  # temporal patch of 2 frames at 0.5 fps
    assert official["input_ids"].tolist() == timed["input_ids"].tolist()  # same tokens, other positions


def test_pixel_budget_follows_the_request(backend, frames):
    small = backend.encode(_request(frames, max_pixels=8 * 28 * 28, min_pixels=4 * 28 * 28))
    # 270x480 with at most 6272 pixels on the official frame grid (56): 56x56 -> a 4x4 patch grid.
    assert small["video_grid_thw"].tolist() == [[3, 4, 4]]


def test_image_list_request_encodes_each_frame(backend, frames):
    inputs = backend.encode(_request(frames, frames_as="images"))
    assert inputs["image_grid_thw"].tolist() == [[1, 8, 16]] * 5
    assert "pixel_values_videos" not in inputs


def test_rc_request_boxes_the_start_frame_inside_the_video(backend, frames):
    request = GenerationRequest(uid="rc", prompt="Describe the boxed object.", frames=frames,
                                rc_frame=frames[0], rc_box=(10.0, 10.0, 200.0, 120.0),
                                params=GenerationParams(max_tokens=8))
    inputs = backend.encode(request)
    assert "image_grid_thw" not in inputs  # no extra image: the box is drawn on the video's frame
    plain = backend.encode(_request(frames))
    assert inputs["video_grid_thw"].tolist() == plain["video_grid_thw"].tolist()
    assert not np.allclose(inputs["pixel_values_videos"].numpy(), plain["pixel_values_videos"].numpy())
    answer = _answer(backend, request)
    assert isinstance(answer, str) and answer == _answer(backend, request)


def test_greedy_answers_are_deterministic_and_new_text_only(backend, frames):
    video = _answer(backend, _request(frames))
    assert video == _answer(backend, _request(frames))
    assert "What happens next?" not in video and "<|im_start|>" not in video
    images = _answer(backend, _request(frames, frames_as="images"))
    assert images == _answer(backend, _request(frames, frames_as="images"))


def test_generation_is_greedy_and_capped_at_max_tokens(backend, frames, monkeypatch):
    seen = {}
    real_generate = backend._model.generate

    def spy(**kwargs):
        out = real_generate(**kwargs)
        seen.update(kwargs, new=out.shape[1] - kwargs["input_ids"].shape[1])
        return out

    monkeypatch.setattr(backend._model, "generate", spy)
    _answer(backend, _request(frames))
    assert seen["do_sample"] is False and seen["max_new_tokens"] == 8
    assert "mm_token_type_ids" in seen and "second_per_grid_ts" in seen  # 3-D positions in generate too
    assert 0 < seen["new"] <= 8


def test_concurrent_requests_match_sequential(backend, frames):
    async def both():
        return await asyncio.gather(backend.generate(_request(frames, uid="a")),
                                    backend.generate(_request(frames[:2], uid="b")))

    first, second = asyncio.run(both())
    assert first == _answer(backend, _request(frames, uid="a"))
    assert second == _answer(backend, _request(frames[:2], uid="b"))


def test_missing_frame_is_an_input_error_naming_it(backend, frames, tmp_path):
    missing = str(tmp_path / "nope.jpg")
    with pytest.raises(InputError) as err:
        _answer(backend, _request(frames[:2] + (missing,)))
    assert missing in str(err.value)


def test_model_failure_is_a_server_error_naming_the_sample(backend, frames, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(backend._model, "generate", broken)
    with pytest.raises(ServerError, match=r"\[s-broken\].*out of memory"):
        _answer(backend, _request(frames, uid="s-broken"))


def test_rejects_non_qwen2_5_vl_directories(tmp_path):
    with pytest.raises(InputError, match="no config.json"):
        HFBackend(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(InputError, match="model_type 'llama'"):
        HFBackend(Path(tmp_path))
