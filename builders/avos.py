"""AVOS (Annotated Videos of Open Surgery, Goodman et al., arXiv 2112.07219): YouTube open-surgery videos.

⚠ No official release format is public. This reader accepts the documented third-party files:

- ``detections/{train,val,test}.csv`` (3P orrzohar/opensurgery-simple ``data/AVOS/detections``):
  RetinaNet CSV without header, ``path,x1,y1,x2,y2,class_name``, **absolute pixel xyxy**, one box
  per row; ``path,,,,,`` marks a negative (box-free) image. Images are named
  ``<11-char YouTube id>-<9-digit frame>.jpg``. The split of a video is the file it appears in.
- ``detections/hand_tool_class_names.csv``: ``class_name,id`` rows (``bovie,0`` ``forceps,1``
  ``needledriver,2`` ``hand,3``); the class list is read from it when present.
- ``actions/segments.csv`` ⚠ (our documented format): header ``video_id,start_s,end_s,label``,
  seconds from the video start, labels ``cutting`` / ``tying`` / ``suturing``.
- ``videos/<youtube_id>.mp4``; or, when no video file exists, the MedVidBench frame store
  ``frames_15fps/<youtube_id>/<frame>.jpg``. Neither is needed for a plan (``--plan-only``): a
  video without media is then planned from its annotations alone, its length taken as the end of
  its last segment or labelled frame (reported; ``attrs["media"] = "absent"``).

Time base ⚠: detection frame numbers are taken as numbers in MedVidBench's 15-fps store, so
``t = frame / 15`` s (``store_fps``); they are also assumed to be on the video's own pixel grid
(boxes are checked against the video's size). A video file is indexed in the same 15-fps
numbering (``native_fps = store_fps``), so record ids match MedVidBench's (``…&&0&&420&&0.5``)
whatever rate the download runs at; its real fps (``attrs["decode_fps"]``) is used only to
decode native frame ``n`` as file frame ``round(n / 15 * decode_fps)``.

Tracks: boxes of one class are linked over detection frames at most ``max_gap_s`` apart with
:func:`mvbench.builders.common.link_tracks` (greedy IoU; several hands in one frame give several
tracks). Actions become ``action`` events sorted by start (NAP's "next" is the next segment).
The third-party CSVs label frames tens of seconds apart (median about 28 s), so with the default
gap every track holds one box and STG gets no instance: the build reports it with the options
that change it (a larger ``max_gap_s``, or ``--stg-keyframes``: one question per labelled box).
Each video's spacing of labelled frames goes to ``attrs["label_keys"]``.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from mvbench.builders.base import (Box, BuilderConfig, Event, SourceBuilder, Track, VideoAnnotation, VideoMeta,
                                   register_builder)
from mvbench.builders.common import clip_box, key_spacing, link_tracks, read_csv
from mvbench.errors import InputError

CLASSES: tuple[str, ...] = ("bovie", "forceps", "needledriver", "hand")
ACTIONS: tuple[str, ...] = ("cutting", "tying", "suturing")
SEGMENT_COLUMNS = ("video_id", "start_s", "end_s", "label")


@dataclass
class AVOSConfig(BuilderConfig):
    """Options of the AVOS reader.

    Args:
        detections_dir: folder of the RetinaNet CSVs, one per split (``<split>.csv``).
        splits: the split file names read from ``detections_dir``.
        class_names_csv: ``name,id`` class list (falls back to ``bovie forceps needledriver hand``).
        segments_csv: the action segment CSV (``video_id,start_s,end_s,label``); may be absent.
        action_labels: the action vocabulary (NAP list order).
        videos_dir / video_ext: where ``<id><ext>`` video files live.
        frame_store_dir: fallback frame store ``<dir>/<id>/<frame>.jpg`` at ``store_fps``.
        store_fps: the rate of detection frame numbers and of the frame store (⚠ 15).
        image_regex: parses a detection image name; named groups ``video`` and ``frame``.
        max_gap_s: the largest time step inside one track.
        min_link_iou: IoU needed to continue a track when a frame holds several boxes of a class.
        missing_video: ``"error"`` (listed but absent video → InputError) or ``"skip"`` (left out of
            ``list_videos``; many YouTube videos are no longer downloadable).
        box_tolerance_px / end_tolerance_s: overflow tolerated (then clipped and reported).
    """

    detections_dir: str = "detections"
    splits: tuple[str, ...] = ("train", "val", "test")
    class_names_csv: str = "detections/hand_tool_class_names.csv"
    segments_csv: str = "actions/segments.csv"
    action_labels: tuple[str, ...] = ACTIONS
    videos_dir: str = "videos"
    video_ext: str = ".mp4"
    frame_store_dir: str = "frames_15fps"
    store_fps: float = 15.0
    image_regex: str = r"^(?P<video>[A-Za-z0-9_-]{11})-(?P<frame>\d+)\.(?:jpg|jpeg|png)$"
    max_gap_s: float = 2.0
    min_link_iou: float = 0.1
    missing_video: str = "error"
    box_tolerance_px: float = 2.0
    end_tolerance_s: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.store_fps <= 0:
            raise ValueError("store_fps must be > 0 (MedVidBench's AVOS frame store is 15 fps)")
        try:
            groups = re.compile(self.image_regex).groupindex
        except re.error as e:
            raise ValueError(f"image_regex does not compile: {e}") from None
        if not {"video", "frame"} <= set(groups):
            raise ValueError("image_regex needs the named groups video and frame")
        if self.missing_video not in ("error", "skip"):
            raise ValueError("missing_video must be 'error' or 'skip'")
        if self.max_gap_s < 0 or not 0.0 <= self.min_link_iou <= 1.0:
            raise ValueError("max_gap_s must be >= 0 and min_link_iou in [0, 1]")
        if not self.action_labels:
            raise ValueError("action_labels must not be empty")
        self.action_labels = tuple(a.lower() for a in self.action_labels)


@dataclass
class _Detection:
    frame: int
    label: str | None  # None: a negative image
    box: Box | None
    split: str
    where: tuple[Path, str]


@register_builder
class AVOSBuilder(SourceBuilder):
    """AVOS YouTube videos → action events and tool/hand tracks."""

    name = "avos"
    data_source = "AVOS"
    tasks = ("TAG", "STG", "NAP", "DVC", "VS")
    id_style = "ampersand"  # kcOqlifSukA&&22425&&25124&&1.0
    config_class = AVOSConfig
    empty_task_options: ClassVar[dict[str, str]] = {
        "STG:single_box_tracks": "--stg-keyframes (one STG question per labelled box), or --option "
                                 "max_gap_s=<seconds> (link boxes of a class further apart into tracks)",
        "no_events": "--option segments_csv=<file> (the action segments: video_id,start_s,end_s,label)",
    }
    config: AVOSConfig

    def __init__(self, root: str | Path, config: BuilderConfig | None = None, **overrides: Any):
        super().__init__(root, config, **overrides)
        self._regex = re.compile(self.config.image_regex)
        self._detections: dict[str, list[_Detection]] | None = None
        self._segments: dict[str, list[tuple[float, float, str, str]]] | None = None

    # ---- raw files -------------------------------------------------------------------------------

    def _classes(self) -> tuple[str, ...]:
        path = self.root / self.config.class_names_csv
        if not path.is_file():
            return CLASSES
        rows = read_csv(path, header=False)
        names = []
        for i, row in enumerate(rows, start=1):
            if len(row) < 2 or not row[1].strip().lstrip("-").isdigit():
                raise InputError(f"expected 'class_name,id', got {row}", path, f"row {i}")
            names.append(row[0].strip())
        return tuple(names)

    def _detection_index(self) -> dict[str, list[_Detection]]:
        if self._detections is not None:
            return self._detections
        classes = set(self._classes())
        index: dict[str, list[_Detection]] = defaultdict(list)
        for split in self.config.splits:
            path = self.root / self.config.detections_dir / f"{split}.csv"
            if not path.is_file():
                continue
            for i, row in enumerate(read_csv(path, header=False), start=1):
                where = (path, f"row {i}")
                if len(row) != 6:
                    raise InputError(f"expected 6 columns 'path,x1,y1,x2,y2,class_name', got {len(row)}", *where)
                name = Path(row[0].strip()).name
                m = self._regex.match(name)
                if not m:
                    raise InputError(f"image name {name!r} is not '<youtube id>-<frame>.jpg'", *where)
                frame = int(m["frame"])
                if not any(c.strip() for c in row[1:]):
                    index[m["video"]].append(_Detection(frame, None, None, split, where))
                    continue
                label = row[5].strip()
                if label not in classes:
                    raise InputError(f"unknown class {label!r}; known: {sorted(classes)}", *where)
                try:
                    box = tuple(float(c) for c in row[1:5])
                except ValueError:
                    raise InputError(f"box {row[1:5]} is not four numbers", *where) from None
                if box[2] <= box[0] or box[3] <= box[1]:
                    raise InputError(f"empty box {list(box)} (needs x2 > x1 and y2 > y1)", *where)
                index[m["video"]].append(_Detection(frame, label, box, split, where))  # type: ignore[arg-type]
        self._detections = dict(index)
        return self._detections

    def _segment_index(self) -> dict[str, list[tuple[float, float, str, str]]]:
        if self._segments is not None:
            return self._segments
        index: dict[str, list[tuple[float, float, str, str]]] = defaultdict(list)
        path = self.root / self.config.segments_csv
        if path.is_file():
            for i, row in enumerate(read_csv(path, expected=SEGMENT_COLUMNS), start=2):
                label = row["label"].strip().lower()
                if label not in self.config.action_labels:
                    raise InputError(f"unknown action {row['label']!r}; known: {list(self.config.action_labels)}",
                                     path, f"row {i}")
                try:
                    start, end = float(row["start_s"]), float(row["end_s"])
                except ValueError:
                    raise InputError(f"start_s/end_s {row['start_s']!r}, {row['end_s']!r} are not numbers", path,
                                     f"row {i}") from None
                if not 0 <= start < end:
                    raise InputError(f"segment {start}-{end}s needs 0 <= start < end", path, f"row {i}")
                index[row["video_id"].strip()].append((start, end, label, f"row {i}"))
        self._segments = dict(index)
        return self._segments

    def _video_source(self, video_id: str) -> Path | None:
        """The video file or frame-store folder of a video, if present."""
        path = self.root / self.config.videos_dir / f"{video_id}{self.config.video_ext}"
        if path.is_file():
            return path
        store = self.root / self.config.frame_store_dir / video_id
        return store if store.is_dir() else None

    # ---- contract --------------------------------------------------------------------------------

    def list_videos(self) -> list[str]:
        """YouTube ids named by the detection or segment CSVs (and, with ``missing_video="skip"``, present)."""
        ids = set(self._detection_index()) | set(self._segment_index())
        if not ids:
            raise InputError(f"no AVOS annotations: neither {self.config.detections_dir}/<split>.csv nor "
                             f"{self.config.segments_csv} holds a row", self.root)
        if self.config.missing_video == "skip":
            ids = {v for v in ids if self._video_source(v) is not None}
        return sorted(ids)

    def read_video(self, video_id: str) -> VideoAnnotation:
        """Action events (seconds) and tracks (store frame / 15 s, pixel xyxy) of one YouTube video."""
        cfg = self.config
        detections = self._detection_index().get(video_id, [])
        segments = self._segment_index().get(video_id, [])
        if not detections and not segments:
            raise InputError(f"unknown video id {video_id!r}", self.root)
        meta = self._video_meta(video_id, detections, segments)
        ann = VideoAnnotation(source=self.name, data_source=self.data_source, video=meta,
                              vocab={"action": list(cfg.action_labels)})
        if meta.attrs.get("media") == "absent":
            ann.issues.append(f"no video file or frame store: planned from the annotations alone, the video "
                              f"taken to end at its last annotation ({meta.duration_s:.2f} s)")
        splits = sorted({d.split for d in detections})
        if len(splits) > 1:
            ann.issues.append(f"video appears in several detection splits {splits}: no official split")
        meta.split = splits[0] if len(splits) == 1 else None
        meta.attrs["negative_frames"] = sum(d.label is None for d in detections)
        ann.events = self._events(segments, meta, ann.issues)
        ann.tracks = self._tracks(detections, meta, ann.issues)
        ann.validate()
        return ann

    def _video_meta(self, video_id: str, detections: list[_Detection],
                    segments: list[tuple[float, float, str, str]]) -> VideoMeta:
        from mvbench.video.readers import probe

        cfg = self.config
        source = self._video_source(video_id)
        attrs: dict[str, Any] = {"youtube_id": video_id, "setting": "open surgery",
                                 "source_url": f"https://youtu.be/{video_id}"}
        boxed = sorted({d.frame for d in detections if d.label is not None})
        if boxed:
            attrs["label_keys"] = key_spacing(boxed, round(cfg.max_gap_s * cfg.store_fps), 0.0).as_attrs(cfg.store_fps)
        if source is None:
            where = (f"{cfg.videos_dir}/{video_id}{cfg.video_ext} nor {cfg.frame_store_dir}/{video_id}/")
            if not self.plan_only:
                raise InputError(f"video {video_id} is annotated but neither {where} exists: --option "
                                 f"missing_video=skip leaves such videos out, --plan-only plans them from the "
                                 f"annotations alone", self.root, video_id)
            # Plan from the annotations: the video lasts until its last segment or labelled frame.
            last = max([e for _, e, _, _ in segments] + [(d.frame + 1) / cfg.store_fps for d in detections])
            num_frames = max(1, math.ceil(last * cfg.store_fps - 1e-9))
            return VideoMeta(video_id=video_id, native_fps=cfg.store_fps, num_frames=num_frames,
                             duration_s=num_frames / cfg.store_fps, path=self.root / cfg.videos_dir /
                             f"{video_id}{cfg.video_ext}", attrs={**attrs, "media": "absent"})
        if source.is_file():
            # Index the file by the 15-fps store numbering MedVidBench's ids use, whatever rate the
            # download runs at; frames are converted to file frames only when decoding.
            info = probe(source)
            store_fps = self.config.store_fps
            num_frames = max(1, int(round(info.duration_s * store_fps)))
            return VideoMeta(video_id=video_id, native_fps=store_fps, num_frames=num_frames,
                             duration_s=info.duration_s, width=info.width, height=info.height, path=source,
                             attrs={**attrs, "decode_fps": info.fps, "decode_num_frames": info.num_frames})
        frames = {int(p.stem): p for p in source.iterdir() if p.stem.isdigit()}
        if not frames:
            raise InputError("frame store folder holds no '<frame>.jpg' images", source)
        info = probe([frames[min(frames)]], fps=self.config.store_fps)  # a one-image list: just its size
        num_frames = max(frames) + 1
        return VideoMeta(video_id=video_id, native_fps=self.config.store_fps, num_frames=num_frames,
                         duration_s=num_frames / self.config.store_fps, width=info.width, height=info.height,
                         frame_files=dict(sorted(frames.items())), attrs=attrs)

    def _events(self, segments: list[tuple[float, float, str, str]], meta: VideoMeta,
                issues: list[str]) -> list[Event]:
        path = self.root / self.config.segments_csv
        events = []
        for start, end, label, record in sorted(segments):
            if end > meta.duration_s + self.config.end_tolerance_s:
                raise InputError(f"segment {label} {start}-{end}s ends past the video end "
                                 f"{meta.duration_s:.2f}s", path, record)
            if end > meta.duration_s:
                issues.append(f"{record}: {label} ends at {end}s, past the video end {meta.duration_s:.2f}s: clipped")
                end = meta.duration_s
            events.append(Event(label=label, start_s=start, end_s=end, kind="action"))
        return events

    def _tracks(self, detections: list[_Detection], meta: VideoMeta, issues: list[str]) -> list[Track]:
        cfg = self.config
        tol = cfg.box_tolerance_px
        by_class: dict[str, list[tuple[int, Box]]] = defaultdict(list)
        for d in detections:
            if d.label is None or d.box is None:
                continue
            if d.frame / cfg.store_fps > meta.duration_s + cfg.end_tolerance_s:
                raise InputError(f"detection frame {d.frame} ({d.frame / cfg.store_fps:.2f}s) lies past the video "
                                 f"end {meta.duration_s:.2f}s", *d.where)
            x1, y1, x2, y2 = d.box
            w, h = meta.width or 0, meta.height or 0
            if w and h and (x1 < -tol or y1 < -tol or x2 > w + tol or y2 > h + tol):
                raise InputError(f"box {list(d.box)} lies outside the {w}x{h} video frame", *d.where)
            by_class[d.label].append((d.frame, clip_box(d.box, w, h) if w and h else d.box))
        gap = int(round(cfg.max_gap_s * cfg.store_fps))
        tracks = []
        for label, obs in sorted(by_class.items()):
            for n, run in enumerate(link_tracks(obs, gap, cfg.min_link_iou)):
                tracks.append(Track(label=label, track_id=f"{label}:{n}", kind="hand" if label == "hand" else "tool",
                                    boxes={f / cfg.store_fps: b for f, b in sorted(run.items())},
                                    attrs={"store_frames": sorted(run)}))
        return tracks

    @classmethod
    def detect(cls, root: str | Path) -> bool:
        """A tree with AVOS detection CSVs or a segment CSV (media is optional: ``--plan-only``)."""
        root = Path(root)
        return any((root / "detections").glob("*.csv")) or (root / "actions" / "segments.csv").is_file()
