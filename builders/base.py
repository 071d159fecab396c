"""The builder contract: read a source's raw tree → canonical annotations, one video at a time.

A source builder is one small class (one module per source under ``builders/``) with three jobs,
in the manner of Hugging Face ``datasets`` builders:

1. describe itself (class attributes: ``name``, ``data_source``, ``tasks``, ``version``, a config
   dataclass checked in ``__post_init__``);
2. ``list_videos()``: find the source videos under the raw root it is given (cheap; no decoding);
3. ``read_video(video_id)``: return one :class:`VideoAnnotation` — the canonical form shared by all
   sources: video facts, timed events, tracks with boxes (pixel xyxy on the source frame) and scores.

Everything after that — task instances, frames, splits, Parquet, manifests — is shared code
(``mvbench.builders.generators`` and ``mvbench.builders.pipeline``); a builder never writes output.
Where the published records of a source differ (id spelling, clip metadata, the DVC ground-truth
shape, which event kind DVC/NAP/VS use), the builder declares it in class attributes
(``id_style``, ``clip_metadata``, ``dvc_struc``, ``primary_kind``) that the shared code reads.

Small raw fixture trees in each built-in source's real on-disk format (for tests and the demo) are
written by :mod:`mvbench.builders.fixtures`, not by the builders.

Errors: malformed input raises :class:`mvbench.errors.InputError` naming the file and the record.
Times are converted to seconds and boxes to pixel xyxy at read time (source-formats.md, "Conventions").
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from mvbench.errors import InputError
from mvbench.registry import Registry

Box = tuple[float, float, float, float]  # pixel x1, y1, x2, y2 on the source frame
IdStyle = Literal["dollar", "ampersand", "ampersand_seconds"]
ClipMetadata = Literal["frames", "seconds"]
DvcStruc = Literal["list", "dc_segments"]


@dataclass
class VideoMeta:
    """Facts about one source video and where its frames come from.

    Exactly one of ``path`` (a video file) or ``frame_files`` (a frame store: native frame index →
    image file, for sources released as frame folders) is set.

    Args:
        video_id: the source's own id (``VID01``, ``kcOqlifSukA``, ``Suturing_B001``).
        native_fps: the rate of the native frame index: frame n ↔ t = n / native_fps seconds.
        num_frames: frames in the native index (1 + the last index).
        duration_s: the real length in seconds (annotation durations are not trusted).
        width / height: the frame size in pixels (boxes are in this frame).
        split: the source's official split for this video (``train``/``val``/``test``), if any.
        attrs: source-specific facts (procedure name, task name, surgeon ...). Keys the shared
            code reads:

            - ``split_group``: a cross-source key naming the recording (``cholec80:05`` for
              CholecT50 ``VID05``, CholecTrack20 ``VID05`` and Cholec80-CVS ``video05``); all
              videos of one group get one split in a build (:func:`mvbench.builders.splits.unify_groups`).
            - ``metadata_video_id`` / ``id_video``: the video id written in a record's
              ``metadata.video_id`` and in its ``id``, when the published records spell it
              differently from ``video_id`` (CoPESD: ``023521`` and ``023521_part0``;
              EgoSurgery: ``10_1`` and ``10_1_part0``). Default: ``video_id`` for both.
            - ``decode_fps``: for a video file whose native index is not the file's own frame
              numbering (AVOS numbers frames in a 15-fps store, ``native_fps = 15``, while a
              downloaded mp4 may run at 30 fps): the file's frame rate. Native frame ``n`` is then
              decoded as file frame ``round(n / native_fps * decode_fps)``; records and frame
              files keep the native numbering.
            - ``label_keys``: how far apart the labelled frames are
              (:meth:`mvbench.builders.common.KeySpacing.as_attrs`), reported in the manifest.
            - ``media``: ``"absent"`` when a plan (``plan_only``) was made from the annotations
              alone: ``path`` / ``frame_files`` then name files that do not exist.
    """

    video_id: str
    native_fps: float
    num_frames: int
    duration_s: float
    width: int | None = None
    height: int | None = None
    path: Path | None = None
    frame_files: dict[int, Path] | None = None
    split: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.frame_files is None):
            raise ValueError(f"{self.video_id}: set exactly one of path or frame_files")
        if self.native_fps <= 0 or self.num_frames <= 0:
            raise ValueError(f"{self.video_id}: native_fps and num_frames must be positive")


@dataclass
class Event:
    """A labelled time interval (a phase, an action, a gesture, a triplet run).

    ``kind`` groups events that belong to one label set, e.g. ``phase`` and ``action`` in one video.
    """

    label: str
    start_s: float
    end_s: float
    kind: str = "action"
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Track:
    """One object followed over time: boxes (pixel xyxy) keyed by time in seconds."""

    label: str
    track_id: str
    boxes: dict[float, Box]
    kind: Literal["tool", "hand", "object"] = "tool"
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scores:
    """Assessment scores over a window: CVS criteria (0-2) or JIGSAWS GRS aspects (1-5)."""

    kind: Literal["cvs", "grs"]
    start_s: float
    end_s: float
    values: dict[str, int]
    level: str | None = None  # JIGSAWS self-reported skill level N / I / E
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class VideoAnnotation:
    """The canonical annotations of one source video.

    Args:
        vocab: label lists the questions offer, by event kind (``{"action": [...], "phase": [...]}``);
            for NurViD the actions of this video's procedure.
        issues: anomalies found and handled while reading (clipped segments, ...), reported in the
            manifest rather than crashed on.
    """

    source: str
    data_source: str
    video: VideoMeta
    events: list[Event] = field(default_factory=list)
    tracks: list[Track] = field(default_factory=list)
    scores: list[Scores] = field(default_factory=list)
    vocab: dict[str, list[str]] = field(default_factory=dict)
    issues: list[str] = field(default_factory=list)

    def validate(self) -> None:
        """Check times and boxes against the video; raise InputError naming the video and record."""
        v = self.video
        where = f"{self.source}:{v.video_id}"
        for i, e in enumerate(self.events):
            if not (0 <= e.start_s <= e.end_s):
                raise InputError(f"event {i} ({e.label}) has start {e.start_s} > end {e.end_s}", where, i)
            if e.start_s > v.duration_s + 1e-6:
                raise InputError(f"event {i} ({e.label}) starts at {e.start_s:.2f}s, past the video end "
                                 f"{v.duration_s:.2f}s", where, i)
        for t in self.tracks:
            for ts, (x1, y1, x2, y2) in t.boxes.items():
                if not (x1 < x2 and y1 < y2):
                    raise InputError(f"track {t.track_id} ({t.label}) box at {ts}s is empty: "
                                     f"{[x1, y1, x2, y2]}", where, t.track_id)
                if v.width and v.height and (x1 < -1 or y1 < -1 or x2 > v.width + 1 or y2 > v.height + 1):
                    raise InputError(f"track {t.track_id} ({t.label}) box at {ts}s "
                                     f"{[x1, y1, x2, y2]} is outside the {v.width}x{v.height} frame",
                                     where, t.track_id)


@dataclass
class BuilderConfig:
    """Options shared by all builders; a source subclasses it for its own fields.

    Args:
        seed: seeds every random choice a reader makes.
    """

    seed: int = 0

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError("seed must be >= 0")


class SourceBuilder(ABC):
    """Base class for one source. See the module docstring for the contract."""

    name: ClassVar[str]              # registry name: "nurvid"
    data_source: ClassVar[str]       # official data_source value: "NurViD"
    tasks: ClassVar[tuple[str, ...]]  # tasks this source's annotations support
    version: ClassVar[str] = "1"     # bump when the reader's output changes
    config_class: ClassVar[type[BuilderConfig]] = BuilderConfig

    # ---- how this source's published records differ (read by the shared code) ----
    id_style: ClassVar[IdStyle] = "dollar"
    """How the published records spell ``id`` (fps as ``repr(float)``, first/last sampled frame):

    - ``"dollar"``: ``fps$video$first$last`` in native frame numbers (``1.0$VID25$34476$37576``);
    - ``"ampersand"``: ``video&&first&&last&&fps`` in native frame numbers (AVOS:
      ``kcOqlifSukA&&22425&&25124&&1.0``);
    - ``"ampersand_seconds"``: ``video&&start&&end&&fps`` with the clip's start and end in seconds,
      two decimals (NurViD: ``vR0_BaXYcE4&&19.50&&75.20&&1.0``).
    """

    clip_metadata: ClassVar[ClipMetadata] = "frames"
    """How ``metadata`` gives the clip: ``"frames"``: ``input_video_start_frame`` /
    ``input_video_end_frame`` (first/last sampled native frame); ``"seconds"`` (NurViD):
    ``input_video_start_time`` / ``input_video_end_time`` (the clip's start and end in seconds,
    rounded to 2 decimals).
    """

    dvc_struc: ClassVar[DvcStruc] = "list"
    """The shape of DVC ``struc_info``: ``"list"``: ``[[{start, end, caption, action}, ...]]``;
    ``"dc_segments"`` (NurViD): ``[{"dc_segments": [{start, end, caption, action}, ...]}]``.
    """

    primary_kind: ClassVar[str | None] = None
    """The event kind DVC, NAP and VS use (``"phase"`` for the Cholec80 family); None (or a kind
    absent from a video): the first ``vocab`` key that has events. TAG uses every kind.
    """

    empty_task_options: ClassVar[dict[str, str]] = {}
    """The option that gets a task instances when a build yields none, by reason code
    (:data:`mvbench.builders.generators.EMPTY_REASONS`; ``"STG:single_box_tracks"`` for one task
    only), reported in the manifest's ``empty_tasks``. Overrides the pipeline's generic advice.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Reject a misspelt quirk when the class is defined, not as silently default output."""
        super().__init_subclass__(**kwargs)
        for attr, value, choices in (("id_style", cls.id_style, get_args(IdStyle)),
                                     ("clip_metadata", cls.clip_metadata, get_args(ClipMetadata)),
                                     ("dvc_struc", cls.dvc_struc, get_args(DvcStruc))):
            if value not in choices:
                raise TypeError(f"{cls.__name__}.{attr} is {value!r}; use one of "
                                f"{', '.join(map(repr, choices))}")

    def __init__(self, root: str | Path, config: BuilderConfig | None = None, *, plan_only: bool = False,
                 **overrides: Any):
        """Args:
            root: the source's raw tree.
            config: the reader's options (default: ``config_class()``); ``overrides`` replace fields.
            plan_only: the build decodes nothing (``mvbench build --plan-only``). A reader may then
                plan a video from its annotations alone when its media (video file, frames) is
                absent: frame numbers, duration and frame size from the annotations or from options
                (``--option frame_size=WxH``). Where it cannot, it raises an InputError naming the
                option that gets past it.
        """
        self.root = Path(root)
        self.plan_only = plan_only
        base = config if config is not None else self.config_class()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        if not self.root.is_dir():
            raise InputError(f"raw root for {self.name} not found (expected a folder)", self.root)

    @abstractmethod
    def list_videos(self) -> list[str]:
        """Ids of the source videos under the raw root, sorted (no decoding)."""

    @abstractmethod
    def read_video(self, video_id: str) -> VideoAnnotation:
        """Canonical annotations of one video. Raises InputError naming the file and record."""

    @classmethod
    def known_test_groups(cls) -> frozenset[str]:
        """Split groups (``VideoMeta.attrs["split_group"]``) this source's official tables put in test.

        Read from static tables only (no raw tree), so that a build of another source sharing
        the recordings can keep them out of train (Cholec80-CVS's test videos, for a CholecT50
        build). Default: none.
        """
        return frozenset()

    @classmethod
    def detect(cls, root: str | Path) -> bool:
        """Whether ``root`` looks like this source's raw tree (for ``--source all``)."""
        return False


BUILDERS: Registry[type[SourceBuilder]] = Registry("source builder")


def register_builder(cls: type[SourceBuilder]) -> type[SourceBuilder]:
    """Class decorator: add a builder to :data:`BUILDERS` under its ``name``."""
    BUILDERS.register(cls.name, cls)
    return cls
