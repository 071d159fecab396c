"""Cholec80-CVS: Strasberg's critical view of safety scored over intervals of the Cholec80 videos.

Raw tree: the figshare workbook dropped into a Cholec80 download (paths are config fields)::

    surgeons_annotations.xlsx           one row per scored interval (figshare 22183885)
    videos/video01.mp4 ...              Cholec80 videos, 25 fps
    phase_annotations/video01-phase.txt TSV "Frame<TAB>Phase", one row per 25-fps frame

Workbook columns read (as ManuelRios18/CHOLEC80-CVS-PUBLIC data_preprocessing/annotations_2_labels.py
reads them; names matched case-insensitively): ``video`` (1-80 → ``videoNN``), ``initial_minute``,
``initial_second``, ``final_minute``, ``final_second``, ``two_structures``, ``cystic_plate``,
``hepatocystic_triangle`` (each 0, 1 or 2); optional ``Total`` (checked against the sum) and
``critical_view`` (checked against Total ≥ 5). ⚠ The annotation licence is not stated in the code repo.

Time base: interval bounds are minutes:seconds of the 25-fps video, ``t = min·60 + s``. Phase rows
are 25-fps frame numbers, ``t = frame / 25``; a run of frames ``a..b`` is ``[a / 25, (b + 1) / 25]``.

Canonical output: one ``Scores(kind="cvs")`` per workbook row over ``[initial, final]`` seconds, with
the three criteria as values and ``total`` / ``critical_view`` / the row number in attrs. Anomalies
are handled as the official code does and reported: rows with final < initial are dropped (the official
loop labels nothing for them), intervals past the video end are clipped, and (by default) intervals
are clipped at the first ``ClippingCutting`` frame, where the official labels end. When the phase
files are read (default), Cholec80's phases become events (``kind="phase"``, readable labels such
as ``calot triangle dissection``) for TAG. Official splits (data_preprocessing/get_training_sets.py)
go to ``VideoMeta.split``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvbench.builders.base import (
    BuilderConfig,
    Event,
    Scores,
    SourceBuilder,
    VideoAnnotation,
    VideoMeta,
    register_builder,
)
from mvbench.builders.cholect50 import PROCEDURE, readable_phase, sequence_runs
from mvbench.builders.common import cholec80_group, read_csv, read_xlsx
from mvbench.errors import InputError

CRITERIA: tuple[str, ...] = ("two_structures", "cystic_plate", "hepatocystic_triangle")
TIME_COLUMNS: tuple[str, ...] = ("initial_minute", "initial_second", "final_minute", "final_second")
REQUIRED_COLUMNS: tuple[str, ...] = ("video", *TIME_COLUMNS, *CRITERIA)
# Cholec80 phase names as written in phase_annotations/videoNN-phase.txt.
PHASES: tuple[str, ...] = ("Preparation", "CalotTriangleDissection", "ClippingCutting", "GallbladderDissection",
                           "GallbladderPackaging", "CleaningCoagulation", "GallbladderRetraction")
CVS_ACHIEVED_TOTAL = 5  # critical_view = Total >= 5 (3P)
# Official splits (data_preprocessing/get_training_sets.py); every other video 1-80 is train.
TEST_VIDEOS: frozenset[int] = frozenset({5, 6, 7, 9, 14, 22, 24, 26, 29, 33, 35, 39, 53, 55, 61})
VAL_VIDEOS: frozenset[int] = frozenset({1, 2, 10, 16, 17, 28, 32, 46, 47, 57, 59, 63, 65, 67, 70})


def official_split(number: int) -> str:
    """The Cholec80-CVS split of video ``number``.

    >>> official_split(5), official_split(1), official_split(3)
    ('test', 'val', 'train')
    """
    return "test" if number in TEST_VIDEOS else "val" if number in VAL_VIDEOS else "train"


@dataclass
class CvsRow:
    """One parsed workbook row."""

    row: int  # 1-based worksheet row
    number: int
    start_s: float
    end_s: float
    values: dict[str, int]
    total: int | None
    critical_view: bool | None


@dataclass
class Cholec80CvsConfig(BuilderConfig):
    """Options of the Cholec80-CVS reader.

    Args:
        annotations_file: the workbook, relative to the raw root (or absolute).
        sheet: worksheet name; None reads the first.
        videos_dir / phases_dir: Cholec80 folders, relative to the raw root (or absolute).
        video_fps: the rate of the phase files' frame numbers (Cholec80: 25).
        read_phases: read the phase files into phase events (for TAG and the clipping bound).
        clip_at_phase: clip score intervals at the first frame of this phase (the official labels end
            there); None keeps them whole.
        end_tolerance_s: an interval starting this far past the video end is clipped; further is an error.
    """

    annotations_file: str = "surgeons_annotations.xlsx"
    sheet: str | None = None
    videos_dir: str = "videos"
    phases_dir: str = "phase_annotations"
    video_fps: float = 25.0
    read_phases: bool = True
    clip_at_phase: str | None = "ClippingCutting"
    end_tolerance_s: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.video_fps <= 0:
            raise ValueError("video_fps must be positive")
        if self.end_tolerance_s < 0:
            raise ValueError("end_tolerance_s must be >= 0")
        if self.clip_at_phase is not None and self.clip_at_phase not in PHASES:
            raise ValueError(f"clip_at_phase must be one of {PHASES} or None, not {self.clip_at_phase!r}")
        if self.clip_at_phase is not None and not self.read_phases:
            raise ValueError("clip_at_phase needs read_phases=True (or set clip_at_phase=None)")


@register_builder
class Cholec80CvsBuilder(SourceBuilder):
    """Cholec80-CVS → CVS scores per interval (+ Cholec80 phase events)."""

    name = "cholec80_cvs"
    data_source = "Cholec80_CVS"
    tasks = ("CVS", "TAG")
    primary_kind = "phase"  # DVC / NAP / VS use phases
    config_class = Cholec80CvsConfig
    config: Cholec80CvsConfig

    def __init__(self, root: str | Path, config: Cholec80CvsConfig | None = None, **overrides: Any):
        super().__init__(root, config, **overrides)
        if not self.config.read_phases:
            self.tasks = ("CVS",)  # no phase events without the phase files
        self._rows: dict[int, list[CvsRow]] | None = None

    def _path(self, name: str) -> Path:
        p = Path(name)
        return p if p.is_absolute() else self.root / p

    # ------------------------------------------------------------ listing
    def list_videos(self) -> list[str]:
        return [f"video{n:02d}" for n in sorted(self._workbook())]

    @classmethod
    def known_test_groups(cls) -> frozenset[str]:
        """The official test videos (:data:`TEST_VIDEOS`) as Cholec80 split groups."""
        return frozenset(g for n in TEST_VIDEOS if (g := cholec80_group(n)))

    @classmethod
    def detect(cls, root: str | Path) -> bool:
        return (Path(root) / Cholec80CvsConfig.annotations_file).is_file()

    # ------------------------------------------------------------ workbook
    def _workbook(self) -> dict[int, list[CvsRow]]:
        """Parse the workbook once: video number → its rows."""
        if self._rows is not None:
            return self._rows
        path = self._path(self.config.annotations_file)
        table = read_xlsx(path, self.config.sheet)
        start = next((i for i, r in enumerate(table) if any(c not in (None, "") for c in r)), None)
        if start is None:
            raise InputError("workbook is empty: no header row", path)
        header = [str(c).strip().lower() if c is not None else "" for c in table[start]]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise InputError(f"header lacks column(s) {missing}; found {[h for h in header if h]}", path,
                             f"row {start + 1}")
        col = {name: header.index(name) for name in header if name}
        rows: dict[int, list[CvsRow]] = {}
        for i, cells in enumerate(table[start + 1:], start=start + 2):
            if all(c in (None, "") for c in cells):
                continue
            parsed = self._parse_row(cells, col, path, i)
            rows.setdefault(parsed.number, []).append(parsed)
        if not rows:
            raise InputError("workbook has a header but no rows", path)
        self._rows = rows
        return rows

    @staticmethod
    def _cell(cells: list[Any], col: dict[str, int], name: str) -> Any:
        """The cell of column ``name`` (None when the column or the cell is absent or blank)."""
        i = col.get(name)
        value = cells[i] if i is not None and i < len(cells) else None
        return None if value == "" else value

    def _int(self, cells: list[Any], col: dict[str, int], name: str, path: Path, row: int) -> int:
        value = self._cell(cells, col, name)
        if isinstance(value, str):
            value = value.strip()
            if name == "video" and value.lower().startswith("video"):
                value = value[5:]
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InputError(f"column {name!r} must be a whole number, found {value!r}", path, f"row {row}") from None
        if number != int(number) or number < 0:
            raise InputError(f"column {name!r} must be a whole number >= 0, found {value!r}", path, f"row {row}")
        return int(number)

    def _parse_row(self, cells: list[Any], col: dict[str, int], path: Path, row: int) -> CvsRow:
        number = self._int(cells, col, "video", path, row)
        if not 1 <= number <= 80:
            raise InputError(f"video {number} is not a Cholec80 video (1-80)", path, f"row {row}")
        im, is_, fm, fs = (self._int(cells, col, c, path, row) for c in TIME_COLUMNS)
        values = {c: self._int(cells, col, c, path, row) for c in CRITERIA}
        bad = {c: v for c, v in values.items() if v > 2}
        if bad:
            raise InputError(f"criterion score(s) {bad} outside 0-2", path, f"row {row}")
        total = None if self._cell(cells, col, "total") is None else self._int(cells, col, "total", path, row)
        cv = self._cell(cells, col, "critical_view")
        critical_view = None if cv is None else str(cv).strip().lower() in ("1", "1.0", "true", "yes")
        return CvsRow(row=row, number=number, start_s=float(im * 60 + is_), end_s=float(fm * 60 + fs),
                      values=values, total=total, critical_view=critical_view)

    # ------------------------------------------------------------ reading
    def read_video(self, video_id: str) -> VideoAnnotation:
        from mvbench.video import probe

        cfg = self.config
        try:
            number = int(video_id.removeprefix("video"))
        except ValueError:
            raise InputError(f"not a Cholec80 video id (videoNN): {video_id!r}", self.root) from None
        rows = self._workbook().get(number)
        if rows is None:
            raise InputError(f"{video_id} has no rows in the workbook", self._path(cfg.annotations_file), video_id)
        mp4 = self._path(cfg.videos_dir) / f"{video_id}.mp4"
        issues: list[str] = []
        attrs: dict[str, Any] = {"procedure": PROCEDURE, "split_group": cholec80_group(number)}
        if mp4.is_file():
            info = probe(mp4)
            if abs(info.fps - cfg.video_fps) > 0.01:
                issues.append(f"{mp4.name} runs at {info.fps:g} fps, not {cfg.video_fps:g}")
            meta = VideoMeta(video_id=video_id, native_fps=info.fps, num_frames=info.num_frames,
                             duration_s=info.duration_s, width=info.width, height=info.height, path=mp4,
                             split=official_split(number), attrs=attrs)
        elif self.plan_only:
            num_frames = self._annotated_frames(video_id, rows)
            meta = VideoMeta(video_id=video_id, native_fps=cfg.video_fps, num_frames=num_frames,
                             duration_s=num_frames / cfg.video_fps, path=mp4, split=official_split(number),
                             attrs={**attrs, "media": "absent"})
            issues.append(f"no video file: planned from the annotations alone, the video taken to end at its last "
                          f"annotation ({meta.duration_s:.2f} s)")
        else:
            raise InputError(f"Cholec80 video of {video_id} not found (the workbook scores it); --plan-only plans "
                             f"it from the annotations alone", mp4)

        events: list[Event] = []
        clip_s: float | None = None
        if cfg.read_phases:
            events = self._phase_events(video_id, meta, issues)
            if cfg.clip_at_phase is not None:
                clip_s = next((e.start_s for e in events if e.attrs["phase"] == cfg.clip_at_phase), None)
                if clip_s is None and events:
                    issues.append(f"no {cfg.clip_at_phase} phase: score intervals are not clipped at it")
                meta.attrs["clip_at_phase_s"] = clip_s
        scores = [s for r in rows if (s := self._scores(r, meta, clip_s, issues)) is not None]
        ann = VideoAnnotation(source=self.name, data_source=self.data_source, video=meta, events=events,
                              scores=scores, vocab={"phase": [readable_phase(p) for p in PHASES]} if events else {},
                              issues=issues)
        ann.validate()
        return ann

    def _annotated_frames(self, video_id: str, rows: list[CvsRow]) -> int:
        """The video length in frames as the annotations give it (no video file): the phase file's
        last frame, else the latest interval end."""
        cfg = self.config
        path = self._path(cfg.phases_dir) / f"{video_id}-phase.txt"
        last = max(r.end_s for r in rows) * cfg.video_fps
        if path.is_file():
            frames = [int(row["Frame"]) for row in read_csv(path, delimiter="\t", expected=["Frame", "Phase"])
                      if str(row.get("Frame", "")).strip().isdigit()]
            last = max(frames, default=last - 1) + 1
        return max(1, math.ceil(last - 1e-9))

    def _scores(self, r: CvsRow, meta: VideoMeta, clip_s: float | None, issues: list[str]) -> Scores | None:
        """One row → Scores, or None when it is dropped (reported in ``issues``)."""
        cfg = self.config
        wb = self._path(cfg.annotations_file)
        where = f"row {r.row}"
        total = sum(r.values.values())
        if r.total is not None and r.total != total:
            issues.append(f"{where}: Total {r.total} != sum of criteria {total}")
        if r.critical_view is not None and r.critical_view != (total >= CVS_ACHIEVED_TOTAL):
            issues.append(f"{where}: critical_view={r.critical_view} disagrees with the criteria sum {total}")
        if r.end_s < r.start_s:
            issues.append(f"{where}: final {r.end_s:g}s < initial {r.start_s:g}s; row dropped")
            return None
        if r.start_s > meta.duration_s + cfg.end_tolerance_s:
            raise InputError(f"interval starts at {r.start_s:g}s, past the end of {meta.video_id} "
                             f"({meta.duration_s:.2f}s)", wb, where)
        start, end = min(r.start_s, meta.duration_s), r.end_s
        if end > meta.duration_s:
            issues.append(f"{where}: interval end {end:g}s past the video end {meta.duration_s:.2f}s; clipped")
            end = meta.duration_s
        if clip_s is not None and end > clip_s:
            if start >= clip_s:
                issues.append(f"{where}: interval {start:g}-{end:g}s starts after {cfg.clip_at_phase} "
                              f"({clip_s:g}s); row dropped")
                return None
            issues.append(f"{where}: interval end {end:g}s clipped at {cfg.clip_at_phase} ({clip_s:g}s)")
            end = clip_s
        return Scores(kind="cvs", start_s=start, end_s=end, values=dict(r.values),
                      attrs={"row": r.row, "total": total, "critical_view": total >= CVS_ACHIEVED_TOTAL,
                             "annotated_end_s": r.end_s})

    def _phase_events(self, video_id: str, meta: VideoMeta, issues: list[str]) -> list[Event]:
        cfg = self.config
        path = self._path(cfg.phases_dir) / f"{video_id}-phase.txt"
        if not path.is_file():
            issues.append(f"no phase file {path.name}: no phase events, score intervals not clipped")
            return []
        rows = read_csv(path, delimiter="\t", expected=["Frame", "Phase"])
        last_ok = (meta.duration_s + cfg.end_tolerance_s) * cfg.video_fps
        per_frame: list[tuple[int, str]] = []
        past_end = 0
        for n, row in enumerate(rows, start=2):
            try:
                frame = int(row["Frame"])
            except (TypeError, ValueError):
                raise InputError(f"Frame must be an integer, found {row.get('Frame')!r}", path, f"line {n}") from None
            phase = row.get("Phase") or ""
            if phase not in PHASES:
                raise InputError(f"unknown phase {phase!r} (known: {list(PHASES)})", path, f"line {n}")
            if frame < 0 or frame > last_ok:
                raise InputError(f"frame {frame} is past the end of {video_id} ({meta.duration_s:.2f}s)", path,
                                 f"line {n}")
            if frame / cfg.video_fps >= meta.duration_s:
                past_end += 1
                continue
            per_frame.append((frame, phase))
        if past_end:
            issues.append(f"{past_end} phase row(s) past the video end dropped")
        fps = cfg.video_fps
        return [Event(label=readable_phase(phase), start_s=first / fps, end_s=min((last + 1) / fps, meta.duration_s),
                      kind="phase", attrs={"phase": phase})
                for phase, first, last in sequence_runs(per_frame, max_step=1)]
