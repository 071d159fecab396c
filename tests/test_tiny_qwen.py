"""The tiny in-code Qwen fixtures: tokenizer, Qwen2.5-VL and Qwen2 text model, offline reloads."""

from __future__ import annotations

import pytest
import torch

from mvbench.testing import SPECIAL_TOKENS, build_tiny_qwen2_5_vl, build_tiny_qwen2_text, build_tiny_tokenizer


@pytest.fixture(scope="module")
def vl_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-vl")
    build_tiny_qwen2_5_vl(directory, seed=0)
    return directory


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def test_tokenizer_special_tokens_round_trip_and_chat_template(tmp_path):
    from transformers import AutoTokenizer

    build_tiny_tokenizer(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    ids = [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]
    assert ids == list(range(len(SPECIAL_TOKENS)))
    text = "The grasper retracts the gallbladder at 12.5 seconds."
    assert tok.decode(tok(text)["input_ids"]) == text
    assert tok("<|video_pad|><|image_pad|>")["input_ids"] == [6, 5]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    rendered = tok.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What next?"}]},
         {"role": "assistant", "content": "Clipping."}],
        tokenize=False)
    assert rendered == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>What next?<|im_end|>\n"
        "<|im_start|>assistant\nClipping.<|im_end|>\n")
    with_system = tok.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        tokenize=False, add_generation_prompt=True)
    assert with_system == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                           "<|im_start|>assistant\n")


def test_tiny_vl_config_shapes(vl_dir):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(vl_dir)
    text = config.text_config
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads) == (64, 2, 4)
    assert sum(text.rope_parameters["mrope_section"]) == text.hidden_size // text.num_attention_heads // 2
    assert (config.vision_config.depth, config.vision_config.hidden_size) == (2, 32)
    assert config.video_token_id == 6 and config.image_token_id == 5
    assert (vl_dir / "preprocessor_config.json").is_file()


def test_tiny_vl_is_deterministic_from_seed(vl_dir, tmp_path):
    from transformers import Qwen2_5_VLForConditionalGeneration

    reloaded = Qwen2_5_VLForConditionalGeneration.from_pretrained(vl_dir)
    same = build_tiny_qwen2_5_vl(tmp_path / "same", seed=0)
    other = build_tiny_qwen2_5_vl(tmp_path / "other", seed=1)
    reference = reloaded.state_dict()
    assert all(torch.equal(reference[k], v) for k, v in same.state_dict().items())
    assert not all(torch.equal(reference[k], v) for k, v in other.state_dict().items())


def test_tiny_vl_offline_reload_generates_with_an_image(vl_dir):
    import numpy as np
    from PIL import Image
    from transformers import Qwen2_5_VLForConditionalGeneration

    from mvbench.qwen_inputs import load_frames_processor

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(vl_dir).eval()
    processor = load_frames_processor(vl_dir)
    image = Image.fromarray(np.random.RandomState(0).randint(0, 255, (120, 160, 3), dtype=np.uint8))
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is shown?"}]}],
        tokenize=False, add_generation_prompt=True)
    inputs = processor(images=[image], text=[text], return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    again = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1]:]
    assert 0 < len(new) <= 6
    assert torch.equal(out, again)


def test_tiny_qwen2_text_model(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    built = build_tiny_qwen2_text(tmp_path)
    assert built.config.hidden_size // built.config.num_attention_heads == 64
    model = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    tok = AutoTokenizer.from_pretrained(tmp_path)
    inputs = tok.apply_chat_template([{"role": "user", "content": "What happens next?"}],
                                     add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]
    assert torch.equal(out, built.generate(**inputs, max_new_tokens=5, do_sample=False))
