"""CoPESD (gkw0010/CoPESD): endoscopic submucosal dissection keyframes with instructions, motions and boxes.

⚠ The raw format of the Google-Drive release is unknown. This reader accepts the only public format,
the repository's LLaVA-style instruction JSON (``sphinx_esd/accessory/data/annotations/smllm/``),
plus the keyframe images:

- ``annotations/smllm/smllm_{train,test}.json`` (``annotation_glob``; the split is the ``_train`` /
  ``_val`` / ``_test`` part of the file name): a list of records
  ``{"conversations": [{"from": "human", "value": <instruction>}, {"from": "gpt", "value": <motion>}],
  "image": ".../high_light_images/<6-digit folder>/<NNNN>.jpg"}``. The motion names each instrument
  with its box, ``Knife[a, b, c, d]`` / ``Forceps[a, b, c, d]``, normalised to 0–1 (2 decimals).
- ``high_light_images/<folder>/<NNNN>.jpg``: the keyframes (MedVidBench reads the same paths,
  ``/root/data/CoPESD/high_light_images/023521/0464.jpg``). The image size is read from an image,
  or given (``frame_size``). A plan (``--plan-only``) needs no image: the annotated keyframes are
  taken as the frame store, and the size must then be given (``--option frame_size=WxH``).

Time base ⚠: keyframes are taken at ``keyframe_fps`` (1 Hz assumed), keyframe ``NNNN`` ↔
``t = NNNN / keyframe_fps`` s (MedVidBench's frame numbers are these ``NNNN``).

Videos: one per folder, id ``<folder>_part0`` (MedVidBench style). Optional splitting into parts
(``part_gap_frames``: a numbering gap; ``part_max_frames``: a length cap); part ``k ≥ 1`` is
re-based so that its first keyframe has index 1 (offset in ``attrs["frame_offset"]``). Records
write the id as published: ``metadata.video_id`` is the folder (``023521``) and the record ``id``
uses ``<folder>_part<k>``; a re-based part keeps ``<folder>_part<k>`` in both, since its frame
numbers are not the folder's.

Boxes ⚠ mixed convention: per folder, if some boxes are invalid as ``xyxy`` (x2 ≤ x1 or y2 ≤ y1) and
all fit as ``xywh`` (x + w ≤ 1, y + h ≤ 1), the folder is read as normalised xywh (in the public
test file: folder 233029), else as xyxy; reported in ``issues`` and ``attrs["box_format"]``
(``box_format`` / ``box_format_by_folder`` override it). Tracks: ``knife`` and ``forceps``, one
track per run of consecutive keyframes showing the instrument.

Actions ⚠ plausible mapping: each keyframe's (instruction, motion) pair gets one of the 8
MedVidBench CoPESD motion labels by the first matching rule of :data:`LABEL_RULES` (instruction
regex AND motion regex, case-insensitive):

==========================================  ==========================  =====================================
label                                       instruction                 motion
==========================================  ==========================  =====================================
adjust camera                               mentions "camera"           any
dissect flap tissue with knife              mentions "dissect…"         any
lift flap with forceps                      Forceps, no Knife           lift/hoist/raise/draw…, "upward"
stabilize flap with forceps                 Forceps, no Knife           steady/stabilize/hold/countertraction
retract flap edge with forceps only         Forceps, no Knife           clamp/grab/grasp/retract/pull…
position flap with forceps only             Forceps, no Knife           edge/boundary/border/margin
retract flap edge with forceps only         Forceps, no Knife           any (the instruction says pull back)
retract flap edge with forceps and knife    Forceps and Knife           lift/hoist/raise/clamp/grab…, "upward"
position flap with forceps and knife        Forceps and Knife           any (both moved to the flap edge)
==========================================  ==========================  =====================================

Consecutive keyframes with one label form an ``action`` event ``[first / fps, (last + 1) / fps)``
whose ``attrs`` keep the instructions and box-free motion texts (drafts for captions).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvbench.builders.base import (Box, BuilderConfig, Event, SourceBuilder, Track, VideoAnnotation, VideoMeta,
                                   register_builder)
from mvbench.builders.common import (clip_box, key_spacing, link_tracks, load_json, xywh_norm_to_xyxy,
                                     xyxy_norm_to_xyxy)
from mvbench.errors import InputError

log = logging.getLogger(__name__)

LABELS: tuple[str, ...] = ("adjust camera", "position flap with forceps and knife", "dissect flap tissue with knife",
                           "position flap with forceps only", "retract flap edge with forceps only",
                           "retract flap edge with forceps and knife", "lift flap with forceps",
                           "stabilize flap with forceps")
INSTRUMENTS: tuple[str, ...] = ("Knife", "Forceps")
_FORCEPS_ONLY = r"^(?!.*\bknife\b).*\bforceps\b"
_BOTH = r"^(?=.*\bforceps\b)(?=.*\bknife\b)"
# (label, instruction regex, motion regex); the first rule matching both wins. See the module docstring.
LABEL_RULES: tuple[tuple[str, str, str], ...] = (
    ("adjust camera", r"\bcamera\b", ""),
    ("dissect flap tissue with knife", r"\bdissect", ""),
    ("lift flap with forceps", _FORCEPS_ONLY, r"\b(lift|hoist|rais|draw)\w*|\bupward"),
    ("stabilize flap with forceps", _FORCEPS_ONLY, r"\b(steady|stabili\w*|hold\w*|countertraction)\b"),
    ("retract flap edge with forceps only", _FORCEPS_ONLY, r"\b(clamp|grab|grasp|retract|pull)\w*"),
    ("position flap with forceps only", _FORCEPS_ONLY, r"\b(edge|boundary|border|margin)\b"),
    ("retract flap edge with forceps only", _FORCEPS_ONLY, ""),
    ("retract flap edge with forceps and knife", _BOTH, r"\b(lift|hoist|rais|clamp|grab|grasp)\w*|\bupward|\bupper\b"),
    ("position flap with forceps and knife", _BOTH, ""),
)
_BOX_RE = re.compile(r"\b(?P<tool>[A-Za-z]+)\[(?P<nums>[^\]]*)\]")
_SPLIT_RE = re.compile(r"(?:^|_)(train|val|test)(?:_|$)")
_ID_RE = re.compile(r"^(?P<folder>.+)_part(?P<part>\d+)$")


def map_motion_label(instruction: str, motion: str,
                     rules: tuple[tuple[str, str, str], ...] = LABEL_RULES) -> str | None:
    """The MedVidBench CoPESD label of one keyframe's (instruction, motion) pair, or None if no rule fits.

    >>> map_motion_label("Use the Forceps to pull back the mucosa flap.",
    ...                  "Pull the mucosa flap upward using the Forceps[0.2, 0.4, 0.5, 0.7].")
    'lift flap with forceps'
    >>> map_motion_label("Refine the camera angle.", "Scenes are confusing.")
    'adjust camera'
    """
    for label, instr_re, motion_re in rules:
        if re.search(instr_re, instruction, re.I) and (not motion_re or re.search(motion_re, motion, re.I)):
            return label
    return None


@dataclass
class CoPESDConfig(BuilderConfig):
    """Options of the CoPESD reader.

    Args:
        annotation_glob: instruction JSON files under the root.
        images_dir: folder of ``<folder>/<NNNN>.jpg`` keyframes.
        image_regex: finds folder and keyframe number in a record's ``image`` (named groups
            ``folder``, ``frame``).
        keyframe_fps: the keyframe rate (⚠ 1 Hz assumed).
        instruments: instrument names allowed in ``Tool[...]`` (track labels are lower-cased).
        label_rules: (label, instruction regex, motion regex) rules, first match wins.
        labels: the motion vocabulary offered in questions.
        unmapped: ``"skip"`` (default: the keyframe keeps its boxes, gets no label, and is reported
            in the manifest's anomalies; the rule table covers the instructions seen in the public
            test file, so the full release may hold others) or ``"error"`` (raise InputError).
        box_format: ``"auto"`` (detect per folder), ``"xyxy"`` or ``"xywh"``.
        box_format_by_folder: per-folder override of ``box_format``.
        box_tolerance: normalised coordinates may exceed [0, 1] by this much (then clipped).
        part_gap_frames: start a new part after a keyframe-numbering gap larger than this (None: never).
        part_max_frames: start a new part after this many keyframe numbers (None: never).
        frame_size: (width, height) of the keyframes; None reads it from the folder's first image.
    """

    annotation_glob: str = "annotations/smllm/*.json"
    images_dir: str = "high_light_images"
    image_regex: str = r"(?P<folder>\d{6})[/\\](?P<frame>\d+)\.jpg$"
    keyframe_fps: float = 1.0
    instruments: tuple[str, ...] = INSTRUMENTS
    label_rules: tuple[tuple[str, str, str], ...] = LABEL_RULES
    labels: tuple[str, ...] = LABELS
    unmapped: str = "skip"
    box_format: str = "auto"
    box_format_by_folder: dict[str, str] = field(default_factory=dict)
    box_tolerance: float = 0.01
    part_gap_frames: int | None = None
    part_max_frames: int | None = None
    frame_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.frame_size is not None and (len(self.frame_size) != 2 or min(self.frame_size) <= 0):
            raise ValueError(f"frame_size must be two positive integers (WxH), not {self.frame_size!r}")
        if self.keyframe_fps <= 0:
            raise ValueError("keyframe_fps must be > 0 (1 Hz is the assumed CoPESD keyframe rate)")
        try:
            groups = re.compile(self.image_regex).groupindex
            for _, a, b in self.label_rules:
                re.compile(a), re.compile(b)
        except re.error as e:
            raise ValueError(f"a regex does not compile: {e}") from None
        if not {"folder", "frame"} <= set(groups):
            raise ValueError("image_regex needs the named groups folder and frame")
        unknown = {label for label, _, _ in self.label_rules} - set(self.labels)
        if unknown:
            raise ValueError(f"label_rules use labels missing from labels: {sorted(unknown)}")
        if self.unmapped not in ("error", "skip"):
            raise ValueError("unmapped must be 'error' or 'skip'")
        for fmt in (self.box_format, *self.box_format_by_folder.values()):
            if fmt not in ("auto", "xyxy", "xywh"):
                raise ValueError(f"box format {fmt!r}: use 'auto', 'xyxy' or 'xywh'")
        for name in ("part_gap_frames", "part_max_frames"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None")


@dataclass
class _Keyframe:
    """One instruction record."""

    frame: int
    instruction: str
    motion: str
    boxes: dict[str, tuple[float, float, float, float]]  # instrument → normalised numbers as written
    split: str | None
    where: tuple[Path, str]


@register_builder
class CoPESDBuilder(SourceBuilder):
    """CoPESD keyframe folders → motion-label events and knife/forceps tracks."""

    name = "copesd"
    data_source = "CoPESD"
    tasks = ("STG", "NAP", "VS", "DVC", "TAG")
    config_class = CoPESDConfig
    config: CoPESDConfig

    def __init__(self, root: str | Path, config: BuilderConfig | None = None, **overrides: Any):
        super().__init__(root, config, **overrides)
        self._regex = re.compile(self.config.image_regex)
        self._folders: dict[str, dict[int, _Keyframe]] | None = None
        self._duplicates: dict[str, int] = defaultdict(int)

    # ---- raw files -------------------------------------------------------------------------------

    def _annotation_files(self) -> list[Path]:
        files = sorted(self.root.glob(self.config.annotation_glob))
        if not files:
            raise InputError(f"no CoPESD instruction JSON matches {self.config.annotation_glob!r}", self.root)
        return files

    def _index(self) -> dict[str, dict[int, _Keyframe]]:
        if self._folders is None:
            folders: dict[str, dict[int, _Keyframe]] = defaultdict(dict)
            for path in self._annotation_files():
                for kf_folder, kf in self._read_file(path):
                    if kf.frame in folders[kf_folder]:
                        self._duplicates[kf_folder] += 1
                        continue
                    folders[kf_folder][kf.frame] = kf
            self._folders = dict(folders)
        return self._folders

    def _read_file(self, path: Path) -> list[tuple[str, _Keyframe]]:
        data = load_json(path)
        if not isinstance(data, list):
            raise InputError("expected a JSON list of instruction records", path)
        m = _SPLIT_RE.search(path.stem)
        split = m.group(1) if m else None
        out = []
        for i, rec in enumerate(data):
            record = f"[{i}]"
            try:
                image = str(rec["image"])
                turns = rec["conversations"]
                human = next(t["value"] for t in turns if t["from"] == "human")
                gpt = next(t["value"] for t in turns if t["from"] == "gpt")
            except (KeyError, TypeError, StopIteration) as e:
                raise InputError(f"malformed record (needs image and human + gpt turns): {e!r}", path,
                                 record) from None
            record = f"[{i}] {image}"
            m = self._regex.search(image)
            if not m:
                raise InputError(f"image path does not match {self.config.image_regex!r}", path, record)
            out.append((m["folder"], _Keyframe(int(m["frame"]), str(human), str(gpt), self._boxes(gpt, path, record),
                                               split, (path, record))))
        return out

    def _boxes(self, motion: str, path: Path, record: str) -> dict[str, tuple[float, float, float, float]]:
        boxes: dict[str, tuple[float, float, float, float]] = {}
        tol = self.config.box_tolerance
        for m in _BOX_RE.finditer(motion):
            tool = m["tool"]
            if tool not in self.config.instruments:
                raise InputError(f"unknown instrument {tool!r} in the motion; known: {list(self.config.instruments)}",
                                 path, record)
            try:
                nums = tuple(float(v) for v in m["nums"].split(","))
            except ValueError:
                raise InputError(f"{tool} box [{m['nums']}] is not numbers", path, record) from None
            if len(nums) != 4:
                raise InputError(f"{tool} box has {len(nums)} numbers, not 4", path, record)
            if any(v < -tol or v > 1 + tol for v in nums):
                raise InputError(f"{tool} box {list(nums)} lies outside the frame (normalised values must be in "
                                 f"[0, 1])", path, record)
            boxes.setdefault(tool, nums)  # type: ignore[arg-type]  # a repeated instrument: first box kept
        return boxes

    def _folder_format(self, folder: str, frames: dict[int, _Keyframe]) -> tuple[str, str | None]:
        """Box convention of a folder and, for an xywh folder, the note for ``issues``."""
        fmt = self.config.box_format_by_folder.get(folder, self.config.box_format)
        if fmt != "auto":
            return fmt, None
        boxes = [b for kf in frames.values() for b in kf.boxes.values()]
        bad_xyxy = sum(1 for x1, y1, x2, y2 in boxes if x2 <= x1 or y2 <= y1)
        tol = self.config.box_tolerance
        fits_xywh = all(x + w <= 1 + tol and y + h <= 1 + tol for x, y, w, h in boxes)
        if bad_xyxy and fits_xywh:
            note = (f"folder {folder}: boxes read as normalised xywh ({bad_xyxy}/{len(boxes)} are invalid as xyxy, "
                    f"all fit as xywh)")
            log.info(note)
            return "xywh", note
        return "xyxy", None

    def _parts(self, frames: list[int]) -> list[list[int]]:
        cfg = self.config
        parts: list[list[int]] = []
        for f in frames:
            new = not parts
            if parts and cfg.part_gap_frames is not None and f - parts[-1][-1] > cfg.part_gap_frames:
                new = True
            if parts and cfg.part_max_frames is not None and f - parts[-1][0] >= cfg.part_max_frames:
                new = True
            if new:
                parts.append([f])
            else:
                parts[-1].append(f)
        return parts

    # ---- contract --------------------------------------------------------------------------------

    def list_videos(self) -> list[str]:
        """``<folder>_part<k>`` for every keyframe folder named by the instruction JSON."""
        return sorted(f"{folder}_part{k}" for folder, frames in self._index().items()
                      for k in range(len(self._parts(sorted(frames)))))

    def read_video(self, video_id: str) -> VideoAnnotation:
        """Motion events and knife/forceps tracks of one keyframe folder (part)."""
        cfg = self.config
        m = _ID_RE.match(video_id)
        frames = self._index().get(m["folder"]) if m else None
        parts = self._parts(sorted(frames)) if frames else []
        if not m or frames is None or int(m["part"]) >= len(parts):
            raise InputError(f"unknown video id {video_id!r} (expected <folder>_part<k>)", self.root)
        folder, k = m["folder"], int(m["part"])
        part = parts[k]
        offset = part[0] - 1 if k > 0 else 0
        folder_dir = self.root / cfg.images_dir / folder
        images = {int(p.stem): p for p in folder_dir.glob("*.jpg") if p.stem.isdigit()} if folder_dir.is_dir() else {}
        images = {f: p for f, p in images.items() if part[0] <= f <= part[-1]}
        media = "present"
        if not images:
            if not self.plan_only:
                raise InputError(f"keyframe folder {folder} is annotated but has no images for frames "
                                 f"{part[0]}-{part[-1]}; --plan-only with --option frame_size=WxH plans it from "
                                 f"the annotations alone", folder_dir, video_id)
            if cfg.frame_size is None:
                raise InputError(f"keyframe folder {folder} has no images to read the frame size from; give it "
                                 f"with --option frame_size=WxH", folder_dir, video_id)
            images = {f: folder_dir / f"{f:04d}.jpg" for f in part}
            media = "absent"
        width, height = cfg.frame_size or _image_size(images[min(images)])
        fmt, note = self._folder_format(folder, frames)
        num_frames = part[-1] - offset + 1
        splits = sorted({frames[f].split or "" for f in part})
        meta = VideoMeta(video_id=video_id, native_fps=cfg.keyframe_fps, num_frames=num_frames,
                         duration_s=num_frames / cfg.keyframe_fps, width=width, height=height,
                         frame_files={f - offset: p for f, p in sorted(images.items())},
                         split=(splits[0] or None) if len(splits) == 1 else None,
                         attrs={"folder": folder, "part": k, "frame_offset": offset, "box_format": fmt,
                                "procedure": "endoscopic submucosal dissection (ESD)",
                                # Published records: metadata.video_id "023521", id "…$023521_part0$…".
                                # A re-based part's frame numbers are not the folder's: keep its own id.
                                "metadata_video_id": folder if offset == 0 else video_id,
                                "id_video": video_id, "media": media,
                                "label_keys": key_spacing(part, 1, 1.0).as_attrs(cfg.keyframe_fps)})
        ann = VideoAnnotation(source=self.name, data_source=self.data_source, video=meta,
                              vocab={"action": list(cfg.labels)})
        if note:
            ann.issues.append(note)
        if media == "absent":
            ann.issues.append(f"no keyframe images: planned from the annotations alone at the given frame size "
                              f"{width}x{height}")
        if len(splits) > 1:
            ann.issues.append(f"keyframes come from several splits {splits}: no official split")
        if self._duplicates.get(folder):
            ann.issues.append(f"folder {folder}: {self._duplicates[folder]} duplicate keyframe record(s) ignored "
                              f"(first kept)")
        missing = [f for f in part if f not in images]
        if missing:
            ann.issues.append(f"{len(missing)} annotated keyframe(s) have no image, e.g. {folder}/{missing[0]:04d}.jpg")
        keyframes = [frames[f] for f in part]
        ann.events = self._events(keyframes, offset, ann.issues)
        ann.tracks = self._tracks(keyframes, offset, fmt, width, height)
        ann.validate()
        return ann

    def _events(self, keyframes: list[_Keyframe], offset: int, issues: list[str]) -> list[Event]:
        fps = self.config.keyframe_fps
        runs: list[tuple[str, list[_Keyframe]]] = []
        unmapped = 0
        for kf in keyframes:
            label = map_motion_label(kf.instruction, kf.motion, self.config.label_rules)
            if label is None:
                if self.config.unmapped == "error":
                    raise InputError(f"no label rule maps the instruction {kf.instruction!r}", *kf.where)
                unmapped += 1
                continue
            if runs and runs[-1][0] == label and kf.frame - runs[-1][1][-1].frame == 1:
                runs[-1][1].append(kf)
            else:
                runs.append((label, [kf]))
        if unmapped:
            issues.append(f"{unmapped} keyframe(s) with an instruction no rule maps: left unlabelled")
        events = []
        for label, run in runs:
            motions = list(dict.fromkeys(_BOX_RE.sub(lambda m: m["tool"], kf.motion) for kf in run))
            events.append(Event(label=label, start_s=(run[0].frame - offset) / fps,
                                end_s=(run[-1].frame - offset + 1) / fps, kind="action",
                                attrs={"instructions": list(dict.fromkeys(kf.instruction for kf in run)),
                                       "motions": motions, "frames": [run[0].frame, run[-1].frame]}))
        return events

    def _tracks(self, keyframes: list[_Keyframe], offset: int, fmt: str, width: int, height: int) -> list[Track]:
        fps = self.config.keyframe_fps
        convert = xywh_norm_to_xyxy if fmt == "xywh" else xyxy_norm_to_xyxy
        by_tool: dict[str, list[tuple[int, Box]]] = defaultdict(list)
        for kf in keyframes:
            for tool, nums in kf.boxes.items():
                box = clip_box(convert(nums, width, height), width, height)
                if box[2] <= box[0] or box[3] <= box[1]:
                    raise InputError(f"{tool} box {list(nums)} is empty when read as normalised {fmt}", *kf.where)
                by_tool[tool].append((kf.frame - offset, box))
        tracks = []
        for tool, obs in sorted(by_tool.items()):
            label = tool.lower()
            for n, run in enumerate(link_tracks(obs, 1, 0.0)):
                tracks.append(Track(label=label, track_id=f"{label}:{n}", kind="tool",
                                    boxes={f / fps: b for f, b in sorted(run.items())},
                                    attrs={"frames": [min(run) + offset, max(run) + offset]}))
        return tracks

    @classmethod
    def detect(cls, root: str | Path) -> bool:
        """A tree with smllm instruction JSON (the ``high_light_images/`` keyframes are optional: ``--plan-only``)."""
        return any(Path(root).glob("annotations/smllm/*.json"))


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError) as e:
        raise InputError(f"cannot read keyframe image: {e}", path) from None
