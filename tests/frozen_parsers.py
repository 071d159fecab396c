"""Frozen copy of the answer parsers (and DVC's ``flatten``) as they were before they were made
linear-time (issue 8).

Verbatim from ``mvbench/tasks/{tag,stg,dvc,sa,cvs,captions}.py`` at commit 698c15a (docstrings
dropped, module names prefixed). ``tests/test_parsers_linear.py`` checks that the live parsers give
exactly these results. Do not edit: this is the reference the rewrite is held to.
"""

from __future__ import annotations

import re

from mvbench.tasks.captions import ASPECTS
from mvbench.tasks.sa import SkillAnswer

Box = list[float]
Segment = dict


# ---- mvbench/tasks/tag.py ------------------------------------------------------

_TAG_PAIR = re.compile(r"(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)")


_TAG_TO = re.compile(r"(?:from|is from|takes place from)?\s*(\d+(?:\.\d+)?)(?:s| seconds?)?\s*"
                 r"to\s*(\d+(?:\.\d+)?)(?:s| seconds?)?", re.IGNORECASE)


_TAG_HMS = re.compile(r"(\d+):(\d+):(\d+)\s+to\s+(\d+):(\d+):(\d+)", re.IGNORECASE)


def tag_parse(text: str) -> list[tuple[float, float]]:
    if not isinstance(text, str):
        return []
    segments = [(float(a), float(b)) for a, b in _TAG_PAIR.findall(text)]
    if segments:
        return segments
    for a, b in _TAG_TO.findall(text):
        segments.append((round(float(a), 2), round(float(b), 2)))
    for h1, m1, s1, h2, m2, s2 in _TAG_HMS.findall(text):
        segments.append((float(int(h1) * 3600 + int(m1) * 60 + int(s1)),
                         float(int(h2) * 3600 + int(m2) * 60 + int(s2))))
    return segments


# ---- mvbench/tasks/stg.py ------------------------------------------------------

_STG_TIMED = re.compile(r"(\d+(?:\.\d+)?)\s+seconds:\s*\[([^\]]+)\]")


_STG_RAW = re.compile(r"\[\[([\d\s,]+)\]\]")


def stg_parse(text: str) -> dict[str, Box] | list[list[int]]:
    if not isinstance(text, str):
        return []
    matches = _STG_TIMED.findall(text)
    if not matches:
        boxes: list[list[int]] = []
        for body in _STG_RAW.findall(text):
            try:
                box = [int(x.strip()) for x in body.split(",")]
            except ValueError:
                continue
            if len(box) == 4:
                boxes.append(box)
        return boxes
    parsed: dict[str, Box] = {}
    last: Box | None = None
    for t, body in matches:
        try:
            nums = [float(part.strip().lstrip("[").rstrip("]")) for part in body.split(",")]
            if len(nums) != 4:
                raise ValueError("box needs 4 values")
        except ValueError:
            if last is not None:
                parsed[str(float(t))] = last
            continue
        parsed[str(float(t))] = nums
        last = nums
    return parsed


# ---- mvbench/tasks/dvc.py ------------------------------------------------------

_DVC_ENTRY = re.compile(r"(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)\s+seconds?:\s+(.*?)"
                    r"(?=\n\d+(?:\.\d+)?-\d+(?:\.\d+)?\s+seconds?:|\Z)", re.DOTALL)


_DVC_LOOSE = re.compile(r"(?:\*\*Start Time:\*\*|Start\s*\(?Time\)?|Time\s*Range:|Time\s*Interval:|^|\n)"
                    r"\s*(\d+\.?\d*)\s*[-–]\s*(\d+\.?\d*)\s*seconds?.*?(?:\*\*Description:\*\*|-)"
                    r"\s*(.+?)(?=\n\d|$)", re.DOTALL)


def dvc_parse(text: str) -> list[Segment]:
    if not isinstance(text, str):
        return []
    segments: list[Segment] = []
    seen: set[tuple[float, float]] = set()
    for a, b, desc in _DVC_ENTRY.findall(text):
        key = (float(a), float(b))
        if key not in seen:
            seen.add(key)
            segments.append({"start": key[0], "end": key[1], "caption": desc.strip().replace("\n", " ")})
    if segments:
        return segments
    for line in text.strip().split("\n"):
        for a, b, caption in _DVC_LOOSE.findall(line):
            segments.append({"start": float(a), "end": float(b), "caption": caption.strip().rstrip(".")})
    return segments


def dvc_flatten(segments: list[Segment]) -> list[Segment]:
    ordered = sorted(segments, key=lambda s: (s["start"], s["end"]))
    if not any(ordered[i + 1]["start"] < ordered[i]["end"] for i in range(len(ordered) - 1)):
        return segments
    points = sorted({s["start"] for s in segments} | {s["end"] for s in segments})
    out: list[Segment] = []
    for start, end in zip(points, points[1:]):
        cover = [s for s in segments if s["start"] < end and s["end"] > start]
        if cover:
            best = max(cover, key=lambda s: s["end"] - s["start"])
            out.append({"start": start, "end": end, "caption": best["caption"]})
    return out


# ---- mvbench/tasks/sa.py -------------------------------------------------------

_SA_SCORE = re.compile(r"(\d+)/5")


_SA_ASPECT = re.compile(r"([^:]+?):\s*(\d+)/5")


def sa_level(text: str) -> str | None:
    scores = [int(s) for s in _SA_SCORE.findall(text)]
    if not scores:
        return None
    try:
        avg = sum(scores) / len(scores)
    except OverflowError:
        avg = float("inf")
    return "novice" if avg <= 2.0 else "intermediate" if avg <= 3.5 else "expert"


def sa_parse(text: str) -> SkillAnswer:
    if not isinstance(text, str):
        return SkillAnswer()
    aspects: dict[str, int] = {}
    for part in text.split(","):
        m = _SA_ASPECT.search(part.strip())
        if m:
            aspects[m.group(1).strip()] = int(m.group(2))
    return SkillAnswer(aspects=aspects, level=sa_level(text))


# ---- mvbench/tasks/cvs.py ------------------------------------------------------

_CVS_PATTERNS = (("two structures", "two_structures", re.compile(r"two structures?:\s*(\d+)")),
             ("cystic plate", "cystic_plate", re.compile(r"cystic plate:\s*(\d+)")),
             ("hepatocystic triangle", "hepatocystic_triangle", re.compile(r"hepatocystic triangle:\s*(\d+)")))


def cvs_parse(text: str) -> dict[str, int]:
    if not isinstance(text, str):
        return {}
    found: dict[str, int] = {}
    for part in text.split(","):
        part = part.strip().lower()
        for needle, name, pattern in _CVS_PATTERNS:
            if needle in part:
                m = pattern.search(part)
                if m:
                    found[name] = int(m.group(1))
                break
    return found


# ---- mvbench/tasks/captions.py -------------------------------------------------

_CAPTIONS_PATTERNS = {a: tuple(re.compile(p.format(a=a)) for p in (
    r"{a}:\s*(\d+)", r"{a}\s*=\s*(\d+)", r"{a}\s*:\s*(\d+)", r"{a}\s+(\d+)", r"\*\*{a}\*\*\s*:\s*(\d+)"))
    for a in ASPECTS}


def captions_parse(text: str) -> dict[str, int]:
    if not isinstance(text, str):
        return {}
    scores: dict[str, int] = {}
    for aspect, patterns in _CAPTIONS_PATTERNS.items():
        for pattern in patterns:
            m = pattern.search(text)
            if m:
                scores[aspect] = int(m.group(1))
                break
    return scores
