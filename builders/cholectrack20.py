"""CholecTrack20: multi-perspective surgical tool tracking with phases, labelled at 1 fps.

Raw tree (CAMMA-public/cholectrack20: README figure ``images/ct20-folder.png``, utils/conversion.py,
DetEval/eval.py; the MedVidBench test records read ``.../Testing/VID25/Frames/034476.png``)::

    CholecTrack20/
      Training/VID02/VID02.json     labels
      Training/VID02/Frames/000001.png 000026.png ...   1-fps frames named by 25-fps frame number
      Validation/VIDxx/...          (the COCO converter names the frame folder ``images/``: also read)
      Testing/VID25/VID25.json, Frames/ and/or VID25.mp4

``VIDxx.json``: ``annotations`` ``{"<frame number>": [record per visible tool]}``, ``categories``
(``tools``, ``operator``; id → name tables in any CAMMA shape), ``video`` (``name``/``seq``, ``width``,
``height``, ``num_frames``, ``split``). A record has ``instrument``, ``tool_bbox``, ``operator``, the
track ids ``intraoperative_track`` / ``intracorporeal_track`` / ``visibility_track``, ``phase`` and flags.
``-1`` / ``-2`` mean absent, never a class or track id.

Time base (⚠ trap): labels are 1 fps but keyed by the **original 25-fps frame number** (keys step by
25: 1, 26, 51, ...; the PNGs carry the same numbers). The native index here is that frame number
(``native_fps = 25``, ``frame_files`` holds the PNGs that exist), so ``t = key / 25`` s, matching
the frame numbers of the official MedVidBench records. (source-formats.md gives ``(key - 1) / 25``;
the 0.04 s difference keeps time ↔ index exact for the VideoMeta contract.) A labelled frame stands
for the 25 frames up to the next label, so a run ``a..b`` is ``[a / 25, (b + 25) / 25]``, clipped.

Boxes: ``tool_bbox`` is normalised top-left ``x, y, w, h`` (the official code scales it by the frame
size); a box whose values exceed 1 is taken as pixels (the README prose shows pixel boxes). Output is
pixel xyxy on the ``video.width`` x ``video.height`` frame (else the first PNG's size, else 854x480).

Canonical output: tool tracks by the configured track id (default ``intraoperative_track``; label =
tool name, ``specimen bag`` for every spelling), phase events (``kind="phase"``) from the records'
phase ids with readable labels (``calotTriangleDissection`` → ``calot triangle dissection``; note
this source's 7th phase is ``gallbladder retraction``), and the official split from the folder.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvbench.builders.base import (
    Box,
    BuilderConfig,
    Event,
    SourceBuilder,
    Track,
    VideoAnnotation,
    VideoMeta,
    register_builder,
)
from mvbench.builders.cholect50 import (
    PROCEDURE,
    category_map,
    check_box,
    image_size,
    readable_phase,
    sequence_runs,
    video_number,
)
from mvbench.builders.common import (KeySpacing, cholec80_group, key_spacing, load_json, require_file,
                                     xywh_norm_to_xyxy, xywh_to_xyxy)
from mvbench.errors import InputError

TOOLS: tuple[str, ...] = ("grasper", "bipolar", "hook", "scissors", "clipper", "irrigator", "specimen bag")
# DetEval/eval.py valid_phases, in id order.
PHASES: tuple[str, ...] = ("preparation", "calotTriangleDissection", "clippingAndCutting", "gallbladderDissection",
                           "gallbladderPackaging", "cleaningAndCoagulation", "gallbladderRetraction")
# ⚠3P id order; the file's categories.operator wins when present.
OPERATORS: dict[int, str] = {0: "NULL", 1: "MSLH", 2: "ASRH", 3: "MSRH"}
SPLIT_FOLDERS: dict[str, str] = {"training": "train", "validation": "val", "testing": "test"}
TRACK_TYPES = ("intraoperative_track", "intracorporeal_track", "visibility_track")
DEFAULT_FRAME_SIZE = (854, 480)


def tool_name(name: str) -> str:
    """Tool name as questions write it: ``specimenbag`` / ``specimen-bag`` / ``specimen_bag`` → ``specimen bag``.

    >>> tool_name("specimen-bag"), tool_name("Hook")
    ('specimen bag', 'hook')
    """
    name = name.strip().lower().replace("_", " ").replace("-", " ")
    return "specimen bag" if name.replace(" ", "") == "specimenbag" else " ".join(name.split())


def _split_group(video_id: str) -> str | None:
    """``VIDnn`` → the Cholec80 split group of surgery ``nn`` (CholecTrack20 keeps Cholec80's numbers)."""
    digits = "".join(ch for ch in video_id if ch.isdigit())
    return cholec80_group(int(digits)) if digits else None


@dataclass
class CholecTrack20Config(BuilderConfig):
    """Options of the CholecTrack20 reader.

    Args:
        frame_dirs: frame folder names to look for in each video folder, in order.
        track_type: which track id makes a track (``intraoperative_track``: one id per tool for the whole
            surgery; ``intracorporeal_track``: per insertion; ``visibility_track``: per visible stretch).
        native_fps: rate of the frame numbers (the raw video's 25 fps).
        label_step: frame numbers between consecutive labelled frames (25 for 1-fps labels).
        prefer_frames: read the PNG folder when both it and ``VIDxx.mp4`` exist.
        merge_gap_s: phase runs separated by at most this many seconds of unlabelled frames are joined.
        merge_gap_keys: ... and by at most this many median key steps, whichever is larger (see
            :class:`mvbench.builders.common.KeySpacing`; the same as ``merge_gap_s`` for 1-fps labels).
        frame_size: (width, height) when neither the label file nor a frame gives it (planning
            without frames: ``--plan-only --option frame_size=WxH``).
        end_tolerance_s: labels this far past the last frame are dropped and reported; further ones raise.
        box_tolerance: boxes overhanging the frame by at most this fraction of its size are clipped.
        id_regex: video folder names to read.
    """

    frame_dirs: tuple[str, ...] = ("Frames", "images")
    track_type: str = "intraoperative_track"
    native_fps: float = 25.0
    label_step: int = 25
    prefer_frames: bool = True
    merge_gap_s: float = 1.0
    merge_gap_keys: float = 2.0
    end_tolerance_s: float = 2.0
    box_tolerance: float = 0.02
    id_regex: str = r"VID\d{2,}"
    frame_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.track_type not in TRACK_TYPES:
            raise ValueError(f"track_type must be one of {TRACK_TYPES}, not {self.track_type!r}")
        if self.native_fps <= 0 or self.label_step <= 0:
            raise ValueError("native_fps and label_step must be positive")
        if min(self.merge_gap_s, self.end_tolerance_s, self.box_tolerance) < 0:
            raise ValueError("merge_gap_s, end_tolerance_s and box_tolerance must be >= 0")
        if not self.frame_dirs:
            raise ValueError("frame_dirs must name at least one folder")
        re.compile(self.id_regex)


@register_builder
class CholecTrack20Builder(SourceBuilder):
    """CholecTrack20 → tool tracks (boxes every second) and phase events."""

    name = "cholectrack20"
    data_source = "CholecTrack20"
    tasks = ("STG", "RC", "TAG", "DVC", "NAP", "VS")
    primary_kind = "phase"  # DVC / NAP / VS use phases
    config_class = CholecTrack20Config
    config: CholecTrack20Config

    # ------------------------------------------------------------ listing
    def _video_dirs(self) -> dict[str, tuple[Path, str]]:
        """video id → (its folder, official split), from ``Training|Validation|Testing/VIDxx/VIDxx.json``."""
        pattern = re.compile(self.config.id_regex)
        found: dict[str, tuple[Path, str]] = {}
        for split_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            split = SPLIT_FOLDERS.get(split_dir.name.lower())
            if split is None:
                continue
            for vdir in sorted(split_dir.iterdir()):
                if vdir.is_dir() and pattern.fullmatch(vdir.name) and (vdir / f"{vdir.name}.json").is_file():
                    if vdir.name in found:
                        raise InputError(f"{vdir.name} appears in two split folders: {found[vdir.name][0]} "
                                         f"and {vdir}", self.root)
                    found[vdir.name] = (vdir, split)
        return found

    def list_videos(self) -> list[str]:
        found = self._video_dirs()
        if not found:
            raise InputError("no Training|Validation|Testing/VIDxx/VIDxx.json found", self.root)
        return sorted(found, key=lambda v: (video_number(v), v))

    @classmethod
    def detect(cls, root: str | Path) -> bool:
        root = Path(root)
        return any(p.is_dir() and p.name.lower() in SPLIT_FOLDERS and any(p.glob("VID*/VID*.json"))
                   for p in root.iterdir()) if root.is_dir() else False

    # ------------------------------------------------------------ reading
    def read_video(self, video_id: str) -> VideoAnnotation:
        found = self._video_dirs()
        if video_id not in found:
            raise InputError(f"no {video_id}/{video_id}.json under Training|Validation|Testing", self.root,
                             video_id)
        vdir, split = found[video_id]
        path = require_file(vdir / f"{video_id}.json", "CholecTrack20 label file")
        data = load_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("annotations"), dict):
            raise InputError("expected a JSON object with an 'annotations' object", path)
        issues: list[str] = []
        tools, operators, phases = self._vocabularies(data, path, issues)
        meta = self._video_meta(video_id, vdir, split, data, path, issues)

        by_track: dict[tuple[int, int], dict[int, Box]] = defaultdict(dict)
        track_operators: dict[tuple[int, int], Counter[str]] = defaultdict(Counter)
        phase_votes: dict[int, Counter[int]] = defaultdict(Counter)
        self._parse_annotations(data["annotations"], path, meta, tools, operators, phases, by_track,
                                track_operators, phase_votes, issues)

        tracks = self._tracks(by_track, track_operators, tools, meta, issues)
        keys = sorted(int(k) for k in data["annotations"])  # integers: checked by _parse_annotations
        cfg = self.config
        spacing = key_spacing(keys or [0], cfg.label_step + int(round(cfg.merge_gap_s * cfg.native_fps)),
                              cfg.merge_gap_keys)
        if keys:
            meta.attrs["label_keys"] = spacing.as_attrs(meta.native_fps)
        events = self._phase_events(phase_votes, phases, meta, spacing, keys)
        ann = VideoAnnotation(source=self.name, data_source=self.data_source, video=meta, events=events,
                              tracks=tracks,
                              vocab={"phase": [readable_phase(phases[k]) for k in sorted(phases)],
                                     "tool": sorted({t.label for t in tracks})},
                              issues=issues)
        ann.validate()
        return ann

    def _vocabularies(self, data: dict[str, Any], path: Path, issues: list[str]
                      ) -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
        cats = data.get("categories") or {}
        if not isinstance(cats, dict):
            raise InputError(f"'categories' must be an object, found {type(cats).__name__}", path, "categories")
        if "tools" in cats:
            tools = {k: tool_name(v) for k, v in category_map(cats["tools"], path, "categories.tools").items()}
            differing = [f"{k}: {v!r}" for k, v in sorted(tools.items()) if k < len(TOOLS) and v != TOOLS[k]]
            if differing:
                issues.append(f"categories.tools differs from the documented list at {differing[:3]}")
        else:
            tools = dict(enumerate(TOOLS))
            issues.append("no categories.tools in the label file; the documented list is used")
        operators = (category_map(cats["operator"], path, "categories.operator") if "operator" in cats
                     else dict(OPERATORS))
        phase_key = next((k for k in ("phase", "phases") if k in cats), None)
        phases = (category_map(cats[phase_key], path, f"categories.{phase_key}") if phase_key
                  else dict(enumerate(PHASES)))
        return tools, operators, phases

    def _video_meta(self, video_id: str, vdir: Path, split: str, data: dict[str, Any], path: Path,
                    issues: list[str]) -> VideoMeta:
        cfg = self.config
        info = data.get("video") if isinstance(data.get("video"), dict) else {}
        frame_dir = next((vdir / d for d in cfg.frame_dirs if (vdir / d).is_dir()), None)
        frames: dict[int, Path] = {}
        if frame_dir is not None:
            frames = {int(p.stem): p for p in frame_dir.iterdir()
                      if p.suffix.lower() in (".png", ".jpg") and p.stem.isdigit()}
        mp4 = vdir / f"{video_id}.mp4"
        attrs = {"procedure": PROCEDURE, "label_fps": cfg.native_fps / cfg.label_step, "split_folder": vdir.parent.name,
                 "split_group": _split_group(video_id)}
        size = self._declared_size(info, path) or cfg.frame_size
        if frames and (cfg.prefer_frames or not mp4.is_file()):
            width, height = size or image_size(frames[min(frames)])
            num_frames = max(frames) + 1
            return VideoMeta(video_id=video_id, native_fps=cfg.native_fps, num_frames=num_frames,
                             duration_s=num_frames / cfg.native_fps, width=width, height=height,
                             frame_files=frames, split=split, attrs=attrs)
        if mp4.is_file():
            from mvbench.video import probe

            vinfo = probe(mp4)
            if abs(vinfo.fps - cfg.native_fps) > 0.01:
                issues.append(f"{mp4.name} runs at {vinfo.fps:g} fps; frame numbers are read at {cfg.native_fps:g}")
            if size and size != (vinfo.width, vinfo.height):
                issues.append(f"label file says {size[0]}x{size[1]}, {mp4.name} is {vinfo.width}x{vinfo.height}")
            width, height = size or (vinfo.width, vinfo.height)
            return VideoMeta(video_id=video_id, native_fps=cfg.native_fps, num_frames=vinfo.num_frames,
                             duration_s=vinfo.num_frames / cfg.native_fps, width=width, height=height, path=mp4,
                             split=split, attrs=attrs)
        wanted = " or ".join(f"{d}/" for d in cfg.frame_dirs)
        if not self.plan_only:
            raise InputError(f"no frames for {video_id}: neither a {wanted} folder of NNNNNN.png nor {mp4.name}; "
                             f"--plan-only plans it from the labels alone", vdir)
        if size is None:
            raise InputError(f"no frames for {video_id} and no video.width/height in its label file: give the frame "
                             f"size with --option frame_size=WxH", path)
        # Plan from the labels: the labelled frames stand for the frame store.
        keys = [int(k) for k in data.get("annotations", {}) if str(k).lstrip("-").isdigit()]
        if not keys:
            raise InputError("no labelled frame to plan from", path, "annotations")
        frames = {k: vdir / cfg.frame_dirs[0] / f"{k:06d}.png" for k in keys}
        issues.append("no frames or video file: planned from the labels alone (the labelled frames stand for them)")
        return VideoMeta(video_id=video_id, native_fps=cfg.native_fps, num_frames=max(frames) + 1,
                         duration_s=(max(frames) + 1) / cfg.native_fps, width=size[0], height=size[1],
                         frame_files=frames, split=split, attrs={**attrs, "media": "absent"})

    @staticmethod
    def _declared_size(info: dict[str, Any], path: Path) -> tuple[int, int] | None:
        w, h = info.get("width"), info.get("height")
        if w is None and h is None:
            return None
        if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
            raise InputError(f"video.width/height must be positive integers, found {w!r} x {h!r}", path, "video")
        return w, h

    def _parse_annotations(self, annotations: dict[str, Any], path: Path, meta: VideoMeta, tools: dict[int, str],
                           operators: dict[int, str], phases: dict[int, str],
                           by_track: dict[tuple[int, int], dict[int, Box]],
                           track_operators: dict[tuple[int, int], Counter[str]],
                           phase_votes: dict[int, Counter[int]], issues: list[str]) -> None:
        cfg = self.config
        assert meta.width is not None and meta.height is not None
        last_ok = meta.num_frames - 1 + int(round(cfg.end_tolerance_s * cfg.native_fps))
        counts: Counter[str] = Counter()
        residues: Counter[int] = Counter()
        for key, records in annotations.items():
            where = f"annotations[{key!r}]"
            try:
                frame = int(key)
            except ValueError:
                raise InputError("frame number is not an integer", path, where) from None
            if frame < 0 or frame > last_ok:
                raise InputError(f"frame {frame} is past the last frame {meta.num_frames - 1} of {meta.video_id} "
                                 f"(tolerance {cfg.end_tolerance_s}s)", path, where)
            if frame >= meta.num_frames:
                counts["past_end"] += 1
                continue
            residues[frame % cfg.label_step] += 1
            if meta.frame_files is not None and frame not in meta.frame_files:
                counts["no_image"] += 1
            if not isinstance(records, list):
                raise InputError("expected a list of tool records", path, where)
            for n, rec in enumerate(records):
                rwhere = f"{where}[{n}]"
                if not isinstance(rec, dict):
                    raise InputError(f"expected a tool record object, found {rec!r}", path, rwhere)
                phase = self._class_id(rec.get("phase", -1), phases, "phase", path, rwhere)
                if phase is not None:
                    phase_votes[frame][phase] += 1
                instrument = self._class_id(rec.get("instrument", rec.get("category", -1)), tools, "instrument",
                                            path, rwhere)
                if instrument is None:
                    counts["no_instrument"] += 1
                    continue
                box = self._box(rec.get("tool_bbox"), meta, path, rwhere, counts)
                if box is None:
                    continue
                tid = rec.get(cfg.track_type, rec.get(f"{cfg.track_type}_id", -1))
                if isinstance(tid, bool) or not isinstance(tid, (int, float)) or int(tid) != tid:
                    raise InputError(f"{cfg.track_type} must be an integer, found {tid!r}", path, rwhere)
                if tid < 0:
                    counts["no_track"] += 1
                    continue
                track = by_track[(int(tid), instrument)]
                if frame in track:
                    counts["duplicate"] += 1
                    continue
                track[frame] = box
                op = rec.get("operator", -1)
                if isinstance(op, int) and op >= 0:
                    track_operators[(int(tid), instrument)][operators.get(op, str(op))] += 1
        if len(residues) > 1:
            issues.append(f"labelled frame numbers are not all ≡ {residues.most_common(1)[0][0]} "
                          f"(mod {cfg.label_step}): {dict(residues)}")
        messages = {"past_end": "labelled frame(s) past the last frame dropped",
                    "no_image": "labelled frame(s) without a frame image",
                    "no_instrument": "record(s) without an instrument id (-1/-2) skipped",
                    "no_box": "record(s) without a box skipped",
                    "empty_box": "empty box(es) dropped",
                    "clipped": "box(es) overhanging the frame clipped",
                    "no_track": f"boxed record(s) with no {cfg.track_type} id skipped",
                    "duplicate": "duplicate box(es) of one track in one frame dropped"}
        issues.extend(f"{counts[k]} {msg}" for k, msg in messages.items() if counts[k])

    def _box(self, raw: Any, meta: VideoMeta, path: Path, where: str, counts: Counter[str]) -> Box | None:
        """``tool_bbox`` → pixel xyxy, None when absent or empty."""
        assert meta.width is not None and meta.height is not None
        if raw is None or (isinstance(raw, (int, float)) and raw < 0):
            counts["no_box"] += 1
            return None
        if not (isinstance(raw, list) and len(raw) == 4 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw)):
            raise InputError(f"tool_bbox must be 4 numbers [x, y, w, h], found {raw!r}", path, where)
        if any(v < 0 for v in raw[2:]) or all(v == -1 for v in raw):
            counts["no_box"] += 1
            return None
        if raw[2] == 0 or raw[3] == 0:
            counts["empty_box"] += 1
            return None
        pixels = max(raw) > 1
        box = xywh_to_xyxy(raw) if pixels else xywh_norm_to_xyxy(raw, meta.width, meta.height)
        box, changed = check_box(box, meta.width, meta.height, self.config.box_tolerance, path, where)
        counts["clipped"] += changed
        return box

    @staticmethod
    def _class_id(value: Any, names: dict[int, str], what: str, path: Path, where: str) -> int | None:
        """A category id; None for -1 / -2 (absent); anything else unknown raises."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise InputError(f"{what} must be an integer id, found {value!r}", path, where)
        if value < 0:
            return None
        if int(value) not in names:
            raise InputError(f"unknown {what} id {value!r} (known: {sorted(names)})", path, where)
        return int(value)

    def _tracks(self, by_track: dict[tuple[int, int], dict[int, Box]],
                track_operators: dict[tuple[int, int], Counter[str]], tools: dict[int, str], meta: VideoMeta,
                issues: list[str]) -> list[Track]:
        fps = meta.native_fps
        classes_of: dict[int, set[int]] = defaultdict(set)
        for tid, instrument in by_track:
            classes_of[tid].add(instrument)
        mixed = sorted(tid for tid, cls in classes_of.items() if len(cls) > 1)
        if mixed:
            issues.append(f"track id(s) {mixed} carry several instruments; split into one track per instrument")
        tracks = []
        for (tid, instrument), boxes in sorted(by_track.items()):
            track_id = f"{tid}" if tid not in mixed else f"{tid}-{tools[instrument].replace(' ', '_')}"
            ops = track_operators[(tid, instrument)]
            tracks.append(Track(label=tools[instrument], track_id=track_id,
                                boxes={f / fps: boxes[f] for f in sorted(boxes)}, kind="tool",
                                attrs={"track_type": self.config.track_type, "instrument_id": instrument,
                                       "operators": [o for o, _ in ops.most_common()]}))
        return tracks

    def _phase_events(self, phase_votes: dict[int, Counter[int]], phases: dict[int, str],
                      meta: VideoMeta, spacing: KeySpacing, keys: list[int]) -> list[Event]:
        """Runs of the per-frame phase (majority of the frame's records), joined across gaps up to the
        key spacing's tolerance; a run lasts until the next labelled frame (see :class:`KeySpacing`)."""
        per_frame = [(frame, votes.most_common(1)[0][0]) for frame, votes in phase_votes.items()]
        fps = meta.native_fps
        return [Event(label=readable_phase(phases[pid]), start_s=first / fps,
                      end_s=min(spacing.run_end(last, keys) / fps, meta.duration_s), kind="phase",
                      attrs={"phase_id": pid, "phase": phases[pid]})
                for pid, first, last in sequence_runs(per_frame, spacing.tolerance)]
