"""Enrichment: what the writer models see of one caption instance besides the question.

For a DVC, VS or RC record and its video's expert annotations (:mod:`mvbench.builders.annotations`):

- **frames**: up to ``frames_per_call`` frames of the record's own frame list, evenly spread, with
  every DVC segment's middle frame and the RC start frame kept (:func:`select_frames`); each is
  resized to ``max_side`` and gets the annotated boxes drawn on it with their labels (the RC
  target in green, labelled ``target``), the visual prompt (:func:`render_frame`);
- **text**: the clip's events per kind with times from the clip start, per-frame notes (events
  active at that time, boxes drawn), the DVC segments to caption, the RC object and interval;
- **terms**: the labels an answer must mention (rule checks, :mod:`.validate`).

Times: frame ``k`` of a record's list is shown at ``k / fps`` seconds from the clip start; its
native frame index gives its time in the source video, which is what annotations are keyed by.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from mvbench.builders.base import VideoAnnotation
from mvbench.errors import InputError
from mvbench.llm.images import load_frame, rc_position
from mvbench.records import Record
from mvbench.tasks.base import fmt_time
from mvbench.tasks.dvc import gt_segments

TARGET_COLOR = (0, 255, 0)
PALETTE = ((255, 64, 64), (64, 160, 255), (255, 200, 0), (255, 96, 255), (0, 220, 220), (255, 140, 0),
           (160, 120, 255), (255, 255, 255))
BOX_TOLERANCE_S = 1.0  # a track box belongs to a frame if its time is this close
MAX_ANNOTATION_LINES = 60
JPEG_QUALITY = 90


@dataclass(frozen=True)
class BoxNote:
    """One box drawn on a frame: label, pixel box on the source frame, whether it is the RC target."""

    label: str
    box: tuple[float, float, float, float]
    target: bool = False


@dataclass
class FrameView:
    """One frame sent to the writers.

    Args:
        path: the frame file.
        position: its index in the record's frame list.
        t_rel: seconds from the clip start (``position / fps``).
        t_src: seconds in the source video (native index / native fps).
        events: ``(kind, label)`` of the annotated events at ``t_src``.
        boxes: the boxes drawn on it.
        size: the frame's pixel size as sent (after resizing to ``max_side``).
    """

    path: Path
    position: int
    t_rel: float
    t_src: float
    events: list[tuple[str, str]] = field(default_factory=list)
    boxes: list[BoxNote] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)


@dataclass
class Enrichment:
    """Everything a caption instance's prompts are made from (see the module docstring)."""

    task: str
    data_source: str
    question: str
    duration_s: float
    fps: float
    frames: list[FrameView]
    annotation_lines: list[str]
    segments: list[dict] = field(default_factory=list)
    rc: dict | None = None
    steps: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    source_size: tuple[int, int] | None = None

    def frame_notes(self) -> str:
        """One line per frame: its time, the events then, the boxes drawn."""
        lines = []
        for f in self.frames:
            parts = [f"{kind} {label}" for kind, label in f.events]
            if f.boxes:
                parts.append("boxes: " + ", ".join(("target " if b.target else "") + b.label for b in f.boxes))
            lines.append(f"- {fmt_time(f.t_rel)} s: " + ("; ".join(parts) if parts else "no annotation"))
        return "\n".join(lines)


def _src_time(record: Record, position: int, native_fps: float) -> float:
    if record.frame_indices and position < len(record.frame_indices):
        return record.frame_indices[position] / native_fps
    return (record.clip_start_s or 0.0) + position / (record.fps or 1.0)


def select_frames(n: int, limit: int, must: list[int]) -> list[int]:
    """Up to ``limit`` positions of ``range(n)``, evenly spread, each ``must`` one replacing its nearest.

    >>> select_frames(10, 4, [])
    [0, 3, 6, 9]
    >>> select_frames(10, 3, [5])
    [0, 5, 9]
    >>> select_frames(3, 8, [])
    [0, 1, 2]
    """
    if n <= limit:
        return list(range(n))
    chosen = sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)}) if limit > 1 else [0]
    must_set = [p for p in dict.fromkeys(must) if 0 <= p < n]
    for m in must_set:
        if m in chosen:
            continue
        free = [c for c in chosen if c not in must_set]
        if not free:
            break
        chosen.remove(min(free, key=lambda c: (abs(c - m), c)))
        chosen.append(m)
    p = 0
    while len(chosen) < limit and p < n:  # rounding collisions
        if p not in chosen:
            chosen.append(p)
        p += 1
    return sorted(chosen)


def _clip_events(ann: VideoAnnotation, start: float, end: float) -> list:
    return [e for e in ann.events if e.end_s > start and e.start_s < end]


def _box_at(track, t: float) -> tuple[float, float, float, float] | None:
    best, best_dt = None, BOX_TOLERANCE_S + 1e-9
    for ts, box in track.boxes.items():
        dt = abs(ts - t)
        if dt <= best_dt:
            best, best_dt = box, dt
    return best


def enrich(record: Record, ann: VideoAnnotation, frames_root: Path, frames_per_call: int,
           max_side: int) -> Enrichment:
    """The enrichment of one caption record.

    Args:
        record: a DVC, VS or RC record (its ``video`` paths are relative to ``frames_root``).
        ann: its video's expert annotations.
        frames_root: the dataset folder the frame paths are relative to.
        frames_per_call: frames sent at most.
        max_side: the longest side of a frame as sent, in pixels.

    Returns:
        The enrichment (frames are not read here; only their sizes when they exist).

    Raises:
        InputError: a record without frames or sampling rate (naming it).
    """
    fps = record.fps
    if not record.video or not fps:
        raise InputError("a caption record needs frames and metadata.fps", record=record.uid)
    native = ann.video.native_fps
    start = record.clip_start_s if record.clip_start_s is not None else _src_time(record, 0, native)
    duration = len(record.video) / fps  # the clip as shown: frame k at k / fps
    end = start + duration
    events = sorted(_clip_events(ann, start, end), key=lambda e: (e.kind, e.start_s, e.end_s))
    segments = [dict(s) for s in gt_segments({"struc_info": record.struc_info})] if record.task == "DVC" else []

    must: list[int] = []
    for s in segments:
        must.append(min(len(record.video) - 1, int(((float(s["start"]) + float(s["end"])) / 2) * fps)))
    rc = None
    if record.task == "RC" and isinstance(record.RC_info, dict):
        pos = rc_position(record.video, record.RC_info.get("start_frame"))
        inner = {}
        if isinstance(record.struc_info, list) and record.struc_info and isinstance(record.struc_info[0], dict):
            inner = record.struc_info[0].get("struc_info") or {}
        rc = {"position": pos, "box": record.RC_info.get("start_frame_bbox"), "object": inner.get("object", "object"),
              "start": float(inner.get("start", 0.0)), "end": float(inner.get("end", duration))}
        if pos is not None:
            must.insert(0, pos)
    positions = select_frames(len(record.video), frames_per_call, must)

    main_kind = None
    if segments:
        labels = {str(s.get("action") or "") for s in segments}
        kinds = [e.kind for e in events if e.label in labels]
        main_kind = kinds[0] if kinds else None
    frames = []
    for p in positions:
        t_src = _src_time(record, p, native)
        view = FrameView(frames_root / record.video[p], p, p / fps, t_src)
        view.events = [(e.kind, e.label) for e in events if e.start_s <= t_src < e.end_s]
        for track in ann.tracks:
            box = _box_at(track, t_src)
            if box is not None:
                view.boxes.append(BoxNote(track.label, box))
        if rc is not None and rc["position"] == p and rc["box"]:
            view.boxes.append(BoxNote(rc["object"], tuple(float(v) for v in rc["box"]), target=True))
        frames.append(view)

    lines = []
    for e in events[:MAX_ANNOTATION_LINES]:
        a, b = max(0.0, e.start_s - start), min(duration, e.end_s - start)
        lines.append(f"- {e.kind}: {fmt_time(a)}-{fmt_time(b)} s: {e.label}")
    if len(events) > MAX_ANNOTATION_LINES:
        lines.append(f"- ... and {len(events) - MAX_ANNOTATION_LINES} more events")
    procedure = ann.video.attrs.get("procedure")
    if procedure:
        lines.insert(0, f"- procedure: {procedure}")
    tracked = sorted({t.label for t in ann.tracks if any(start <= ts < end for ts in t.boxes)})
    if tracked:
        lines.append(f"- tracked: {', '.join(tracked)}")

    steps: list[str] = []
    kind_for_steps = main_kind or (events[0].kind if events else None)
    for e in sorted((e for e in events if e.kind == kind_for_steps), key=lambda e: e.start_s):
        if not steps or steps[-1] != e.label:
            steps.append(e.label)
    if record.task == "DVC":
        terms = list(dict.fromkeys(segment_label(s) for s in segments))
    elif record.task == "RC":
        terms = [rc["object"]] if rc else []
    else:
        terms = list(dict.fromkeys(steps)) or tracked
    size = (ann.video.width, ann.video.height) if ann.video.width and ann.video.height else None
    enrichment = Enrichment(record.task, record.data_source, record.question, duration, fps, frames, lines,
                            segments, rc, steps, terms, size)
    for f in enrichment.frames:
        f.size = sent_size(f.path, size, max_side)
    return enrichment


def segment_label(segment: dict) -> str:
    """The label of a DVC segment: its ``action``, else its caption up to the first colon.

    The one rule for the prompt's segment list, the mention check and the rewritten answers.

    >>> segment_label({"caption": "preparation: the team sets up"})
    'preparation'
    >>> segment_label({"action": "clipping", "caption": "x"})
    'clipping'
    """
    return str(segment.get("action") or segment["caption"].split(":", 1)[0]).strip()


def sent_size(path: Path, source_size: tuple[int, int] | None, max_side: int) -> tuple[int, int]:
    """A frame's size as sent: its file's size (header only) or the source size, shrunk to ``max_side``.

    Without either (a plan-only build whose annotations lack a size), 16:9 at ``max_side``.
    """
    try:
        with Image.open(path) as img:
            w, h = img.size
    except OSError:
        w, h = source_size or (16 * max_side, 9 * max_side)
    scale = min(1.0, max_side / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def _color(label: str) -> tuple[int, int, int]:
    return PALETTE[int(hashlib.sha1(label.encode()).hexdigest(), 16) % len(PALETTE)]


def render_frame(view: FrameView, source_size: tuple[int, int] | None, max_side: int) -> bytes:
    """Load, resize and annotate one frame; JPEG bytes (deterministic for the same inputs).

    Boxes are in source-frame pixels; they are scaled by the ratio of the sent width to the source
    width (the frame file's own width when the source size is unknown).

    Raises:
        InputError: a missing or undecodable frame (naming it).
    """
    img = load_frame(view.path)
    src_w, src_h = source_size or img.size
    scale = min(1.0, max_side / max(img.size))
    if scale < 1.0:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.BICUBIC)
    sx, sy = img.width / src_w, img.height / src_h
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    for b in sorted(view.boxes, key=lambda b: b.target):  # the target last, on top
        x1, y1, x2, y2 = b.box
        rect = [x1 * sx, y1 * sy, x2 * sx, y2 * sy]
        if rect[2] < rect[0] or rect[3] < rect[1]:
            continue
        color = TARGET_COLOR if b.target else _color(b.label)
        draw.rectangle(rect, outline=color, width=4 if b.target else 2)
        text = f"target: {b.label}" if b.target else b.label
        draw.text((rect[0] + 2, max(0, rect[1] - 11)), text, fill=color, font=font)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def openai_image_tokens(width: int, height: int, detail: str = "auto") -> int:
    """gpt-4.1 image tokens (tile model): 85 for ``low``; else 85 + 170 per 512-px tile after
    fitting 2048x2048 and shrinking the short side to 768.

    >>> openai_image_tokens(1024, 1024), openai_image_tokens(512, 288), openai_image_tokens(512, 288, "low")
    (765, 255, 85)
    """
    if detail == "low":
        return 85
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        s = 2048 / max(w, h)
        w, h = w * s, h * s
    if min(w, h) > 768:
        s = 768 / min(w, h)
        w, h = w * s, h * s
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


def gemini_image_tokens(width: int, height: int) -> int:
    """Gemini 2.x image tokens: 258 up to 384 px a side, else 258 per 768-px tile (approximate).

    >>> gemini_image_tokens(384, 216), gemini_image_tokens(512, 288), gemini_image_tokens(1920, 1080)
    (258, 258, 1548)
    """
    if max(width, height) <= 384:
        return 258
    return 258 * math.ceil(width / 768) * math.ceil(height / 768)
