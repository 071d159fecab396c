"""The SFT collator: a training example is the eval request's tokens plus the answer, labels on the answer only."""

from __future__ import annotations

import asyncio

import pytest
import torch

from mvbench import qwen_inputs
from mvbench.errors import InputError
from mvbench.eval.backends.hf_backend import HFBackend
from mvbench.eval.requests import build_request
from mvbench.inference import GenerationParams
from mvbench.training.data import load_training_data
from mvbench.training.sft import IGNORE_INDEX, VideoSFTCollator
from mvbench.training.smoke import smoke_model
from tests.training_helpers import build_fixture_dataset


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    params = GenerationParams()
    data = load_training_data(build_fixture_dataset(root), stage="sft", params=params)
    model_dir = smoke_model(root)
    return data, model_dir, params, qwen_inputs.load_processor(model_dir)


def test_a_training_example_has_the_eval_requests_token_layout_then_the_answer(setup):
    data, model_dir, params, processor = setup
    rows = data.dataset()
    picks = [next(i for i, r in enumerate(data.records) if r.task == t) for t in ("RC", "STG", "NAP")]
    batch = VideoSFTCollator(processor, data.inputs, params)([dict(rows[i]) for i in picks])
    assert set(batch) == {"input_ids", "attention_mask", "labels", "mm_token_type_ids", *qwen_inputs.VIDEO_KEYS}
    backend = HFBackend(model_dir)
    offset = 0
    try:
        for b, i in enumerate(picks):
            record = data.records[i]
            want = backend.encode(build_request(record, data.inputs.resolver, params))
            n = want["input_ids"].shape[1]
            assert batch["input_ids"][b, :n].tolist() == want["input_ids"][0].tolist(), record.uid
            assert torch.equal(batch["mm_token_type_ids"][b, :n], want["mm_token_type_ids"][0])
            assert batch["video_grid_thw"][b].tolist() == want["video_grid_thw"][0].tolist()
            assert batch["second_per_grid_ts"][b].item() == want["second_per_grid_ts"][0].item() == 1.0
            rows_b = int(want["video_grid_thw"][0].prod())
            assert torch.equal(batch["pixel_values_videos"][offset:offset + rows_b], want["pixel_values_videos"])
            offset += rows_b
            labels = batch["labels"][b]
            assert (labels[:n] == IGNORE_INDEX).all()  # completion-only loss
            length = int(batch["attention_mask"][b].sum())
            answer = processor.tokenizer.decode(labels[n:length], skip_special_tokens=False)
            assert answer.startswith(record.answer) and answer[len(record.answer):].startswith("<|im_end|>")
            assert (labels[length:] == IGNORE_INDEX).all()
    finally:
        asyncio.run(backend.aclose())


def test_a_too_long_example_is_refused_by_name_never_cut(setup):
    data, _, params, processor = setup
    row = dict(data.dataset()[0])
    with pytest.raises(InputError, match="tokens > sft.max_length 16"):
        VideoSFTCollator(processor, data.inputs, params, max_length=16)([row])


def test_a_batch_builds_each_samples_request_once(setup, monkeypatch):
    from mvbench.training import data as data_module

    data, _, params, processor = setup
    built = []
    real = data_module.build_request
    monkeypatch.setattr(data_module, "build_request", lambda record, *a, **k: built.append(record.uid) or
                        real(record, *a, **k))
    rows = data.dataset()
    picks = [0, 0, 1, 2]  # one sample twice: decoded once
    batch = VideoSFTCollator(processor, data.inputs, params)([dict(rows[i]) for i in picks])
    assert batch["input_ids"].shape[0] == 4
    assert sorted(built) == sorted({data.records[i].uid for i in picks})  # frame paths resolved once per sample
