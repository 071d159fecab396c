"""Supervised fine-tuning with TRL's ``SFTTrainer``, frames fed as one video.

TRL 1.16's ``SFTTrainer`` has no video path (its vision collator reads ``image``/``images``), so
:class:`VideoSFTCollator` builds the batch itself through :mod:`mvbench.qwen_inputs`, the
definition ``mvbench eval`` uses: the prompt tokens of a training example are exactly the
evaluation request's (same messages, frame resize, video grid, ``second_per_grid_ts`` and
``mm_token_type_ids``), followed by the reference answer and the end-of-turn token. Only the
answer tokens carry labels (completion-only loss). The trainer runs with
``remove_unused_columns=False``, ``dataset_kwargs={"skip_prepare_dataset": True}`` and
``max_length=None`` (TRL would otherwise tokenise text-only and could cut inside a video).
"""

from __future__ import annotations

import logging
from typing import Any

from mvbench import qwen_inputs
from mvbench.errors import InputError
from mvbench.inference import GenerationParams
from mvbench.training.data import SampleInputs

log = logging.getLogger(__name__)

IGNORE_INDEX = -100


class VideoSFTCollator:
    """Rows ``{uid, prompt, answer}`` → model inputs with completion-only labels.

    Args:
        processor: the checkpoint's processor (:func:`mvbench.qwen_inputs.load_processor`).
        inputs: loads each sample's request and frames.
        params: pixel budget and video timing.
        max_length: refuse (naming the sample) a sequence longer than this; None accepts all.
    """

    def __init__(self, processor: Any, inputs: SampleInputs, params: GenerationParams, max_length: int | None = None):
        self.processor = processor
        self.inputs = inputs
        self.params = params
        self.max_length = max_length

    def __call__(self, rows: list[dict]) -> dict:
        proc = self.processor
        uids = [r["uid"] for r in rows]
        loaded = self.inputs.load_many(uids)
        videos, record_fps = [loaded[u].frames for u in uids], [loaded[u].fps for u in uids]
        prompts, fulls = [], []
        for row in rows:
            prompts.append(qwen_inputs.prompt_text(proc, row["prompt"]))
            fulls.append(qwen_inputs.answer_text(proc, row["prompt"], row["answer"]))
        batch = qwen_inputs.processor_inputs(
            proc, fulls, params=self.params, videos=videos, record_fps=record_fps, padding=True,
            padding_side="right")
        labels = batch["input_ids"].clone()
        labels[batch["attention_mask"] == 0] = IGNORE_INDEX
        if qwen_inputs.is_frames_processor(proc):
            merge = proc.image_processor.merge_size ** 2
            video_tokens = (batch["video_grid_thw"].prod(-1) // merge).tolist()
            prompt_lengths = [expanded_prompt_length(proc, p, f, n) for p, f, n in zip(prompts, fulls, video_tokens)]
        else:  # stock processors (Qwen3-VL) add per-frame timestamp text: expand the prompts themselves
            prompt_lengths = [len(ids) for ids in qwen_inputs.processor_inputs(
                proc, prompts, params=self.params, videos=videos, record_fps=record_fps,
                return_tensors=None)["input_ids"]]
        for i, n_prompt in enumerate(prompt_lengths):
            labels[i, :n_prompt] = IGNORE_INDEX
            if self.max_length is not None and int(batch["attention_mask"][i].sum()) > self.max_length:
                raise InputError(f"example has {int(batch['attention_mask'][i].sum())} tokens > sft.max_length "
                                 f"{self.max_length} (a cut would split the video): raise max_length or lower "
                                 "video.max_pixels", record=uids[i])
        out = {k: batch[k] for k in ("input_ids", "attention_mask", "mm_token_type_ids", *qwen_inputs.VIDEO_KEYS)
               if k in batch}
        out["labels"] = labels
        return out


def expanded_prompt_length(processor: Any, prompt: str, full: str, video_tokens: int) -> int:
    """Tokens of the processor-expanded prompt inside the expanded ``full`` text.

    Counted from the unexpanded texts (no second patchify): the prompt's ids plus, for its one
    video, ``video_tokens − 1`` extra placeholder ids.

    Raises:
        InputError: the prompt's ids are not a prefix of the full text's (a tokenisation that
            merges across the end of the prompt would misplace the labels).
    """
    prompt_ids = qwen_inputs.unexpanded_ids(processor, prompt)
    full_ids = qwen_inputs.unexpanded_ids(processor, full)
    if full_ids[:len(prompt_ids)] != prompt_ids:
        raise InputError("the answer's first token merges with the prompt's last: labels cannot be placed")
    if prompt_ids.count(processor.video_token_id) != 1:
        raise InputError(f"expected one video placeholder in the prompt, found {prompt_ids.count(processor.video_token_id)}")
    return len(prompt_ids) + video_tokens - 1


def sft_trainer(model: Any, processor: Any, dataset: Any, inputs: SampleInputs, params: GenerationParams,
                args: Any, max_length: int | None = None, peft_config: Any = None, callbacks: list | None = None):
    """A TRL ``SFTTrainer`` fed through :class:`VideoSFTCollator` (plus the resume fix of
    :mod:`mvbench.training.resume`).

    Args:
        model: the loaded model.
        processor: its processor.
        dataset: rows from :mod:`mvbench.training.data`.
        inputs / params: frames and video inputs.
        args: an ``SFTConfig`` (``remove_unused_columns``, ``skip_prepare_dataset`` and
            ``max_length`` are set here).
        max_length: see :class:`VideoSFTCollator`.
        peft_config: a ``peft.LoraConfig`` for LoRA.
        callbacks: extra trainer callbacks.
    """
    from trl import SFTTrainer

    from mvbench.training.resume import ResumeFromPretrained

    class VideoSFTTrainer(ResumeFromPretrained, SFTTrainer):
        pass

    args.remove_unused_columns = False
    args.dataset_kwargs = {**(args.dataset_kwargs or {}), "skip_prepare_dataset": True}
    args.max_length = None
    return VideoSFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor,
                      data_collator=VideoSFTCollator(processor, inputs, params, max_length), peft_config=peft_config,
                      callbacks=callbacks)
