"""JIGSAWS (JHU-ISI robotic bench-top skill dataset) → canonical annotations.

Raw root layout: one folder per task (``Suturing``, ``Knot_Tying``, ``Needle_Passing``), each with::

    meta_file_<Task>.txt                          one row per trial: skill level and GRS scores
    readme.txt                                    gesture vocabulary (read when present)
    video/<Task>_<S><NNN>_capture1.avi            left camera (``capture2``: right camera)
    kinematics/AllGestures/<Task>_<S><NNN>.txt    76 whitespace-separated floats per 30-Hz frame
    transcriptions/<Task>_<S><NNN>.txt            gesture segments ``start end G<k>`` (may be absent)

A trial id is ``<Task>_<S><NNN>`` (``Suturing_B001``: subject B, trial 1); the trials are the rows of
the meta files, and each trial gives one video (camera ``capture1`` by default, ``camera=``).

- **meta file**: tab-separated, CRLF, with empty fields: ``name, '', skill, GRS total, '', 6 sub-scores``.
  Empty fields are dropped, leaving exactly 9: name, skill level (N/I/E), total, then the 6 GRS
  aspects in the order of :data:`GRS_ASPECTS` (1-5 each). A total that is not the sum is reported.
  → one ``Scores(kind="grs")`` over the whole trial, ``level`` = the skill letter.
- **transcriptions**: frames are 1-based and inclusive, at ``annotation_fps`` (30 Hz; the same
  index as the kinematics). Frame f starts at t = (f − 1)/30, so a segment ``s e`` covers
  [(s − 1)/30, e/30) s: the end is the end of its last frame, and back-to-back segments tile
  without gaps. → events of kind ``gesture``, label = the gesture description
  ("Positioning needle"), attrs ``gesture`` (``G2``) and the raw frames. Frames no segment covers
  are unlabelled. ⚠ No public sample file exists: the reader accepts ``start end G<k>`` with any
  whitespace, trailing blanks and CRLF.
- **gesture vocabulary**: ⚠ read from ``readme.txt`` (task folder, else the root) as lines
  ``G<k> <description>`` (a ``:``/``-``/tab after the code is accepted); gestures the readme does not
  define fall back to the published list :data:`PUBLISHED_GESTURES` (``gesture_source="published"``
  ignores the readme). ``vocab["gesture"]`` is the descriptions used in this task's transcriptions,
  in gesture-number order.
- **kinematics**: checked to have ``kinematics_columns`` (76) columns; its length (rows / 30 Hz) is
  compared with the video's and a mismatch is reported. A missing file is reported, not fatal.
- **video**: probed for its real length, rate and size (JIGSAWS: 30 fps, 640×480; ⚠3P some 320×240).
  A gesture ending past the video end is clipped and reported within ``end_tolerance_s``, else an
  InputError. There are no boxes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mvbench.builders.base import (
    BuilderConfig,
    Event,
    Scores,
    SourceBuilder,
    VideoAnnotation,
    VideoMeta,
    register_builder,
)
from mvbench.builders.common import require_file
from mvbench.errors import InputError

TASK_FOLDERS = ("Suturing", "Knot_Tying", "Needle_Passing")
# GRS sub-scores in meta-file order; these are also the exact MedVidBench SA aspect names.
GRS_ASPECTS = ("Respect for tissue", "Suture/needle handling", "Time and motion", "Flow of operation",
               "Overall performance", "Quality of final product")
SKILL_LEVELS = ("N", "I", "E")
# Published JIGSAWS gesture vocabulary (Gao et al., 2014): the fallback when readme.txt lacks one.
PUBLISHED_GESTURES: dict[str, str] = {
    "G1": "Reaching for needle with right hand",
    "G2": "Positioning needle",
    "G3": "Pushing needle through tissue",
    "G4": "Transferring needle from left to right",
    "G5": "Moving to center with needle in grip",
    "G6": "Pulling suture with left hand",
    "G7": "Pulling suture with right hand",
    "G8": "Orienting needle",
    "G9": "Using right hand to help tighten suture",
    "G10": "Loosening more suture",
    "G11": "Dropping suture at end and moving to end points",
    "G12": "Reaching for needle with left hand",
    "G13": "Making C loop around right hand",
    "G14": "Reaching for suture with right hand",
    "G15": "Pulling suture with both hands",
}
_README_GESTURE = re.compile(r"^\s*(G\d{1,2})\b\s*[:\-\t.]?\s*([A-Za-z].*?)\s*$")
_GESTURE_CODE = re.compile(r"^G\d{1,2}$")


@dataclass
class JigsawsConfig(BuilderConfig):
    """JIGSAWS reader options.

    Args:
        camera: which video of a trial to use (``capture1`` left, ``capture2`` right).
        task_folders: task folders to look for under the root.
        annotation_fps: the rate of transcription and kinematics frame numbers.
        kinematics_columns: expected floats per kinematics row.
        check_kinematics: read the kinematics file to check its shape and length.
        gesture_source: ``"readme"`` (readme.txt, published list as fallback) or ``"published"``.
        end_tolerance_s: how far a gesture may end past the video end before it is an error (it is
            clipped and reported within it); also the allowed kinematics/video length mismatch.
        trial_regex: a trial id's parts (named groups ``task``, ``subject``, ``trial``).
    """

    camera: str = "capture1"
    task_folders: tuple[str, ...] = TASK_FOLDERS
    annotation_fps: float = 30.0
    kinematics_columns: int = 76
    check_kinematics: bool = True
    gesture_source: Literal["readme", "published"] = "readme"
    end_tolerance_s: float = 1.0
    trial_regex: str = r"^(?P<task>[A-Za-z_]+)_(?P<subject>[B-I])(?P<trial>\d{3})$"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not re.fullmatch(r"capture\d+", self.camera):
            raise ValueError(f"camera must look like 'capture1', not {self.camera!r}")
        if self.annotation_fps <= 0 or self.kinematics_columns <= 0 or self.end_tolerance_s < 0:
            raise ValueError("annotation_fps and kinematics_columns must be positive, end_tolerance_s >= 0")
        if self.gesture_source not in ("readme", "published"):
            raise ValueError(f"gesture_source must be 'readme' or 'published', not {self.gesture_source!r}")
        self.task_folders = tuple(self.task_folders)
        pattern = re.compile(self.trial_regex)
        if not {"task", "subject", "trial"} <= set(pattern.groupindex):
            raise ValueError("trial_regex needs the named groups task, subject and trial")


@dataclass(frozen=True)
class TrialMeta:
    """One row of a meta file."""

    trial_id: str
    skill: str
    grs_total: int
    grs: dict[str, int]
    line: int


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text: {e}", path) from None


def read_meta_file(path: Path) -> dict[str, TrialMeta]:
    """Parse ``meta_file_<Task>.txt`` (tabs, CRLF, empty fields) into ``{trial_id: TrialMeta}``.

    Args:
        path: the meta file.

    Returns:
        The trials in file order.

    Raises:
        InputError: missing file, a row without 9 non-empty fields, an unknown skill level, or a
            score that is not an integer in range; names the file and line.
    """
    text = _read_text(require_file(path, "meta file"))
    out: dict[str, TrialMeta] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        fields = [f.strip() for f in line.split("\t") if f.strip()]
        if not fields:
            continue
        if len(fields) != 3 + len(GRS_ASPECTS):
            raise InputError(f"expected name, skill, GRS total and {len(GRS_ASPECTS)} sub-scores "
                             f"(9 non-empty tab-separated fields), found {len(fields)}: {fields}", path, f"line {n}")
        name, skill, *numbers = fields
        if skill not in SKILL_LEVELS:
            raise InputError(f"skill level {skill!r} is not one of {'/'.join(SKILL_LEVELS)}", path, f"line {n}")
        try:
            values = [int(v) for v in numbers]
        except ValueError:
            raise InputError(f"GRS scores must be integers, found {numbers}", path, f"line {n}") from None
        total, subs = values[0], values[1:]
        bad = [(a, v) for a, v in zip(GRS_ASPECTS, subs) if not 1 <= v <= 5]
        if bad:
            raise InputError(f"GRS sub-score out of 1-5: {bad}", path, f"line {n}")
        if name in out:
            raise InputError(f"trial {name} listed twice (lines {out[name].line} and {n})", path, f"line {n}")
        out[name] = TrialMeta(name, skill, total, dict(zip(GRS_ASPECTS, subs)), n)
    return out


def read_readme_gestures(path: Path) -> dict[str, str]:
    """Gesture codes → descriptions found in a readme (lines ``G<k> <description>``); may be empty."""
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _README_GESTURE.match(line)
        if m and m.group(1) not in found:
            found[m.group(1)] = m.group(2)
    return found


def read_transcription(path: Path) -> list[tuple[int, int, str, int]]:
    """Parse a transcription file into ``(start_frame, end_frame, gesture code, line)`` rows.

    Raises:
        InputError: a line that is not ``start end G<k>`` with 1 <= start <= end; names the line.
    """
    rows: list[tuple[int, int, str, int]] = []
    for n, line in enumerate(_read_text(path).splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() \
                or not _GESTURE_CODE.match(parts[2]):
            raise InputError(f"expected 'start end G<k>', found {line.strip()!r}", path, f"line {n}")
        start, end = int(parts[0]), int(parts[1])
        if not 1 <= start <= end:
            raise InputError(f"frames {start}-{end}: need 1 <= start <= end (1-based, inclusive)",
                             path, f"line {n}")
        rows.append((start, end, parts[2], n))
    return rows


def read_kinematics(path: Path, columns: int) -> int:
    """Check a kinematics file has ``columns`` floats on every row; return the row count.

    Raises:
        InputError: unparseable numbers or a wrong column count.
    """
    try:
        data = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise InputError(f"malformed kinematics: {str(e).splitlines()[0]}", path) from None
    if data.shape[0] and data.shape[1] != columns:
        raise InputError(f"kinematics rows have {data.shape[1]} values, expected {columns}", path)
    return int(data.shape[0])


@register_builder
class JigsawsBuilder(SourceBuilder):
    """JIGSAWS: one video per trial with GRS scores (SA) and, where transcribed, gestures (TAG, DVC)."""

    name = "jigsaws"
    data_source = "JIGSAWS"
    tasks = ("SA", "TAG", "DVC")
    config_class = JigsawsConfig
    config: JigsawsConfig

    def __init__(self, root: str | Path, config: JigsawsConfig | None = None, **overrides: Any):
        super().__init__(root, config, **overrides)
        self._trials: dict[str, tuple[str, TrialMeta]] | None = None
        self._gestures: dict[str, dict[str, str]] = {}
        self._task_vocab: dict[str, list[str]] = {}
        self._trial_re = re.compile(self.config.trial_regex)

    def _tasks_present(self) -> list[str]:
        return [t for t in self.config.task_folders if (self.root / t / f"meta_file_{t}.txt").is_file()]

    def _load_trials(self) -> dict[str, tuple[str, TrialMeta]]:
        if self._trials is None:
            tasks = self._tasks_present()
            if not tasks:
                raise InputError(f"no JIGSAWS task folder with a meta file (looked for "
                                 f"{', '.join(f'{t}/meta_file_{t}.txt' for t in self.config.task_folders)})",
                                 self.root)
            trials: dict[str, tuple[str, TrialMeta]] = {}
            for task in tasks:
                path = self.root / task / f"meta_file_{task}.txt"
                for trial_id, meta in read_meta_file(path).items():
                    m = self._trial_re.match(trial_id)
                    if not m or m.group("task") != task:
                        raise InputError(f"trial name {trial_id!r} is not {task}_<subject B-I><NNN>",
                                         path, f"line {meta.line}")
                    trials[trial_id] = (task, meta)
            self._trials = trials
        return self._trials

    def gestures(self, task: str) -> dict[str, str]:
        """Gesture code → description for a task folder (readme.txt over the published list)."""
        if task not in self._gestures:
            table = dict(PUBLISHED_GESTURES)
            if self.config.gesture_source == "readme":
                for readme in (self.root / task / "readme.txt", self.root / "readme.txt"):
                    if readme.is_file():
                        table.update(read_readme_gestures(readme))
                        break
            self._gestures[task] = table
        return self._gestures[task]

    def _vocab(self, task: str) -> list[str]:
        """Descriptions of the gestures used in a task's transcriptions, in gesture-number order."""
        if task not in self._task_vocab:
            table = self.gestures(task)
            used: set[str] = set()
            folder = self.root / task / "transcriptions"
            for path in sorted(folder.glob(f"{task}_*.txt")) if folder.is_dir() else []:
                try:
                    used.update(code for _, _, code, _ in read_transcription(path) if code in table)
                except InputError:
                    continue  # reported when its own trial is read, not on every other trial
            self._task_vocab[task] = [table[c] for c in sorted(used, key=lambda c: int(c[1:]))]
        return self._task_vocab[task]

    def video_path(self, trial_id: str) -> Path:
        """The video file of a trial for the configured camera."""
        task = self._load_trials()[trial_id][0]
        return self.root / task / "video" / f"{trial_id}_{self.config.camera}.avi"

    def list_videos(self) -> list[str]:
        """Trial ids of every meta file under the root, sorted."""
        return sorted(self._load_trials())

    def read_video(self, video_id: str) -> VideoAnnotation:
        """Canonical annotations of one trial.

        Args:
            video_id: a trial id (``Suturing_B001``).

        Returns:
            The :class:`VideoAnnotation`: GRS scores over the whole trial, gesture events.

        Raises:
            InputError: unknown trial, missing or unreadable video, malformed transcription or
                kinematics, unknown gesture code, a gesture past the video end.
        """
        trials = self._load_trials()
        if video_id not in trials:
            raise InputError("trial not in any meta file", self.root, video_id)
        task, meta = trials[video_id]
        m = self._trial_re.match(video_id)
        assert m is not None  # checked in _load_trials
        issues: list[str] = []
        cfg = self.config
        fps_a = cfg.annotation_fps

        video_file = self.video_path(video_id)
        kin_path = self.root / task / "kinematics" / "AllGestures" / f"{video_id}.txt"
        if video_file.is_file():
            from mvbench.video.readers import probe

            info = probe(video_file)
            duration, native_fps, num_frames = info.duration_s, info.fps, info.num_frames
            size: tuple[int | None, int | None] = (info.width, info.height)
        elif self.plan_only:
            # Plan from the annotations: the kinematics (one row per 30-Hz frame) give the length.
            num_frames = self._annotated_frames(task, video_id, kin_path)
            duration, native_fps, size = num_frames / fps_a, fps_a, (None, None)
            issues.append(f"no video file: planned from the annotations alone, {duration:.2f} s long (its "
                          f"kinematics, else its last gesture)")
        else:
            raise InputError(f"video file not found (camera {cfg.camera}); --plan-only plans the trial from its "
                             f"kinematics and transcription alone", video_file, video_id)

        if sum(meta.grs.values()) != meta.grs_total:
            issues.append(f"GRS total {meta.grs_total} is not the sum of the sub-scores "
                          f"({sum(meta.grs.values())})")

        kin_frames: int | None = None
        if cfg.check_kinematics:
            if kin_path.is_file():
                kin_frames = read_kinematics(kin_path, cfg.kinematics_columns)
                if abs(kin_frames / fps_a - duration) > cfg.end_tolerance_s:
                    issues.append(f"kinematics last {kin_frames / fps_a:.2f} s ({kin_frames} rows at "
                                  f"{fps_a:g} Hz) but the video {duration:.2f} s")
            else:
                issues.append(f"no kinematics file {kin_path.relative_to(self.root)}")

        events = self._read_gestures(task, video_id, duration, issues)
        vocab = self._vocab(task) if events else []
        attrs = {"task": task, "task_name": task.replace("_", " ").lower(), "subject": m.group("subject"),
                 "trial": int(m.group("trial")), "camera": cfg.camera, "skill_level": meta.skill,
                 "grs_total": meta.grs_total, "kinematics_frames": kin_frames}
        if not video_file.is_file():
            attrs["media"] = "absent"
        video = VideoMeta(video_id=video_id, native_fps=native_fps, num_frames=num_frames,
                          duration_s=duration, width=size[0], height=size[1], path=video_file,
                          attrs=attrs)
        scores = [Scores(kind="grs", start_s=0.0, end_s=duration, values=dict(meta.grs), level=meta.skill,
                         attrs={"grs_total": meta.grs_total})]
        ann = VideoAnnotation(source=self.name, data_source=self.data_source, video=video, events=events,
                              scores=scores, vocab={"gesture": vocab} if vocab else {}, issues=issues)
        ann.validate()
        return ann

    def _annotated_frames(self, task: str, trial_id: str, kin_path: Path) -> int:
        """A trial's length in annotation frames without its video: kinematics rows, else the last gesture."""
        if kin_path.is_file():
            return max(1, read_kinematics(kin_path, self.config.kinematics_columns))
        path = self.root / task / "transcriptions" / f"{trial_id}.txt"
        if path.is_file():
            return max([end for _, end, _, _ in read_transcription(path)], default=1)
        raise InputError("no video, kinematics or transcription to take the trial's length from", self.root / task,
                         trial_id)

    def _read_gestures(self, task: str, trial_id: str, duration: float, issues: list[str]) -> list[Event]:
        """Gesture events of a trial (none, reported, when it has no transcription)."""
        path = self.root / task / "transcriptions" / f"{trial_id}.txt"
        if not path.is_file():
            issues.append("no gesture transcription: no TAG/DVC events")
            return []
        table = self.gestures(task)
        fps_a = self.config.annotation_fps
        events: list[Event] = []
        for start_f, end_f, code, line in read_transcription(path):
            if code not in table:
                raise InputError(f"unknown gesture {code} (known: G1-G{len(PUBLISHED_GESTURES)} and the "
                                 f"readme's)", path, f"line {line}")
            start_s, end_s = (start_f - 1) / fps_a, end_f / fps_a
            if end_s > duration:
                if end_s > duration + self.config.end_tolerance_s:
                    raise InputError(f"{code} frames {start_f}-{end_f} end at {end_s:.2f} s, past the end of "
                                     f"the {duration:.2f} s video", path, f"line {line}")
                issues.append(f"{code} at line {line} end {end_s:.2f} s clipped to the video end {duration:.2f} s")
                end_s = duration
                start_s = min(start_s, end_s)
            events.append(Event(label=table[code], start_s=start_s, end_s=end_s, kind="gesture",
                                attrs={"gesture": code, "start_frame": start_f, "end_frame": end_f}))
        events.sort(key=lambda e: (e.start_s, e.end_s))
        return events

    @classmethod
    def detect(cls, root: str | Path) -> bool:
        """A JIGSAWS root holds at least one ``<Task>/meta_file_<Task>.txt``."""
        root = Path(root)
        return any((root / t / f"meta_file_{t}.txt").is_file() for t in TASK_FOLDERS)
