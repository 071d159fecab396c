"""EgoSurgery (Fujiry0/EgoSurgery): egocentric open surgery, phases plus tool and hand boxes.

Raw files read (the whole layout is ⚠ reported by third parties, not documented by the holders):

- ``images/<VV>/<VV>_<S>_<FFFF>.jpg``: the frames of session ``S`` of video ``VV`` (e.g.
  ``images/10/10_1_0376.jpg``), sampled at **0.5 fps** ⚠, so frame ``k`` ↔ ``t = k / 0.5 = 2k`` s.
- ``annotations/coco_format/bbox/by_split/tool/{train,val,test}.json``: COCO detection files,
  ``bbox`` = pixel ``[x, y, w, h]`` on the 1920×1080 frame; ``file_name`` = ``VV_S_FFFF.jpg``;
  tool classes come from each file's ``categories`` (variants with 14/15/16 classes exist).
- ``annotations/coco_format/bbox/by_split/hand/{train,val,test}.json`` ⚠ (the hand file's place
  is assumed): COCO hand boxes, ids 1–4 ``Own hands left`` … ``Other hands right``.
- ``annotations/phase/<VV>_<S>.csv`` ⚠ (folder assumed): header ``Frame,Phase``; ``Frame`` is the
  image stem ``VV_S_FFFF``, ``Phase`` a lower-case phase name (P1 ``disinfection`` … P9 ``dressing``).

Canonical form: one video per session ``VV_S`` (a frame store: ``frame_files`` keyed by ``FFFF``,
``native_fps`` = the configured fps; records write ``metadata.video_id`` ``VV_S`` and the id
``fps$VV_S_part0$first$last`` as published); the official split by video number (train 01 02 03 06 08 11
12 13 14 15, val 09 10, test 04 05 07); phase runs (consecutive frames with one phase) become
``phase`` events ending one frame after their last frame; boxes become pixel xyxy.

Track linking (COCO has no track ids): per video and category, boxes on annotated frames at most
``max_gap_frames`` apart continue a track; when a frame holds several boxes of a category, each
running track takes the box with the best IoU (greedy, IoU ≥ ``min_link_iou``), and the other boxes
start new tracks (see :func:`link_tracks`). A lone box following a lone track always continues it.

Everything path-like, the fps and the file-name regex are config fields, so another release layout
needs a config, not code.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvbench.builders.base import (Box, BuilderConfig, Event, SourceBuilder, Track, VideoAnnotation, VideoMeta,
                                   register_builder)
from mvbench.builders.common import clip_box, key_spacing, link_tracks, load_json, read_csv, xywh_to_xyxy
from mvbench.errors import InputError

PHASES: tuple[str, ...] = ("disinfection", "design", "anesthesia", "incision", "dissection", "hemostasis",
                           "irrigation", "closure", "dressing")
TOOL_CLASSES: tuple[str, ...] = ("Bipolar Forceps", "Electric Cautery", "Forceps", "Gauze", "Hook", "Mouth Gag",
                                 "Needle Holders", "Raspatory", "Retractor", "Scalpel", "Scissors", "Skewer",
                                 "Suction Cannula", "Syringe", "Tweezers")
HAND_CLASSES: tuple[str, ...] = ("Own hands left", "Own hands right", "Other hands left", "Other hands right")
OFFICIAL_SPLIT: dict[str, str] = {
    **{v: "train" for v in ("01", "02", "03", "06", "08", "11", "12", "13", "14", "15")},
    **{v: "val" for v in ("09", "10")},
    **{v: "test" for v in ("04", "05", "07")},
}
TOOL_COCO_DIR = "annotations/coco_format/bbox/by_split/tool"
HAND_COCO_DIR = "annotations/coco_format/bbox/by_split/hand"


@dataclass
class EgoSurgeryConfig(BuilderConfig):
    """Options of the EgoSurgery reader (all layout facts are ⚠, hence configurable).

    Args:
        fps: the rate of the frame index ``FFFF`` (⚠ 0.5: frame k ↔ 2k s).
        frame_regex: matches an image stem; named groups ``video``, ``session``, ``frame``.
        images_dir: folder of ``<VV>/<VV>_<S>_<FFFF>.jpg`` images.
        tool_coco_dir / hand_coco_dir: folders of per-split COCO files (``*.json``); an empty
            string disables that kind.
        phase_dir: folder of ``<VV>_<S>.csv`` phase files.
        phase_labels: the phase vocabulary, in procedure order (CSV labels are lower-cased).
        split_by_video: video number → official split.
        max_gap_frames: the largest frame step inside one phase run or one track.
        min_link_iou: see :func:`link_tracks`.
        box_tolerance_px: boxes may overflow the frame by this much (then clipped, reported).
        end_tolerance_s: a phase row may lie this far past the last image (then clipped, reported).
    """

    fps: float = 0.5
    frame_regex: str = r"^(?P<video>\d{2})_(?P<session>\d+)_(?P<frame>\d+)$"
    images_dir: str = "images"
    tool_coco_dir: str = TOOL_COCO_DIR
    hand_coco_dir: str = HAND_COCO_DIR
    phase_dir: str = "annotations/phase"
    phase_labels: tuple[str, ...] = PHASES
    split_by_video: dict[str, str] = field(default_factory=lambda: dict(OFFICIAL_SPLIT))
    max_gap_frames: int = 1
    min_link_iou: float = 0.1
    box_tolerance_px: float = 2.0
    end_tolerance_s: float = 4.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fps <= 0:
            raise ValueError("fps must be > 0 (EgoSurgery frames are reported at 0.5 fps)")
        try:
            groups = re.compile(self.frame_regex).groupindex
        except re.error as e:
            raise ValueError(f"frame_regex does not compile: {e}") from None
        if not {"video", "session", "frame"} <= set(groups):
            raise ValueError("frame_regex needs the named groups video, session and frame")
        if self.max_gap_frames < 1:
            raise ValueError("max_gap_frames must be >= 1")
        if not 0.0 <= self.min_link_iou <= 1.0:
            raise ValueError("min_link_iou must lie in [0, 1]")
        if not self.phase_labels:
            raise ValueError("phase_labels must not be empty")
        self.phase_labels = tuple(p.lower() for p in self.phase_labels)


@dataclass
class _Box:
    """One COCO box, resolved to a session and frame."""

    session: str
    frame: int
    label: str
    kind: str
    box: Box
    where: tuple[Path, str]


@register_builder
class EgoSurgeryBuilder(SourceBuilder):
    """EgoSurgery sessions → phase events and tool/hand tracks."""

    name = "egosurgery"
    data_source = "EgoSurgery"
    tasks = ("RC", "STG", "NAP", "TAG", "DVC", "VS")
    config_class = EgoSurgeryConfig
    config: EgoSurgeryConfig

    def __init__(self, root: str | Path, config: BuilderConfig | None = None, **overrides: Any):
        super().__init__(root, config, **overrides)
        self._regex = re.compile(self.config.frame_regex)
        self._images: dict[str, dict[int, Path]] | None = None
        self._boxes: dict[str, list[_Box]] | None = None
        self._sizes: dict[str, tuple[int, int]] = {}

    # ---- raw indexes (built once per builder) -------------------------------------------------

    def _parse_stem(self, stem: str, path: Path, record: object) -> tuple[str, int]:
        m = self._regex.match(stem)
        if not m:
            raise InputError(f"frame name {stem!r} does not match {self.config.frame_regex!r}", path, record)
        return f"{m['video']}_{m['session']}", int(m["frame"])

    def _image_index(self) -> dict[str, dict[int, Path]]:
        if self._images is None:
            index: dict[str, dict[int, Path]] = defaultdict(dict)
            folder = self.root / self.config.images_dir
            if folder.is_dir():
                for path in sorted(folder.glob("*/*.jpg")):
                    if self._regex.match(path.stem):
                        session, frame = self._parse_stem(path.stem, path, path.name)
                        index[session][frame] = path
            self._images = dict(index)
        return self._images

    def _coco_files(self) -> list[tuple[str, Path]]:
        files = []
        for kind, sub in (("tool", self.config.tool_coco_dir), ("hand", self.config.hand_coco_dir)):
            if sub and (self.root / sub).is_dir():
                files += [(kind, p) for p in sorted((self.root / sub).glob("*.json"))]
        return files

    def _phase_files(self) -> dict[str, Path]:
        folder = self.root / self.config.phase_dir
        if not folder.is_dir():
            return {}
        return {p.stem: p for p in sorted(folder.glob("*.csv"))}

    def _box_index(self) -> dict[str, list[_Box]]:
        if self._boxes is None:
            index: dict[str, list[_Box]] = defaultdict(list)
            for kind, path in self._coco_files():
                for b in self._read_coco(path, kind):
                    index[b.session].append(b)
            self._boxes = dict(index)
        return self._boxes

    def _read_coco(self, path: Path, kind: str) -> list[_Box]:
        """All boxes of one COCO file; checks ids, sizes and box extents."""
        data = load_json(path)
        if not isinstance(data, dict) or not all(isinstance(data.get(k), list)
                                                 for k in ("images", "annotations", "categories")):
            raise InputError("not a COCO detection file: needs lists images, annotations and categories", path)
        try:
            categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"malformed categories entry: {e}", path, "categories") from None
        images: dict[int, tuple[str, int, int | None, int | None]] = {}
        for i, im in enumerate(data["images"]):
            try:
                stem = Path(str(im["file_name"])).stem
                session, frame = self._parse_stem(stem, path, f"images[{i}]")
                images[int(im["id"])] = (session, frame, im.get("width"), im.get("height"))
            except (KeyError, TypeError, ValueError) as e:
                raise InputError(f"malformed image entry: {e}", path, f"images[{i}]") from None
            if im.get("width") and im.get("height"):
                self._sizes.setdefault(session, (int(im["width"]), int(im["height"])))
        out = []
        tol = self.config.box_tolerance_px
        for i, ann in enumerate(data["annotations"]):
            record = f"annotations[{i}] (id={ann.get('id') if isinstance(ann, dict) else '?'})"
            try:
                image_id, cat_id, bbox = int(ann["image_id"]), int(ann["category_id"]), ann["bbox"]
                if len(bbox) != 4:
                    raise ValueError(f"bbox has {len(bbox)} numbers, not 4")
                box = xywh_to_xyxy(bbox)
            except (KeyError, TypeError, ValueError) as e:
                raise InputError(f"malformed annotation: {e}", path, record) from None
            if cat_id not in categories:
                raise InputError(f"unknown category_id {cat_id}; the file's categories are "
                                 f"{sorted(categories)}", path, record)
            if image_id not in images:
                raise InputError(f"image_id {image_id} is not in the file's images", path, record)
            session, frame, width, height = images[image_id]
            if box[2] <= box[0] or box[3] <= box[1]:
                raise InputError(f"empty box {bbox} (w and h must be > 0)", path, record)
            if width and height:
                if box[0] < -tol or box[1] < -tol or box[2] > width + tol or box[3] > height + tol:
                    raise InputError(f"box {bbox} (xywh) lies outside the {width}x{height} frame", path, record)
                box = clip_box(box, int(width), int(height))
            out.append(_Box(session, frame, categories[cat_id], kind, box, (path, record)))
        return out

    # ---- contract --------------------------------------------------------------------------------

    def list_videos(self) -> list[str]:
        """Sessions ``VV_S`` named by images, COCO files or phase files."""
        phase = self._phase_files()
        if not phase and not self._coco_files():
            raise InputError(f"no EgoSurgery annotations: neither {self.config.phase_dir}/*.csv nor COCO files "
                             f"under {self.config.tool_coco_dir}", self.root)
        return sorted(set(self._image_index()) | set(phase) | set(self._box_index()))

    def read_video(self, video_id: str) -> VideoAnnotation:
        """Phase events and tool/hand tracks of one session ``VV_S``."""
        cfg = self.config
        frames = self._image_index().get(video_id)
        phase_path = self._phase_files().get(video_id)
        boxes = self._box_index().get(video_id, [])
        number = video_id.split("_")[0]
        media = "present"
        if not frames:
            if phase_path is None and not boxes:
                raise InputError(f"unknown video id {video_id!r}", self.root)
            if not self.plan_only:
                raise InputError(f"session {video_id} is annotated but has no images "
                                 f"({cfg.images_dir}/{number}/{video_id}_*.jpg); --plan-only plans it from the "
                                 f"annotations alone", self.root / cfg.images_dir, video_id)
            # Plan from the annotations: the labelled frames stand for the images.
            labelled = {b.frame for b in boxes} | set(self._phase_frames(phase_path, video_id))
            frames = {f: self.root / cfg.images_dir / number / f"{video_id}_{f:04d}.jpg" for f in labelled}
            media = "absent"
        num_frames = max(frames) + 1
        size = self._sizes.get(video_id) or (_image_size(frames[min(frames)]) if media == "present"
                                             else (None, None))
        keys = sorted(self._phase_frames(phase_path, video_id)) if phase_path else sorted(frames)
        meta = VideoMeta(video_id=video_id, native_fps=cfg.fps, num_frames=num_frames,
                         duration_s=num_frames / cfg.fps, width=size[0], height=size[1],
                         frame_files=dict(sorted(frames.items())), split=cfg.split_by_video.get(number),
                         attrs={"video_number": number, "session": video_id.split("_", 1)[-1],
                                "view": "egocentric (head-mounted camera)", "setting": "open surgery",
                                # Published records: metadata.video_id "10_1", id "0.5$10_1_part0$…".
                                "metadata_video_id": video_id, "id_video": f"{video_id}_part0",
                                "media": media,
                                "label_keys": key_spacing(keys, cfg.max_gap_frames, 0.0).as_attrs(cfg.fps)})
        ann = VideoAnnotation(source=self.name, data_source=self.data_source, video=meta,
                              vocab={"phase": list(cfg.phase_labels)})
        if meta.split is None:
            ann.issues.append(f"video number {number} is in no official split")
        if media == "absent":
            ann.issues.append("no images: planned from the annotations alone (the labelled frames stand for them)")
        if phase_path is None:
            ann.issues.append(f"no phase file {cfg.phase_dir}/{video_id}.csv: no phase events")
        else:
            ann.events = self._read_phases(phase_path, video_id, meta, ann.issues)
        ann.tracks = self._tracks(boxes, meta, ann.issues)
        ann.validate()
        return ann

    def _phase_frames(self, path: Path | None, video_id: str) -> list[int]:
        """The frame numbers a session's phase file labels (none without a file)."""
        if path is None:
            return []
        return [self._parse_stem(Path(row["Frame"]).stem, path, f"row {i}")[1]
                for i, row in enumerate(read_csv(path, expected=("Frame", "Phase")), start=2)]

    def _read_phases(self, path: Path, video_id: str, meta: VideoMeta, issues: list[str]) -> list[Event]:
        cfg = self.config
        labels: dict[int, str] = {}
        for i, row in enumerate(read_csv(path, expected=("Frame", "Phase")), start=2):
            session, frame = self._parse_stem(Path(row["Frame"]).stem, path, f"row {i}")
            if session != video_id:
                raise InputError(f"frame {row['Frame']} belongs to session {session}, not {video_id}", path,
                                 f"row {i}")
            phase = row["Phase"].strip().lower()
            if phase not in cfg.phase_labels:
                raise InputError(f"unknown phase {row['Phase']!r}; known: {list(cfg.phase_labels)}", path,
                                 f"row {i}")
            if frame / cfg.fps > meta.duration_s + cfg.end_tolerance_s:
                raise InputError(f"frame {frame} ({frame / cfg.fps:.1f}s) lies past the last image "
                                 f"({meta.duration_s:.1f}s)", path, f"row {i}")
            labels[frame] = phase
        events = []
        for label, run in _runs(labels, cfg.max_gap_frames):
            start, end = run[0] / cfg.fps, (run[-1] + 1) / cfg.fps
            if end > meta.duration_s:
                issues.append(f"phase {label} ends at {end:.1f}s, past the video end {meta.duration_s:.1f}s: clipped")
                end = meta.duration_s
                start = min(start, end)
            events.append(Event(label=label, start_s=start, end_s=end, kind="phase",
                                attrs={"first_frame": run[0], "last_frame": run[-1]}))
        return events

    def _tracks(self, boxes: list[_Box], meta: VideoMeta, issues: list[str]) -> list[Track]:
        cfg = self.config
        by_label: dict[tuple[str, str], list[tuple[int, Box]]] = defaultdict(list)
        for b in boxes:
            if b.frame / cfg.fps > meta.duration_s + cfg.end_tolerance_s:
                raise InputError(f"box on frame {b.frame} ({b.frame / cfg.fps:.1f}s) lies past the last image "
                                 f"({meta.duration_s:.1f}s)", *b.where)
            by_label[(b.kind, b.label)].append((b.frame, b.box))
        missing = sorted({b.frame for b in boxes} - set(meta.frame_files or {}))
        if missing:
            issues.append(f"{len(missing)} annotated frame(s) have no image file, e.g. frame {missing[0]}")
        tracks = []
        for (kind, label), obs in sorted(by_label.items()):
            for n, run in enumerate(link_tracks(obs, cfg.max_gap_frames, cfg.min_link_iou)):
                tracks.append(Track(label=label, track_id=f"{kind}:{label}:{n}", kind=kind,  # type: ignore[arg-type]
                                    boxes={f / cfg.fps: box for f, box in sorted(run.items())},
                                    attrs={"first_frame": min(run), "last_frame": max(run)}))
        return tracks

    @classmethod
    def detect(cls, root: str | Path) -> bool:
        """A tree with EgoSurgery COCO tool files or phase CSVs (``images/`` is optional: ``--plan-only``)."""
        root = Path(root)
        return any((root / TOOL_COCO_DIR).glob("*.json")) or any((root / "annotations/phase").glob("*_*.csv"))


def _runs(labels: dict[int, str], max_gap: int) -> list[tuple[str, list[int]]]:
    """Group frame → label into runs of one label over frames at most ``max_gap`` apart."""
    runs: list[tuple[str, list[int]]] = []
    for frame in sorted(labels):
        label = labels[frame]
        if runs and runs[-1][0] == label and frame - runs[-1][1][-1] <= max_gap:
            runs[-1][1].append(frame)
        else:
            runs.append((label, [frame]))
    return runs


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError) as e:
        raise InputError(f"cannot read image: {e}", path) from None
