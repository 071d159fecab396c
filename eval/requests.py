"""Turn a record into a :class:`GenerationRequest`: the question, its frames, the RC box, one-shot examples."""

from __future__ import annotations

import json
import random
from functools import cache
from importlib import resources

from mvbench import prompts
from mvbench.errors import InputError
from mvbench.eval.backends.base import GenerationParams, GenerationRequest
from mvbench.inference import FALLBACK_FPS
from mvbench.eval.data import FrameResolver
from mvbench.records import Record

ONESHOT_FILE = "oneshot/medvidbench_oneshot_examples.json"


@cache
def oneshot_examples() -> dict[str, dict[str, str]]:
    """The official one-shot examples, one question/answer pair per qa_type."""
    text = resources.files("mvbench.prompts").joinpath(ONESHOT_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def oneshot_for(qa_type: str, index: int = 0) -> tuple[str, str] | None:
    """The example for a qa_type, as the official one-shot inference picks it.

    CVS gets a synthetic example whose three scores come from ``random.Random(index)`` (``index`` is
    the sample's position in the evaluated file); unsuffixed caption forms take the ``_gpt`` example.

    >>> oneshot_for("next_action")[1]
    'tying'
    >>> oneshot_for("cvs_assessment", 3) == oneshot_for("cvs_assessment", 3)
    True
    """
    if qa_type == "cvs_assessment":
        spec = prompts.load("oneshot/oneshot")
        rng = random.Random(index)
        a, b, c = rng.randint(0, 2), rng.randint(0, 2), rng.randint(0, 2)
        return spec["cvs_question"], spec["cvs_answer"].format(a=a, b=b, c=c)
    table = oneshot_examples()
    ex = table.get(qa_type) or table.get(f"{qa_type}_gpt")
    return (ex["question"], ex["answer"]) if ex else None


def oneshot_system(qa_type: str, index: int = 0) -> str | None:
    """The official one-shot system instruction for a sample, or None if its qa_type has no example."""
    ex = oneshot_for(qa_type, index)
    if ex is None:
        return None
    return prompts.load("oneshot/oneshot")["system"].format(question=ex[0], answer=ex[1])


def build_request(record: Record, resolver: FrameResolver, params: GenerationParams,
                  prompt_mode: str = "zeroshot", index: int = 0) -> GenerationRequest:
    """The request for one record.

    Args:
        record: the sample.
        resolver: finds its frames on disk (InputError naming the sample if one is missing).
        params: decoding and vision settings.
        prompt_mode: ``zeroshot`` (default) or ``oneshot``: one worked example of the same qa_type
            in a system instruction, as the official one-shot inference for models not tuned on the
            benchmark.
        index: the sample's position in the evaluated file (seeds the synthetic CVS example).
    """
    box = (record.RC_info or {}).get("start_frame_bbox")
    if record.is_RC and record.RC_info and (not isinstance(record.RC_info.get("start_frame"), str) or not (
            isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box))):
        raise InputError("is_RC is true but RC_info needs start_frame (a frame path) and start_frame_bbox "
                         "([x1, y1, x2, y2])", record=record.uid)
    frames = tuple(str(resolver.resolve(f, record.uid)) for f in record.video)
    rc_frame = rc_box = None
    if record.is_RC and record.RC_info:
        info = record.RC_info
        rc_frame = str(resolver.resolve(info["start_frame"], record.uid))
        rc_box = tuple(float(v) for v in box)
    system = None
    if prompt_mode == "oneshot":
        system = oneshot_system(record.qa_type, index)
    elif prompt_mode != "zeroshot":
        raise ValueError(f"prompt_mode must be 'zeroshot' or 'oneshot', not {prompt_mode!r}")
    return GenerationRequest(uid=record.uid, prompt=record.question, frames=frames, fps=record.fps or FALLBACK_FPS,
                             rc_frame=rc_frame, rc_box=rc_box, system=system, params=params,
                             qa_type=record.qa_type)
