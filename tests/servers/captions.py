"""Deterministic, plausible caption answers for the fake servers, read off a generation prompt.

``mvbench generate`` prompts list the clip's annotations (``- phase: 0.0-12.0 s: preparation``),
the DVC segments to caption, the RC object and the clip length. These responders write answers a
careful model would: one line per DVC segment with its times and label, a VS paragraph naming the
steps in order, an RC sentence naming the object, in two slightly different styles (``gpt`` and
``gemini``), so that the validation accepts them. :func:`off_topic` answers something unrelated
(rejected for disagreement and missing mentions).
"""

from __future__ import annotations

import re

from .fake_gemini import last_user_text as gemini_text
from .fake_openai import last_user_text as openai_text

_SEGMENT = re.compile(r"^- (\d+(?:\.\d+)?)-(\d+(?:\.\d+)?) s: (.+)$", re.MULTILINE)
_EVENT = re.compile(r"^- ([a-z_ ]+): (\d+(?:\.\d+)?)-(\d+(?:\.\d+)?) s: (.+)$", re.MULTILINE)
_TRACKED = re.compile(r"^- tracked: (.+)$", re.MULTILINE)
_OBJECT = re.compile(r"(?:it holds the|The object in question is the) ([^,.]+?)(?:[.,]| inside)")
_PROCEDURE = re.compile(r"^- procedure: (.+)$", re.MULTILINE)


def _tools(text: str) -> str:
    m = _TRACKED.search(text)
    return m.group(1) if m else "instruments"


def _procedure(text: str) -> str:
    m = _PROCEDURE.search(text)
    return m.group(1) if m else "procedure"


def caption_for(text: str, style: str) -> str:
    """A plausible answer to a generation prompt ``text`` in the ``gpt`` or ``gemini`` style."""
    tools = _tools(text)
    if "Segments" in text and "seconds:" in text:
        block = text[text.rindex("Segments"):]
        lines = []
        for a, b, label in _SEGMENT.findall(block):
            if style == "gemini":
                lines.append(f"{a}-{b} seconds: {label}: The {tools} are used for {label} on the exposed tissue "
                             f"while the operator keeps the field clear and steady.")
            else:
                lines.append(f"{a}-{b} seconds: During {label}, the {tools} work on the exposed tissue while "
                             f"the operator keeps the view clear and steady.")
        return "\n".join(lines)
    obj = _OBJECT.search(text)
    if obj:
        name = obj.group(1).strip()
        if style == "gemini":
            return f"The {name} stays in the field and is used to hold and move the nearby tissue steadily."
        return f"The {name} holds and moves the nearby tissue steadily while staying in the field."
    events = _EVENT.findall(text)
    kinds = [k for k, *_ in events if k not in ("procedure", "tracked")]
    main = kinds[0] if kinds else None
    steps = list(dict.fromkeys(label for k, _, _, label in events if k == main))
    seq = ", then ".join(steps) or "the annotated steps"
    if style == "gemini":
        return (f"This clip of a {_procedure(text)} shows {seq}. The {tools} are handled with care as the team "
                f"works through each step in order, keeping the field exposed and the tissue under control.")
    return (f"The clip shows part of a {_procedure(text)}: {seq}. The team uses the {tools} to work through "
            f"each step in order while keeping the field exposed and the tissue under control.")


def openai_captions(body: dict) -> str:
    """``respond`` for :class:`~tests.servers.fake_openai.FakeOpenAIServer` (the GPT style)."""
    return caption_for(openai_text(body), "gpt")


def gemini_captions(body: dict) -> str:
    """``respond`` for :class:`~tests.servers.fake_gemini.FakeGeminiServer` (the Gemini style)."""
    return caption_for(gemini_text(body), "gemini")


def off_topic(body: dict) -> str:
    """An answer that has nothing to do with the clip."""
    return "Stock markets closed higher today as investors welcomed the quarterly earnings of large banks."
