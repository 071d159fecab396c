"""A rule-based prior baseline: answers every task in the official format from the question alone.

It looks at no pixel content beyond the first frame's size. It is the floor a model must beat, the
way "majority class" rows serve in classification papers, and lets the demo and the tests run the
full eval path with no model weights. Rules (``PRIOR_VERSION`` in the fingerprint):

- TAG: the whole clip (``0.0-<clip length> seconds.``).
- STG: a centred box covering the middle half of the frame at every asked time.
- DVC: one event over the whole clip, labelled with the first listed action.
- NAP: the first step of the listed step list.
- SA: 3/5 for every aspect asked. CVS: 0 for every criterion.
- VS / RC: a fixed neutral sentence.
"""

from __future__ import annotations

import ast
import re

from PIL import Image

from mvbench.eval.backends.base import GenerationRequest
from mvbench.tasks import task_for_qa_type
from mvbench.tasks.sa import ASPECTS as SA_ASPECTS

PRIOR_VERSION = "1"
_LIST = re.compile(r"\[([^\]]*)\]")
_EVERY = r"every (\d+(?:\.\d+)? seconds?|second)"
_STG = re.compile(_EVERY + r" (?:from|between) (\d+(?:\.\d+)?) (?:to|and) (\d+(?:\.\d+)?)")
_STG_TRACK = re.compile(r"from (\d+(?:\.\d+)?) to (\d+(?:\.\d+)?) seconds, predicting its location " + _EVERY)


def _first_listed(question: str) -> str:
    m = _LIST.search(question)
    if m:
        try:
            items = ast.literal_eval(f"[{m.group(1)}]")
            if items:
                return str(items[0])
        except (ValueError, SyntaxError):
            pass
    m = re.search(r"(?:actions (?:are|include|in)|matching|such as):? ([^.,]+)", question)
    return m.group(1).strip() if m else "action"


class PriorBaselineBackend:
    """The :class:`~mvbench.eval.backends.base.Backend` of the prior baseline (no model)."""

    name = "baseline"

    def __init__(self, model: str = "baseline:prior"):
        self.model = model

    def fingerprint(self) -> dict:
        """Identifies the rule set."""
        return {"backend": self.name, "model": self.model, "prior_version": PRIOR_VERSION}

    async def generate(self, request: GenerationRequest) -> str:
        """Answer from the question text and clip length."""
        task = task_for_qa_type(request.qa_type or "").name if request.qa_type else "VS"
        q = request.prompt
        length = len(request.frames) / request.fps if request.fps else 0.0
        if task == "TAG":
            return f"0.0-{length:.1f} seconds."
        if task == "DVC":
            return f"0.0-{length:.1f} seconds: {_first_listed(q)}: The procedure continues."
        if task == "NAP":
            return _first_listed(q)
        if task == "SA":
            return ", ".join(f"{a}: 3/5" for a in SA_ASPECTS)
        if task == "CVS":
            return "Two structures: 0, Cystic plate: 0, Hepatocystic triangle: 0"
        if task == "STG":
            return self._stg(request)
        return "The instrument manipulates tissue in the operative field."

    def _stg(self, request: GenerationRequest) -> str:
        m = _STG.search(request.prompt)
        if m:
            every, start, end = m.group(1), float(m.group(2)), float(m.group(3))
        else:
            m = _STG_TRACK.search(request.prompt)
            if not m:
                return ""
            start, end, every = float(m.group(1)), float(m.group(2)), m.group(3)
        stride = 1.0 if every == "second" else float(every.split()[0])
        w, h = _frame_size(request.frames[0]) if request.frames else (100, 100)
        box = f"[{w * 0.25:.2f}, {h * 0.25:.2f}, {w * 0.75:.2f}, {h * 0.75:.2f}]"
        times, t = [], start
        while t <= end + 1e-9 and stride > 0 and len(times) < 1000:
            times.append(t)
            t += stride
        return " ".join(f"{t:.1f} seconds: {box}" for t in times)

    async def aclose(self) -> None:
        """Nothing to release."""


def _frame_size(path: str) -> tuple[int, int]:
    """(width, height) of a frame file, read from its header; the file is closed at once."""
    with Image.open(path) as img:
        return img.size
