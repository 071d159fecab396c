"""Turn a record into a :class:`GenerationRequest`: the question, its frames, the RC box, one-shot examples."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from mvbench.eval.backends.base import GenerationParams, GenerationRequest
from mvbench.eval.data import FrameResolver
from mvbench.records import Record

ONESHOT_FILE = "oneshot/medvidbench_oneshot_examples.json"


@cache
def oneshot_examples() -> dict[str, dict[str, str]]:
    """The official one-shot examples, one question/answer pair per qa_type."""
    text = resources.files("mvbench.prompts").joinpath(ONESHOT_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def oneshot_for(qa_type: str) -> tuple[str, str] | None:
    """The example for a qa_type; unsuffixed caption forms take the ``_gpt`` example."""
    table = oneshot_examples()
    ex = table.get(qa_type) or table.get(f"{qa_type}_gpt")
    return (ex["question"], ex["answer"]) if ex else None


def build_request(record: Record, resolver: FrameResolver, params: GenerationParams,
                  prompt_mode: str = "zeroshot") -> GenerationRequest:
    """The request for one record.

    Args:
        record: the sample.
        resolver: finds its frames on disk (InputError naming the sample if one is missing).
        params: decoding and vision settings.
        prompt_mode: ``zeroshot`` (default) or ``oneshot`` (one worked example of the same qa_type
            first, as the official one-shot inference for models not tuned on the benchmark).
    """
    frames = tuple(str(resolver.resolve(f, record.uid)) for f in record.video)
    rc_frame = rc_box = None
    if record.is_RC and record.RC_info:
        rc_frame = str(resolver.resolve(record.RC_info["start_frame"], record.uid))
        rc_box = tuple(float(v) for v in record.RC_info["start_frame_bbox"])
    examples: tuple[tuple[str, str], ...] = ()
    if prompt_mode == "oneshot":
        ex = oneshot_for(record.qa_type)
        examples = (ex,) if ex else ()
    elif prompt_mode != "zeroshot":
        raise ValueError(f"prompt_mode must be 'zeroshot' or 'oneshot', not {prompt_mode!r}")
    return GenerationRequest(uid=record.uid, prompt=record.question, frames=frames, fps=record.fps or 1.0,
                             rc_frame=rc_frame, rc_box=rc_box, examples=examples, params=params,
                             qa_type=record.qa_type)
