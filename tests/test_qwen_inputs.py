"""mvbench.qwen_inputs: the one definition of model inputs that eval and training share."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mvbench import qwen_inputs
from mvbench.errors import InputError
from mvbench.inference import GenerationParams
from mvbench.testing import build_tiny_qwen2_5_vl
from tests.training_helpers import assert_stock_processor_layout


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-vl")
    build_tiny_qwen2_5_vl(directory, seed=0)
    return directory


def _frames(n: int, size=(168, 112), seed=0) -> list[Image.Image]:
    rng = np.random.RandomState(seed)
    return [Image.fromarray(rng.randint(0, 255, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(n)]


def test_a_static_video_patchifies_exactly_as_the_image_processor():
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

    frame = _frames(1)[0]
    flat, grid = qwen_inputs.video_patches([frame, frame], max_pixels=48 * 28 * 28, min_pixels=8 * 28 * 28)
    image = Qwen2VLImageProcessorPil(max_pixels=48 * 28 * 28, min_pixels=8 * 28 * 28)(frame, return_tensors="np")
    assert grid == image["image_grid_thw"][0].tolist()
    assert np.array_equal(flat, image["pixel_values"])


def test_messages_keep_to_type_and_text_and_the_answer_follows_the_prompt(model_dir):
    processor = qwen_inputs.load_frames_processor(model_dir)
    messages = qwen_inputs.chat_messages("What happens next?")
    assert all(set(part) == {"type", "text"} for part in messages[-1]["content"])
    prompt = qwen_inputs.prompt_text(processor, messages)
    full = qwen_inputs.answer_text(processor, messages, "Clipping.")
    assert prompt.count(qwen_inputs.VIDEO_TOKEN) == 1 and full.startswith(prompt) and full[len(prompt):].startswith("Clipping.")
    with pytest.raises(ValueError, match="frames_as"):
        qwen_inputs.chat_messages("x", frames_as="gif")


def test_one_call_gives_grid_positions_and_token_types(model_dir):
    processor = qwen_inputs.load_frames_processor(model_dir)
    params = GenerationParams()
    enc = qwen_inputs.encode(processor, qwen_inputs.chat_messages("q"), _frames(5), params=params, record_fps=0.5)
    assert enc["video_grid_thw"].tolist() == [[3, 8, 12]]  # 5 frames padded to 6; 112x168 px in 14-px patches
    assert enc["second_per_grid_ts"].tolist() == [1.0]   # official timing: 2 fps whatever the record's rate
    ids, types = enc["input_ids"], enc["mm_token_type_ids"]
    assert int((ids == processor.video_token_id).sum()) == 3 * 8 * 12 // 4
    assert torch.equal(types, qwen_inputs.mm_token_type_ids(ids, image_token_id=processor.image_token_id,
                                                            video_token_id=processor.video_token_id))
    record = qwen_inputs.encode(processor, qwen_inputs.chat_messages("q"), _frames(5),
                                params=GenerationParams(video_timing="record"), record_fps=0.5)
    assert record["second_per_grid_ts"].tolist() == [4.0]


def test_token_types_for_lists_arrays_and_tensors():
    ids = [[5, 6, 6, 7]]
    assert qwen_inputs.mm_token_type_ids(ids, image_token_id=5, video_token_id=6) == [[1, 2, 2, 0]]
    assert qwen_inputs.mm_token_type_ids(np.array(ids), image_token_id=5, video_token_id=6).tolist() == [[1, 2, 2, 0]]
    assert qwen_inputs.mm_token_type_ids(torch.tensor(ids), image_token_id=5, video_token_id=6).tolist() == [[1, 2, 2, 0]]


def test_a_saved_processor_is_stock_loadable_and_reloads_to_the_same_inputs(model_dir, tmp_path):
    processor = qwen_inputs.load_frames_processor(model_dir)
    processor.save_pretrained(tmp_path)  # what every training checkpoint and OUT/final hold
    assert_stock_processor_layout(tmp_path)
    for name in ("config.json",):
        (tmp_path / name).write_text((model_dir / name).read_text())
    reloaded = qwen_inputs.load_processor(tmp_path)
    assert qwen_inputs.is_frames_processor(reloaded)
    frames, messages, params = _frames(4), qwen_inputs.chat_messages("q"), GenerationParams()
    a = qwen_inputs.encode(processor, messages, frames, params=params, record_fps=1.0)
    b = qwen_inputs.encode(reloaded, messages, frames, params=params, record_fps=1.0)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_frames_are_resized_on_the_official_grid_and_the_rc_box_is_checked(tmp_path):
    paths = []
    for i, frame in enumerate(_frames(2, size=(854, 480))):
        paths.append(str(tmp_path / f"{i}.jpg"))
        frame.save(paths[-1])
    frames = qwen_inputs.load_frames(paths, min_pixels=8 * 28 * 28, max_pixels=48 * 28 * 28)
    assert [f.size for f in frames] == [(224, 112), (224, 112)]
    boxed = qwen_inputs.load_frames(paths, min_pixels=8 * 28 * 28, max_pixels=48 * 28 * 28, rc_frame=paths[1],
                                    rc_box=[10, 10, 60, 60])
    assert np.array_equal(np.asarray(boxed[0]), np.asarray(frames[0]))
    assert not np.array_equal(np.asarray(boxed[1]), np.asarray(frames[1]))
    with pytest.raises(InputError, match="out of order"):
        qwen_inputs.load_frames(paths, min_pixels=8 * 28 * 28, max_pixels=48 * 28 * 28, rc_frame=paths[0],
                                rc_box=[60, 60, 10, 10], uid="s1")
    with pytest.raises(InputError, match="no frames"):
        qwen_inputs.load_frames([], min_pixels=1, max_pixels=2)
