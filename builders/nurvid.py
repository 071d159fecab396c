"""NurViD (nursing procedures, minghu0830/NurViD-benchmark) → canonical annotations.

Raw root layout (the annotation release as published, plus the videos)::

    <root>/NurViD_annotations.json        all temporal annotations, keyed by YouTube id
    <root>/nurvid_procedures.tsv          optional: procedure table (both id bases), preferred
    <root>/nurvid_actions.tsv             optional: action table (both id bases), preferred
    <root>/procedure_action_ids.xlsx      the ID workbook (upstream ``Procedure&Action_ID.xlsx``),
                                          read when the TSVs are absent
    <root>/train.csv, val.csv, test.csv   task1&3 video-level splits (any may be absent)
    <root>/videos/<youtube_id>.mp4        the videos (folder and extension configurable)

JSON: ``{youtube_id: {operationID, annotations: [{actionID, segment: [start_s, end_s]}], duration,
resolution "WxH", fps, subset: null, url}}``. Times are **seconds** and are used as they are.
There are no boxes.

ID bases (the trap): JSON ``operationID``/``actionID`` and the task1&3 CSV labels are **1-based**;
the workbook ``ID`` column is **0-based** (= JSON id − 1). The TSVs carry both ids; with them the
JSON id is looked up directly, and the xlsx id is checked to be JSON id − 1.

Split CSVs: header ``path-label`` (the upstream misspelling ``path-lable`` is accepted), CRLF, rows
``/video_path/<youtube_id>.mp4 <label>`` separated by one space. The release ships train.csv and
test.csv but not val.csv, and its 173 videos in neither are exactly the upstream validation split
(1,054 + 311 + 173 = 1,538), so when ``val.csv`` is absent a video in no CSV is ``val``
(``unlisted="none"`` leaves it None, to be split by hash). A CSV label that disagrees with the JSON
``operationID`` is reported in ``issues``.

Videos may be absent (plan-only builds over the bare annotation release): ``VideoMeta.path`` is
then the *expected* location (``<root>/<videos_dir>/<id><video_ext>``), ``attrs["video_present"]``
is False, and the pipeline checks the file exists when it decodes. Without the file the length is
``max(duration, last segment end)`` (``duration`` is unreliable: 23 segments end > 1 s after it)
and ``num_frames = round(fps · length)`` at the JSON fps; the anomaly is reported. With the file the
video is probed, its real length is used, segments are clipped to it and clips are reported; a
segment that starts past the real end by more than ``end_tolerance_s`` raises InputError.

Other decisions:
- Zero-length segments (one in the release: ``xsqaL7c22q8``, actionID 29, [12.38, 12.38]) are
  dropped by default (``zero_length="drop"``) and reported, so they never become TAG/DVC spans;
  ``zero_length="keep"`` keeps them as events.
- Event labels are the English action names verbatim (typos included, e.g. "bedshee"); attrs hold
  the JSON ``action_id`` and the 1-based ``segment_index`` (the task2 clip number ``<id>_<k>.mp4``).
  Events are ordered by start time (ties: annotation order), so "next action" is meaningful.
- ``vocab["action"]`` is the sorted set of action names used by any video of the same procedure in
  the JSON (the official examples list them sorted: "Blood collection, Check, Disinfect skin, ...";
  the duplicate name "Defibrillate", xlsx ids 64 and 75, appears once).
- ``attrs["procedure"]`` is the full English procedure name; names repeat as prefixes
  ("Subcutaneous Injection" / "... Insulin"), so consumers must match whole names.
- ``attrs`` also records the JSON fps, duration and resolution: fixture stand-in videos have other
  rates and sizes than the real ones, which is harmless because annotation times are seconds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mvbench.builders.base import (
    BuilderConfig,
    Event,
    SourceBuilder,
    VideoAnnotation,
    VideoMeta,
    register_builder,
)
from mvbench.builders.common import load_json, read_csv, read_xlsx, require_file
from mvbench.errors import InputError

ANNOTATION_FILE = "NurViD_annotations.json"
PROCEDURES_TSV = "nurvid_procedures.tsv"
ACTIONS_TSV = "nurvid_actions.tsv"
ID_WORKBOOK = "procedure_action_ids.xlsx"
SPLIT_HEADERS = ("path-label", "path-lable")  # upstream task2 train CSV misspells the header
_RESOLUTION = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


@dataclass(frozen=True)
class Procedure:
    """One procedure of the ID table (``json_id`` is the 1-based JSON operationID)."""

    json_id: int
    name: str
    abbreviation: str | None = None


@dataclass
class NurVidConfig(BuilderConfig):
    """NurViD reader options.

    Args:
        annotation_file: the JSON annotation file, relative to the root.
        videos_dir: folder of the videos, relative to the root.
        video_ext: video file extension (``<youtube_id><video_ext>``).
        split_files: split name → CSV file name (relative to the root); absent files are skipped.
        zero_length: ``"drop"`` (default) or ``"keep"`` zero-length segments; either way reported.
        end_tolerance_s: a segment may start this far past the real video end before it is an
            error (it is dropped and reported within the tolerance); also the slack before a
            segment past the annotated ``duration`` counts as an anomaly.
        probe_videos: probe present video files for their real length, rate and size (False: trust
            the annotation file even when the video is there).
        unlisted: split of a video in no CSV when ``val.csv`` is absent: ``"val"`` (default, the
            upstream validation split) or ``"none"``.
    """

    annotation_file: str = ANNOTATION_FILE
    videos_dir: str = "videos"
    video_ext: str = ".mp4"
    split_files: tuple[tuple[str, str], ...] = (("train", "train.csv"), ("val", "val.csv"),
                                                 ("test", "test.csv"))
    zero_length: Literal["drop", "keep"] = "drop"
    end_tolerance_s: float = 1.0
    probe_videos: bool = True
    unlisted: Literal["val", "none"] = "val"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.unlisted not in ("val", "none"):
            raise ValueError(f"unlisted must be 'val' or 'none', not {self.unlisted!r}")
        if self.zero_length not in ("drop", "keep"):
            raise ValueError(f"zero_length must be 'drop' or 'keep', not {self.zero_length!r}")
        if self.end_tolerance_s < 0:
            raise ValueError("end_tolerance_s must be >= 0")
        if not self.video_ext.startswith("."):
            raise ValueError(f"video_ext must start with '.', not {self.video_ext!r}")
        self.split_files = tuple((str(s), str(f)) for s, f in self.split_files)


def _int_cell(value: Any, path: Path, record: str) -> int:
    try:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise InputError(f"expected an integer id, found {value!r}", path, record) from None


def _read_tsv_tables(root: Path) -> tuple[dict[int, Procedure], dict[int, str]]:
    """Procedures and actions from the two TSVs, keyed by JSON (1-based) id."""
    procedures: dict[int, Procedure] = {}
    p_path = root / PROCEDURES_TSV
    rows = read_csv(p_path, delimiter="\t",
                    expected=["xlsx_id", "json_operationID", "english_name", "abbreviation"])
    for i, row in enumerate(rows, start=2):
        json_id = _int_cell(row["json_operationID"], p_path, f"row {i}")
        xlsx_id = _int_cell(row["xlsx_id"], p_path, f"row {i}")
        if xlsx_id != json_id - 1:
            raise InputError(f"xlsx_id {xlsx_id} is not json_operationID {json_id} - 1 (ID-base trap)",
                             p_path, f"row {i}")
        procedures[json_id] = Procedure(json_id, row["english_name"], row["abbreviation"] or None)
    actions: dict[int, str] = {}
    a_path = root / ACTIONS_TSV
    for i, row in enumerate(read_csv(a_path, delimiter="\t",
                                     expected=["xlsx_id", "json_actionID", "english_name"]), start=2):
        json_id = _int_cell(row["json_actionID"], a_path, f"row {i}")
        xlsx_id = _int_cell(row["xlsx_id"], a_path, f"row {i}")
        if xlsx_id != json_id - 1:
            raise InputError(f"xlsx_id {xlsx_id} is not json_actionID {json_id} - 1 (ID-base trap)",
                             a_path, f"row {i}")
        actions[json_id] = row["english_name"]
    return procedures, actions


def _read_workbook_tables(path: Path) -> tuple[dict[int, Procedure], dict[int, str]]:
    """Procedures and actions from the ID workbook (0-based ``ID`` → JSON id = ID + 1).

    The sheet has a group-header row (Procedure | Action), then a column-name row with two ``ID``
    columns: the first starts the procedure block, the second the action block.
    """
    rows = read_xlsx(path)
    head_at = next((i for i, r in enumerate(rows[:5])
                    if sum(1 for c in r if isinstance(c, str) and c.strip() == "ID") >= 2), None)
    if head_at is None:
        raise InputError("no column-name row with two 'ID' columns (Procedure | Action blocks)", path)
    head = [c.strip() if isinstance(c, str) else c for c in rows[head_at]]
    id_cols = [j for j, c in enumerate(head) if c == "ID"]

    def column(name: str, start: int, stop: int) -> int | None:
        return next((j for j in range(start, stop) if head[j] == name), None)

    p_id, a_id = id_cols[0], id_cols[1]
    p_name, a_name = column("English name", p_id, a_id), column("English name", a_id, len(head))
    p_abbr = column("Abbreviation", p_id, a_id)
    if p_name is None or a_name is None:
        raise InputError(f"column-name row lacks 'English name' in a block; found {head}", path,
                         f"row {head_at + 1}")
    procedures: dict[int, Procedure] = {}
    actions: dict[int, str] = {}
    for i, row in enumerate(rows[head_at + 1:], start=head_at + 2):
        row = row + [None] * (len(head) - len(row))
        if row[p_id] is not None:
            json_id = _int_cell(row[p_id], path, f"row {i}") + 1
            abbr = row[p_abbr] if p_abbr is not None else None
            procedures[json_id] = Procedure(json_id, str(row[p_name]).strip(),
                                            str(abbr).strip() if abbr else None)
        if row[a_id] is not None:
            actions[_int_cell(row[a_id], path, f"row {i}") + 1] = str(row[a_name]).strip()
    return procedures, actions


def read_id_tables(root: Path) -> tuple[dict[int, Procedure], dict[int, str]]:
    """The procedure and action names keyed by JSON (1-based) id: the TSVs if present, else the xlsx.

    Args:
        root: the NurViD raw root.

    Returns:
        ``(procedures, actions)``: ``{operationID: Procedure}`` and ``{actionID: English name}``.

    Raises:
        InputError: neither table is present, or one is malformed.
    """
    if (root / PROCEDURES_TSV).is_file() and (root / ACTIONS_TSV).is_file():
        return _read_tsv_tables(root)
    if (root / ID_WORKBOOK).is_file():
        return _read_workbook_tables(root / ID_WORKBOOK)
    raise InputError(f"no procedure/action names: expected {PROCEDURES_TSV} + {ACTIONS_TSV} "
                     f"or {ID_WORKBOOK}", root)


def read_split_csv(path: Path) -> dict[str, int]:
    """A task1&3 split CSV: ``{youtube_id: label}`` (label 1-based, = JSON operationID).

    Raises:
        InputError: a bad header, or a row that is not ``<path> <integer label>``.
    """
    rows = read_csv(path, header=False)
    if not rows or rows[0][0].strip() not in SPLIT_HEADERS:
        raise InputError(f"expected the header 'path-label', found {rows[0] if rows else 'nothing'}",
                         path, "row 1")
    out: dict[str, int] = {}
    for i, row in enumerate(rows[1:], start=2):
        line = ",".join(row).strip()
        parts = line.rsplit(" ", 1)
        if len(parts) != 2 or not parts[1].strip().lstrip("-").isdigit():
            raise InputError(f"expected '<path> <label>', found {line!r}", path, f"row {i}")
        name = parts[0].strip().rsplit("/", 1)[-1]
        out[name.rsplit(".", 1)[0] if "." in name else name] = int(parts[1])
    return out


def parse_resolution(value: Any, path: Path, video_id: str) -> tuple[int, int]:
    """``(width, height)`` from a ``"WxH"`` resolution; InputError naming the file and video otherwise."""
    m = _RESOLUTION.match(str(value))
    if not m:
        raise InputError(f"resolution {value!r} is not 'WxH'", path, video_id)
    return int(m.group(1)), int(m.group(2))


def _number(value: Any, path: Path, record: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{what} must be a number, found {value!r}", path, record)
    return float(value)


@register_builder
class NurVidBuilder(SourceBuilder):
    """NurViD: nursing procedure videos with action segments (seconds, no boxes)."""

    name = "nurvid"
    data_source = "NurViD"
    tasks = ("TAG", "DVC", "NAP", "VS")
    id_style = "ampersand_seconds"  # vR0_BaXYcE4&&19.50&&75.20&&1.0
    clip_metadata = "seconds"  # input_video_start_time / input_video_end_time
    dvc_struc = "dc_segments"  # [{"dc_segments": [...]}]
    config_class = NurVidConfig
    config: NurVidConfig

    def __init__(self, root: str | Path, config: NurVidConfig | None = None, **overrides: Any):
        super().__init__(root, config, **overrides)
        self._json_path = self.root / self.config.annotation_file
        self._entries: dict[str, Any] | None = None
        self._tables: tuple[dict[int, Procedure], dict[int, str]] | None = None
        self._splits: dict[str, tuple[str, int, Path]] | None = None
        self._procedure_actions: dict[int, list[str]] | None = None

    # ---- lazily loaded, shared by all videos -------------------------------------------------
    def _load_entries(self) -> dict[str, Any]:
        if self._entries is None:
            data = load_json(require_file(self._json_path))
            if not isinstance(data, dict):
                raise InputError(f"expected a JSON object keyed by YouTube id, found {type(data).__name__}",
                                 self._json_path)
            self._entries = data
        return self._entries

    def _load_tables(self) -> tuple[dict[int, Procedure], dict[int, str]]:
        if self._tables is None:
            self._tables = read_id_tables(self.root)
        return self._tables

    def _unlisted_split(self) -> str | None:
        """The split of a video in no CSV (see the module docstring)."""
        files = {split: (self.root / name).is_file() for split, name in self.config.split_files}
        if self.config.unlisted == "val" and files.get("train") and files.get("test") and not files.get("val"):
            return "val"
        return None

    def _load_splits(self) -> dict[str, tuple[str, int, Path]]:
        if self._splits is None:
            splits: dict[str, tuple[str, int, Path]] = {}
            for split, file_name in self.config.split_files:
                path = self.root / file_name
                if not path.is_file():
                    continue
                for vid, label in read_split_csv(path).items():
                    if vid in splits and splits[vid][0] != split:
                        raise InputError(f"video {vid} is in both {splits[vid][2].name} "
                                         f"({splits[vid][0]}) and {file_name} ({split})", path, vid)
                    splits[vid] = (split, label, path)
            self._splits = splits
        return self._splits

    def _load_procedure_actions(self) -> dict[int, list[str]]:
        """Sorted action names per procedure, over every video of the JSON."""
        if self._procedure_actions is None:
            _, actions = self._load_tables()
            names: dict[int, set[str]] = {}
            for entry in self._load_entries().values():
                if not isinstance(entry, dict):
                    continue
                bucket = names.setdefault(entry.get("operationID"), set())
                for seg in entry.get("annotations") or []:
                    if isinstance(seg, dict) and seg.get("actionID") in actions:
                        bucket.add(actions[seg["actionID"]])
            self._procedure_actions = {k: sorted(v) for k, v in names.items()}
        return self._procedure_actions

    # ---- contract ----------------------------------------------------------------------------
    def video_path(self, video_id: str) -> Path:
        """Where the video file of ``video_id`` is expected (it may not exist)."""
        return self.root / self.config.videos_dir / f"{video_id}{self.config.video_ext}"

    def list_videos(self) -> list[str]:
        """All YouTube ids of the annotation file, sorted (whether or not the videos are present)."""
        return sorted(self._load_entries())

    def read_video(self, video_id: str) -> VideoAnnotation:
        """Canonical annotations of one NurViD video (see the module docstring for the rules).

        Args:
            video_id: a YouTube id from :meth:`list_videos`.

        Returns:
            The :class:`VideoAnnotation` (action events, per-procedure vocab, issues).

        Raises:
            InputError: unknown id, malformed entry, unknown operationID/actionID, a segment
                past the real video end, or an unreadable video file.
        """
        path = self._json_path
        entries = self._load_entries()
        if video_id not in entries:
            raise InputError("video id not in the annotation file", path, video_id)
        entry = entries[video_id]
        if not isinstance(entry, dict):
            raise InputError(f"entry is a {type(entry).__name__}, not an object", path, video_id)
        procedures, actions = self._load_tables()
        op_id = entry.get("operationID")
        if op_id not in procedures:
            raise InputError(f"unknown operationID {op_id!r} (JSON ids are 1-based, 1..{max(procedures)})",
                             path, video_id)
        procedure = procedures[op_id]
        issues: list[str] = []

        segments = self._read_segments(entry, video_id, actions, issues)
        json_duration = _number(entry.get("duration"), path, video_id, "duration")
        json_fps = _number(entry.get("fps"), path, video_id, "fps")
        if json_fps <= 0:
            raise InputError(f"fps must be positive, found {json_fps}", path, video_id)
        width, height = parse_resolution(entry.get("resolution"), path, video_id)
        last_end = max((end for _, _, end, _ in segments), default=0.0)
        past = [k for k, _, end, _ in segments if end > json_duration + self.config.end_tolerance_s]
        duration_issue = (f"annotated duration {json_duration:g} s is shorter than the segments (last ends "
                          f"at {last_end:g} s; {len(past)} segment(s) end more than "
                          f"{self.config.end_tolerance_s:g} s after it: #{', #'.join(map(str, past))})"
                          if past else None)

        video_file = self.video_path(video_id)
        present = video_file.is_file()
        if present and self.config.probe_videos:
            from mvbench.video.readers import probe

            info = probe(video_file)
            duration, fps, num_frames = info.duration_s, info.fps, info.num_frames
            width, height = info.width, info.height
            if duration_issue:
                issues.append(duration_issue)
            if abs(json_duration - duration) > self.config.end_tolerance_s:
                issues.append(f"annotated duration {json_duration:g} s differs from the video's "
                              f"{duration:.2f} s; using the video's")
            segments = self._clip_to_video(segments, duration, video_id, actions, issues)
        else:
            duration = max(json_duration, last_end)
            fps = json_fps
            num_frames = max(1, round(fps * duration))
            if duration_issue:
                issues.append(f"{duration_issue}; video {'not probed' if present else 'absent'}, "
                              f"length taken as {duration:g} s")

        split_info = self._load_splits().get(video_id)
        split = split_info[0] if split_info else self._unlisted_split()
        if split_info and split_info[1] != op_id:
            issues.append(f"{split_info[2].name} labels this video {split_info[1]} but its operationID "
                          f"is {op_id} (task1&3 labels are 1-based JSON ids)")

        events = [Event(label=actions[a_id], start_s=start, end_s=end, kind="action",
                        attrs={"action_id": a_id, "segment_index": k})
                  for k, start, end, a_id in sorted(segments, key=lambda s: (s[1], s[2], s[0]))]
        meta = VideoMeta(
            video_id=video_id, native_fps=float(fps), num_frames=int(num_frames),
            duration_s=float(duration), width=width, height=height, path=video_file, split=split,
            attrs={"procedure": procedure.name, "procedure_id": op_id,
                   "procedure_abbreviation": procedure.abbreviation, "json_fps": entry.get("fps"),
                   "json_duration": entry.get("duration"), "json_resolution": entry.get("resolution"),
                   "url": entry.get("url"), "video_present": present})
        ann = VideoAnnotation(source=self.name, data_source=self.data_source, video=meta, events=events,
                              vocab={"action": list(self._load_procedure_actions().get(op_id, []))},
                              issues=issues)
        ann.validate()
        return ann

    def _read_segments(self, entry: dict[str, Any], video_id: str, actions: dict[int, str],
                       issues: list[str]) -> list[tuple[int, float, float, int]]:
        """``(1-based index, start_s, end_s, actionID)`` per usable segment, in annotation order."""
        path = self._json_path
        raw = entry.get("annotations")
        if not isinstance(raw, list):
            raise InputError("'annotations' must be a list", path, video_id)
        out: list[tuple[int, float, float, int]] = []
        for k, seg in enumerate(raw, start=1):
            where = f"{video_id}.annotations[{k - 1}]"
            if not isinstance(seg, dict) or not isinstance(seg.get("segment"), list) \
                    or len(seg["segment"]) != 2:
                raise InputError("expected {actionID, segment: [start, end]}", path, where)
            a_id = seg.get("actionID")
            if a_id not in actions:
                raise InputError(f"unknown actionID {a_id!r} (JSON ids are 1-based, 1..{max(actions)})",
                                 path, where)
            start = _number(seg["segment"][0], path, where, "segment start")
            end = _number(seg["segment"][1], path, where, "segment end")
            if start < 0 or end < start:
                raise InputError(f"segment [{start:g}, {end:g}] is not an interval", path, where)
            if end == start:
                kept = self.config.zero_length == "keep"
                issues.append(f"zero-length segment #{k} ({actions[a_id]}, actionID {a_id}) at "
                              f"{start:g} s {'kept' if kept else 'dropped'}")
                if not kept:
                    continue
            out.append((k, start, end, a_id))
        return out

    def _clip_to_video(self, segments: list[tuple[int, float, float, int]], duration: float,
                       video_id: str, actions: dict[int, str],
                       issues: list[str]) -> list[tuple[int, float, float, int]]:
        """Clip segments to the real video length (see the module docstring)."""
        kept: list[tuple[int, float, float, int]] = []
        for k, start, end, a_id in segments:
            where = f"{video_id}.annotations[{k - 1}]"
            if start >= duration:
                if start > duration + self.config.end_tolerance_s:
                    raise InputError(f"segment #{k} ({actions[a_id]}) starts at {start:g} s, past the end "
                                     f"of {self.video_path(video_id)} ({duration:.2f} s)",
                                     self._json_path, where)
                issues.append(f"segment #{k} ({actions[a_id]}) starts at {start:g} s, at the video end "
                              f"{duration:.2f} s: dropped")
                continue
            if end > duration:
                issues.append(f"segment #{k} ({actions[a_id]}) end {end:g} s clipped to the video end "
                              f"{duration:.2f} s")
                end = duration
            kept.append((k, start, end, a_id))
        return kept

    @classmethod
    def detect(cls, root: str | Path) -> bool:
        """A NurViD root holds ``NurViD_annotations.json``."""
        return (Path(root) / ANNOTATION_FILE).is_file()
