"""Validation of a GPT/Gemini answer pair: rule checks against the annotations, then agreement.

Rule checks, per answer (each failure is a named reason):

- ``mentions``: the share of the annotation's labels the answer names (DVC: the segments' labels;
  VS: the steps of the clip, else the tracked objects; RC: the boxed object) must reach
  ``min_mention_recall``. A label counts as named when most of its words appear (compared on their
  first five letters, so ``dissection``/``dissecting`` and ``carlot-triangle`` match);
- ``timestamps``: every time the answer writes (``12.5 s``, ``4-9 seconds``) lies inside the clip;
- ``dvc_segments``: a DVC answer parses with the leaderboard's DVC parser, and every annotated
  segment is matched by a parsed one with tIoU >= ``dvc_min_iou``;
- ``length``: a sensible length (VS 20-300 words, RC 5-150, DVC 3+ words per caption).

Agreement: the MiniLM cosine (:func:`mvbench.embedding.cosine`) of the two answers' caption text
(for DVC the captions in segment order, without times) must reach ``agreement_threshold`` (0.3, as
in the MedVidBench paper). A pair is accepted only if both answers pass every rule and they agree.

A DVC record's answer is rewritten from the annotated segments: their times, and the caption of the
answer segment that matches each best (the Gemini slot keeps the ``label: caption`` form of the
published Gemini answers). So a generated DVC answer scores full marks on DVC F1 against its own
``struc_info``, as a published one does.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from mvbench import embedding
from mvbench.tasks import TASKS
from mvbench.tasks.dvc import parse as parse_dvc

from mvbench.generation.enrich import Enrichment, segment_label

_WORD = re.compile(r"[a-z0-9]+")
_TIME = re.compile(r"(\d+(?:\.\d+)?)\s*(?:-\s*(\d+(?:\.\d+)?)\s*)?(?:s|sec|secs|second|seconds)\b", re.IGNORECASE)
_STOP = frozenset("a an and the of with to in on at for by from only or into its is are".split())
LENGTHS = {"VS": (20, 300), "RC": (5, 150)}
DVC_MIN_CAPTION_WORDS = 3
TIME_SLACK_S = 1.0


@dataclass
class Checked:
    """One answer after the rule checks.

    Args:
        variant: the writer slot.
        text: the raw answer.
        answer: the answer as the record will hold it.
        struc: the record's ``struc_info``.
        caption_text: what agreement compares.
        scores: the rule scores (``mention_recall``, ``dvc_min_iou`` ...).
        reasons: the failed rules, worded for ``rejects.parquet``.
    """

    variant: str
    text: str
    answer: str = ""
    struc: Any = None
    caption_text: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


def _stems(text: str) -> set[str]:
    return {w[:5] for w in _WORD.findall(text.lower().replace("_", " "))}


def mentions(text: str, term: str) -> bool:
    """Whether ``text`` names ``term`` (most of its content words, compared on 5-letter stems).

    >>> mentions("The surgeon performs Calot triangle dissection.", "carlot-triangle-dissection")
    True
    >>> mentions("The grasper holds the gallbladder.", "clipper")
    False
    """
    words = [w for w in _WORD.findall(term.lower().replace("_", " ")) if w not in _STOP] or \
        _WORD.findall(term.lower())
    if not words:
        return True
    stems = _stems(text)
    found = sum(1 for w in words if w[:5] in stems)
    return found / len(words) >= 0.6


def times_in(text: str) -> list[float]:
    """Every time written in seconds (``12 s``, ``4.0-9.5 seconds``)."""
    out: list[float] = []
    for a, b in _TIME.findall(text):
        out.append(float(a))
        if b:
            out.append(float(b))
    return out


def _iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def check_answer(enr: Enrichment, template_struc: Any, variant: str, text: str, min_mention_recall: float,
                 dvc_min_iou: float) -> Checked:
    """Run the rule checks on one answer and shape it as its record will hold it."""
    c = Checked(variant, text)
    text = text.strip()
    if enr.task == "DVC":
        _check_dvc(c, enr, template_struc, text, dvc_min_iou)
    else:
        c.answer = TASKS.get(enr.task).format_answer(text)
        c.caption_text = c.answer
        c.struc = c.answer if enr.task == "VS" else copy.deepcopy(template_struc)
        lo, hi = LENGTHS[enr.task]
        n = len(c.answer.split())
        c.scores["words"] = float(n)
        if not lo <= n <= hi:
            c.reasons.append(f"length: {n} words, expected {lo}-{hi}")
    terms = enr.terms
    if terms:
        found = sum(mentions(c.caption_text or text, t) for t in terms)
        c.scores["mention_recall"] = found / len(terms)
        if c.scores["mention_recall"] < min_mention_recall:
            missing = [t for t in terms if not mentions(c.caption_text or text, t)]
            c.reasons.append(f"mentions: names {found} of {len(terms)} annotated labels (missing {missing[:5]})")
    late = [t for t in times_in(text) if t > enr.duration_s + TIME_SLACK_S]
    if late:
        c.reasons.append(f"timestamps: {late[:3]} s outside the {enr.duration_s:.1f} s clip")
    return c


def _check_dvc(c: Checked, enr: Enrichment, template_struc: Any, text: str, dvc_min_iou: float) -> None:
    parsed = parse_dvc(text)
    if not parsed:
        c.reasons.append("dvc_segments: the answer does not parse into 'a-b seconds: caption' lines")
        return
    segs, worst = [], 1.0
    for gt in enr.segments:
        span = (float(gt["start"]), float(gt["end"]))
        best = max(parsed, key=lambda p: _iou(span, (p["start"], p["end"])))
        worst = min(worst, _iou(span, (best["start"], best["end"])))
        label = segment_label(gt)
        caption = best["caption"].strip()
        bare = caption.split(":", 1)[1].strip() if caption.lower().startswith(label.lower() + ":") else caption
        item = {"start": gt["start"], "end": gt["end"],
                "caption": f"{label}: {bare}" if c.variant == "gemini" else bare}
        if c.variant == "gemini":
            item["action"] = label
        if len(bare.split()) < DVC_MIN_CAPTION_WORDS:
            c.reasons.append(f"length: caption of {gt['start']}-{gt['end']} s has under "
                             f"{DVC_MIN_CAPTION_WORDS} words")
        segs.append(item)
    c.scores["dvc_min_iou"] = worst
    c.scores["segments_parsed"] = float(len(parsed))
    if worst < dvc_min_iou:
        c.reasons.append(f"dvc_segments: an annotated segment is matched with tIoU {worst:.2f} < {dvc_min_iou}")
    words = sum(len(p["caption"].split()) for p in parsed)
    if words > 80 * max(1, len(enr.segments)):
        c.reasons.append(f"length: {words} words for {len(enr.segments)} segments")
    dc_shape = (isinstance(template_struc, list) and template_struc and isinstance(template_struc[0], dict)
                and "dc_segments" in template_struc[0])
    c.struc = [{"dc_segments": segs}] if dc_shape else [segs]
    c.answer = TASKS.get("DVC").format_answer(c.struc)
    c.caption_text = " ".join(s["caption"].split(":", 1)[1] if c.variant == "gemini" else s["caption"]
                              for s in segs)


def agreement(a: Checked, b: Checked) -> float:
    """MiniLM cosine of the two answers' caption text (0.0 when either is empty)."""
    if not a.caption_text.strip() or not b.caption_text.strip():
        return 0.0
    return float(embedding.cosine(a.caption_text, b.caption_text))


_SCORE = re.compile(r"^\s*\**\s*([AB])\s*\**\s*[:=]\s*([1-5])\b", re.MULTILINE)


def parse_validator(text: str) -> dict[str, int]:
    """``{"A": n, "B": m}`` from a validator reply (lines ``A: 4`` / ``B: 5``); missing ones left out.

    >>> parse_validator("A: 4\\nB: 2")
    {'A': 4, 'B': 2}
    """
    return {k: int(v) for k, v in _SCORE.findall(text or "")}
