"""Writer prompts: ``prompts/generation/<task>_<variant>.toml`` filled from an :class:`~.enrich.Enrichment`.

Each file holds a ``system`` instruction and a ``user`` template; ``context.toml`` holds the expert
context per source. A request is the system instruction plus one user turn: every frame preceded by
its time (``Frame at 4.0 s:``), then the filled template. Both providers get the same content
(OpenAI ``image_url`` parts, Gemini inline parts), so the two answers differ by model and wording
of the instruction only. The prompt files' versions and hash go into the manifest; their text is in
every request, hence in the cache key and (rendered) in each call's identity.
"""

from __future__ import annotations

from mvbench import prompts
from mvbench.llm.gemini_client import InlineData, Turn
from mvbench.llm.images import jpeg_data_url
from mvbench.tasks.base import fmt_time

from mvbench.generation.enrich import Enrichment, segment_label

TASK_FILES = {"DVC": "dvc", "VS": "vs", "RC": "rc"}
CONTEXT_FILE = "generation/context"
VALIDATOR_FILE = "generation/validator"


def prompt_file(task: str, variant: str) -> str:
    """The prompt file name of a task and writer slot (``generation/dvc_gpt``)."""
    return f"generation/{TASK_FILES[task]}_{variant}"


def prompt_files(tasks: list[str], variants: list[str]) -> list[str]:
    """Every prompt file a run with these tasks and slots reads (the context file included)."""
    return sorted({prompt_file(t, v) for t in tasks for v in variants} | {CONTEXT_FILE})


def prompt_versions(files: list[str]) -> dict[str, str]:
    """``{file: version}`` of prompt files."""
    return {name: str(prompts.load(name)["version"]) for name in files}


def source_context(data_source: str) -> str:
    """The expert context sentence of a source."""
    table = prompts.load(CONTEXT_FILE)["sources"]
    return table.get(data_source, table["default"])


def segments_text(enr: Enrichment) -> str:
    """The DVC segments to caption, one per line (``- 0.0-12.0 s: label``)."""
    lines = []
    for s in enr.segments:
        label = segment_label(s)
        lines.append(f"- {fmt_time(s['start'])}-{fmt_time(s['end'])} s: {label}")
    return "\n".join(lines)


def render(enr: Enrichment, variant: str) -> tuple[str, str]:
    """``(system, user text)`` for one instance and writer slot."""
    spec = prompts.load(prompt_file(enr.task, variant))
    rc = enr.rc or {}
    box_time = fmt_time(rc["position"] / enr.fps) if rc.get("position") is not None else fmt_time(rc.get("start", 0))
    fields = {
        "context": source_context(enr.data_source), "question": enr.question,
        "duration": fmt_time(enr.duration_s), "n_frames": len(enr.frames),
        "annotations": "\n".join(enr.annotation_lines) or "- none in this clip",
        "frame_notes": enr.frame_notes(), "segments": segments_text(enr),
        "steps": ", then ".join(enr.steps) or "as annotated",
        "object": rc.get("object", "object"), "box_time": box_time,
        "start": fmt_time(rc.get("start", 0.0)), "end": fmt_time(rc.get("end", enr.duration_s)),
    }
    return spec["system"].strip(), spec["user"].format(**fields).strip()


def expected_output_tokens(enr: Enrichment, variant: str) -> int:
    """The output tokens a typical answer takes (the prompt file's estimate), for cost estimates."""
    spec = prompts.load(prompt_file(enr.task, variant))
    if enr.task == "DVC":
        return 10 + int(spec["expected_output_tokens_per_segment"]) * max(1, len(enr.segments))
    return int(spec["expected_output_tokens"])


def frame_label(t_rel: float) -> str:
    return f"Frame at {fmt_time(t_rel)} s:"


def openai_messages(system: str, user: str, frames: list[tuple[float, bytes]], detail: str) -> list[dict]:
    """Chat messages: the system instruction, then one user turn of timed frames and the text."""
    content: list[dict] = []
    for t_rel, jpeg in frames:
        content.append({"type": "text", "text": frame_label(t_rel)})
        content.append({"type": "image_url", "image_url": {"url": jpeg_data_url(jpeg), "detail": detail}})
    content.append({"type": "text", "text": user})
    return [{"role": "system", "content": system}, {"role": "user", "content": content}]


def gemini_turns(user: str, frames: list[tuple[float, bytes]]) -> list[Turn]:
    """One user turn of timed frames and the text (the system instruction goes separately)."""
    parts: list = []
    for t_rel, jpeg in frames:
        parts.append(frame_label(t_rel))
        parts.append(InlineData(jpeg, "image/jpeg"))
    parts.append(user)
    return [Turn("user", tuple(parts))]


def validator_text(enr: Enrichment, answer_a: str, answer_b: str) -> tuple[str, str]:
    """``(system, user)`` of the optional LLM validator for one pair."""
    spec = prompts.load(VALIDATOR_FILE)
    user = spec["user"].format(context=source_context(enr.data_source),
                               annotations="\n".join(enr.annotation_lines) or "- none",
                               question=enr.question, answer_a=answer_a, answer_b=answer_b)
    return spec["system"].strip(), user.strip()
