"""CholecT50: surgical action triplets and phases on 1-fps frames of laparoscopic cholecystectomy.

Raw tree (CAMMA-public/cholect50, docs/README-Format.md)::

    CholecT50/
      videos/VID01/000000.png ...   1-fps frames, 854x480, 6-digit zero-based index (VID01 ... VID110)
      labels/VID01.json             one label file per video
      label_mapping.txt             "# IVT, I, V, T, IV, IT" then 100 rows of component ids
      LICENSE, README.md

``labels/VIDxx.json`` holds ``video``, ``fps`` (usually 1), ``num_frames``, ``categories`` (id → name
per ``triplet``/``instrument``/``verb``/``target``/``phase``; a dict of dicts with string keys in the
real files, a list in the docs: both are read), ``annotations`` ``{"<frame id>": [instance, ...]}``.
An instance is a 15-item vector: ``[0]`` triplet, ``[1]`` instrument, ``[2]`` its score,
``[3:7]`` instrument box, ``[7]`` verb, ``[8]`` target, ``[9]`` its score, ``[10:14]`` target box,
``[14]`` phase; ``-1`` means absent (never a class id).

Time base: frame id ``N`` is ``videos/VIDxx/{N:06d}.png`` and ``t = N / fps`` seconds (fps = 1).

Label keys: the full release labels every frame; the challenge-validation release labels a few
hundred frames per video (VID68: 243 keys between frame 16 and 1951, its ``num_frames`` being the
count of labelled frames, not the video length) and its frame folders hold only those frames.
Phases and other states persist between keys, so runs of one label are joined across gaps of up
to ``merge_gap_keys`` median key steps (at least ``merge_gap_s``; see
:class:`mvbench.builders.common.KeySpacing`), and a run ``a..b`` is the event ``[a, end) / fps``
where ``end`` is the next key when it lies within that tolerance, else ``b`` plus one key step
(clipped to the video end; ``b + 1`` for dense labels). Each video's spacing goes to
``attrs["label_keys"]`` (reported in the manifest). The video length is the last frame or key,
never ``num_frames``.

Boxes: normalised top-left ``x, y, w, h`` (by frame width/height) → pixel xyxy on the frame, whose
size is read from each video's first PNG (sizes differ between videos of the challenge set), or
given with ``frame_size``. Boxes exist for a few videos only (mostly ``-1``).

Planning without frames (``--plan-only``, frame folders absent): the labelled frames are taken as
the frame store and the size must be given (``--option frame_size=WxH``) for a video with boxes.

Canonical output:
- phase events (``kind="phase"``), labelled with the official strings including the ``carlot`` typo
  (the leaderboard's NAP class list uses them verbatim); ``vocab["phase"]`` is the 7-phase list;
- triplet events (``kind="triplet"``), one per run of a triplet, labelled readably:
  ``grasper,dissect,cystic_plate`` → ``grasper dissect cystic plate``, and
  ``hook,null_verb,null_target`` → ``hook idle``; ``vocab["triplet"]`` lists this video's triplets;
- tool tracks from the instrument boxes (label = instrument name), one track per run of frames in
  which exactly one box of that instrument is drawn.

Vocabularies come from the label file's ``categories`` (falling back to ``label_mapping.txt`` for
triplets and to the documented lists); names that differ from the documented ones are reported.

The small helpers :func:`category_map`, :func:`sequence_runs` and :func:`readable_phase` are also
used by the CholecTrack20 and Cholec80-CVS builders.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

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
from mvbench.builders.common import (KeySpacing, cholec80_group, clip_box, key_spacing, load_json, read_csv,
                                     require_file, xywh_norm_to_xyxy)
from mvbench.errors import InputError

PROCEDURE = "laparoscopic cholecystectomy"

INSTRUMENTS: tuple[str, ...] = ("grasper", "bipolar", "hook", "scissors", "clipper", "irrigator")
VERBS: tuple[str, ...] = ("grasp", "retract", "dissect", "coagulate", "clip", "cut", "aspirate", "irrigate",
                          "pack", "null_verb")
TARGETS: tuple[str, ...] = ("gallbladder", "cystic_plate", "cystic_duct", "cystic_artery", "cystic_pedicle",
                            "blood_vessel", "fluid", "abdominal_wall_cavity", "liver", "adhesion", "omentum",
                            "peritoneum", "gut", "specimen_bag", "null_target")
# The official spelling, "carlot" typo included: the leaderboard's NAP class list uses these strings.
PHASES: tuple[str, ...] = ("preparation", "carlot-triangle-dissection", "clipping-and-cutting",
                           "gallbladder-dissection", "gallbladder-packaging", "cleaning-and-coagulation",
                           "gallbladder-extraction")

# Triplet id → (instrument, verb, target) ids, in the order of the official triplet list
# (label_mapping.txt / ivtmetrics maps.txt); written compactly as instrument: [(verb, [targets])].
_TRIPLET_GROUPS: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...] = (
    ("grasper", (("dissect", ("cystic_plate", "gallbladder", "omentum")),
                 ("grasp", ("cystic_artery", "cystic_duct", "cystic_pedicle", "cystic_plate", "gallbladder",
                            "gut", "liver", "omentum", "peritoneum", "specimen_bag")),
                 ("pack", ("gallbladder",)),
                 ("retract", ("cystic_duct", "cystic_pedicle", "cystic_plate", "gallbladder", "gut", "liver",
                              "omentum", "peritoneum")))),
    ("bipolar", (("coagulate", ("abdominal_wall_cavity", "blood_vessel", "cystic_artery", "cystic_duct",
                                "cystic_pedicle", "cystic_plate", "gallbladder", "liver", "omentum",
                                "peritoneum")),
                 ("dissect", ("adhesion", "cystic_artery", "cystic_duct", "cystic_plate", "gallbladder",
                              "omentum")),
                 ("grasp", ("cystic_plate", "liver", "specimen_bag")),
                 ("retract", ("cystic_duct", "cystic_pedicle", "gallbladder", "liver", "omentum")))),
    ("hook", (("coagulate", ("blood_vessel", "cystic_artery", "cystic_duct", "cystic_pedicle", "cystic_plate",
                             "gallbladder", "liver", "omentum")),
              ("cut", ("blood_vessel", "peritoneum")),
              ("dissect", ("blood_vessel", "cystic_artery", "cystic_duct", "cystic_plate", "gallbladder",
                           "omentum", "peritoneum")),
              ("retract", ("gallbladder", "liver")))),
    ("scissors", (("coagulate", ("omentum",)),
                  ("cut", ("adhesion", "blood_vessel", "cystic_artery", "cystic_duct", "cystic_plate", "liver",
                           "omentum", "peritoneum")),
                  ("dissect", ("cystic_plate", "gallbladder", "omentum")))),
    ("clipper", (("clip", ("blood_vessel", "cystic_artery", "cystic_duct", "cystic_pedicle", "cystic_plate")),)),
    ("irrigator", (("aspirate", ("fluid",)),
                   ("dissect", ("cystic_duct", "cystic_pedicle", "cystic_plate", "gallbladder", "omentum")),
                   ("irrigate", ("abdominal_wall_cavity", "cystic_pedicle", "liver")),
                   ("retract", ("gallbladder", "liver", "omentum")))),
)
TRIPLET_COMPONENTS: tuple[tuple[int, int, int], ...] = tuple(
    [(INSTRUMENTS.index(i), VERBS.index(v), TARGETS.index(t))
     for i, verbs in _TRIPLET_GROUPS for v, targets in verbs for t in targets]
    + [(k, VERBS.index("null_verb"), TARGETS.index("null_target")) for k in range(len(INSTRUMENTS))])
TRIPLETS: tuple[str, ...] = tuple(f"{INSTRUMENTS[i]},{VERBS[v]},{TARGETS[t]}" for i, v, t in TRIPLET_COMPONENTS)
assert len(TRIPLETS) == 100 and TRIPLETS[1] == "grasper,dissect,gallbladder"

# Official splits (CAMMA-public/cholect50 dataloader_pth.py, split_selector): video numbers.
SPLITS: dict[str, dict[str, tuple[int, ...]]] = {
    "cholect50": {
        "train": (1, 15, 26, 40, 52, 65, 79, 2, 18, 27, 43, 56, 66, 92, 4, 22, 31, 47, 57, 68, 96, 5, 23, 35,
                  48, 60, 70, 103, 13, 25, 36, 49, 62, 75, 110),
        "val": (8, 12, 29, 50, 78),
        "test": (6, 51, 10, 73, 14, 74, 32, 80, 42, 111),
    },
    "cholect50-challenge": {
        "train": (1, 15, 26, 40, 52, 79, 2, 27, 43, 56, 66, 4, 22, 31, 47, 57, 68, 23, 35, 48, 60, 70, 13, 25,
                  49, 62, 75, 8, 12, 29, 50, 78, 6, 51, 10, 73, 14, 32, 80, 42),
        "val": (5, 18, 36, 65, 74),
        "test": (92, 96, 103, 110, 111),
    },
}

_ABSENT = -1
VECTOR_LEN = 15  # items in one label instance (see the module docstring)
L = TypeVar("L", bound=Hashable)


# ---------------------------------------------------------------- helpers shared by the CAMMA builders
def category_map(obj: Any, path: Path, key: str) -> dict[int, str]:
    """Read an id → name category table in any of the shapes CAMMA files use.

    Accepted: ``{"0": "grasper", ...}``, ``{"0": {"name": "grasper"}, ...}``,
    ``[{"id": 0, "name": "grasper"}, ...]`` (COCO style) and ``["grasper", ...]`` (position = id).

    Args:
        obj: the table as parsed from JSON.
        path: the file it came from (for errors).
        key: the table's name (for errors), e.g. ``categories.instrument``.

    Returns:
        id → name.

    Raises:
        InputError: a shape or entry that is none of the above.

    >>> category_map({"0": "grasper", "1": {"name": "hook"}}, Path("x.json"), "tools")
    {0: 'grasper', 1: 'hook'}
    >>> category_map([{"id": 3, "name": "MSRH"}, "NULL"], Path("x.json"), "operator")
    {3: 'MSRH', 1: 'NULL'}
    """
    items: list[tuple[Any, Any]]
    if isinstance(obj, Mapping):
        items = list(obj.items())
    elif isinstance(obj, list):
        items = [((e.get("id", pos)), e) if isinstance(e, Mapping) else (pos, e) for pos, e in enumerate(obj)]
    else:
        raise InputError(f"{key} must be an id → name table, found {type(obj).__name__}", path, key)
    out: dict[int, str] = {}
    for raw_id, value in items:
        name = value.get("name") if isinstance(value, Mapping) else value
        try:
            cid = int(raw_id)
        except (TypeError, ValueError):
            raise InputError(f"{key} has a non-integer id {raw_id!r}", path, key) from None
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{key} entry {raw_id!r} has no name", path, key)
        out[cid] = name.strip()
    return out


def sequence_runs(items: Iterable[tuple[int, L]], max_step: int) -> list[tuple[L, int, int]]:
    """Group frames into runs of one label: a run breaks where the label changes or frames jump.

    Args:
        items: ``(frame, label)`` pairs (any order; at most one label per frame is meaningful).
        max_step: the largest frame difference between consecutive frames of one run.

    Returns:
        ``(label, first_frame, last_frame)`` in frame order.

    >>> sequence_runs([(0, "a"), (1, "a"), (2, "b"), (4, "b"), (9, "b")], max_step=2)
    [('a', 0, 1), ('b', 2, 4), ('b', 9, 9)]
    """
    runs: list[tuple[L, int, int]] = []
    for frame, label in sorted(items, key=lambda x: x[0]):
        if runs and runs[-1][0] == label and frame - runs[-1][2] <= max_step:
            runs[-1] = (label, runs[-1][1], frame)
        else:
            runs.append((label, frame, frame))
    return runs


_PHASE_WORDS = {"calottriangledissection": "calot triangle dissection",
                "clippingcutting": "clipping and cutting",
                "cleaningcoagulation": "cleaning and coagulation"}


def readable_phase(name: str) -> str:
    """A Cholec80-family phase name as words: ``calotTriangleDissection`` → ``calot triangle dissection``.

    >>> readable_phase("ClippingCutting"), readable_phase("gallbladderRetraction")
    ('clipping and cutting', 'gallbladder retraction')
    """
    key = re.sub(r"[^a-z]", "", name.lower())
    if key in _PHASE_WORDS:
        return _PHASE_WORDS[key]
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ")
    return " ".join(words.lower().split())


def triplet_label(name: str) -> str:
    """Readable triplet: ``grasper,dissect,cystic_plate`` → ``grasper dissect cystic plate``.

    >>> triplet_label("hook,null_verb,null_target")
    'hook idle'
    """
    parts = [p.strip() for p in name.split(",")]
    if len(parts) == 3 and parts[1] == "null_verb":
        return f"{parts[0].replace('_', ' ')} idle"
    return " ".join(p.replace("_", " ") for p in parts if p not in ("null_verb", "null_target"))


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, read from its header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except (OSError, UnidentifiedImageError) as e:
        raise InputError(f"cannot read image: {e}", path) from None


def video_number(video_id: str) -> int:
    """``VID01`` → 1, ``video05`` → 5 (the trailing digits)."""
    m = re.search(r"(\d+)$", video_id)
    if not m:
        raise ValueError(f"no number in video id {video_id!r}")
    return int(m.group(1))


def check_box(box: Box, width: int, height: int, tolerance: float, path: Path, record: str) -> tuple[Box, bool]:
    """Clip a pixel box that overhangs the frame by at most ``tolerance`` of its size, else raise.

    Returns:
        The clipped box and whether it was changed.
    """
    x1, y1, x2, y2 = box
    tx, ty = tolerance * width, tolerance * height
    if x1 < -tx or y1 < -ty or x2 > width + tx or y2 > height + ty:
        raise InputError(f"box {[round(v, 2) for v in box]} is outside the {width}x{height} frame", path, record)
    clipped = clip_box(box, width, height)
    return clipped, clipped != box


@dataclass(frozen=True)
class _Runs:
    """Turns ``(frame, label)`` items of one video into ``(label, start_s, end_s)`` runs by its key spacing."""

    spacing: KeySpacing
    keys: list[int]
    meta: VideoMeta

    def __call__(self, items: Iterable[tuple[int, L]]) -> list[tuple[L, float, float]]:
        fps = self.meta.native_fps
        return [(label, first / fps, min(self.spacing.run_end(last, self.keys) / fps, self.meta.duration_s))
                for label, first, last in sequence_runs(items, self.spacing.tolerance)]


# ---------------------------------------------------------------- the builder
@dataclass
class CholecT50Config(BuilderConfig):
    """Options of the CholecT50 reader.

    Args:
        videos_dir / labels_dir: folders under the raw root.
        id_regex: video folder / label file names to read.
        split_variant: official split scheme for ``VideoMeta.split`` (``cholect50``,
            ``cholect50-challenge``), or None for no official split.
        fps: label rate; None reads the label file's ``fps`` (1 in the release).
        merge_gap_s: runs of one phase / triplet / tool separated by at most this many seconds of
            unlabelled frames are joined (the tolerance for dense labels).
        merge_gap_keys: ... and by at most this many median key steps (sparse labels; see the
            module docstring), whichever is larger.
        end_tolerance_s: annotations this far past the last frame are clipped and reported;
            further ones are an error.
        box_tolerance: boxes overhanging the frame by at most this fraction of its size are clipped.
        frame_size: (width, height) to assume instead of reading the first frame.
    """

    videos_dir: str = "videos"
    labels_dir: str = "labels"
    id_regex: str = r"VID\d{2,}"
    split_variant: str | None = "cholect50"
    fps: float | None = None
    merge_gap_s: float = 1.0
    merge_gap_keys: float = 2.0
    end_tolerance_s: float = 2.0
    box_tolerance: float = 0.02
    frame_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.frame_size is not None and (len(self.frame_size) != 2 or min(self.frame_size) <= 0):
            raise ValueError(f"frame_size must be two positive integers (WxH), not {self.frame_size!r}")
        if self.merge_gap_keys < 1:
            raise ValueError("merge_gap_keys must be >= 1 (a run spans at least one key step)")
        if self.split_variant is not None and self.split_variant not in SPLITS:
            raise ValueError(f"split_variant must be one of {sorted(SPLITS)} or None, not {self.split_variant!r}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError("fps must be positive (or None to read it from the label file)")
        if min(self.merge_gap_s, self.end_tolerance_s, self.box_tolerance) < 0:
            raise ValueError("merge_gap_s, end_tolerance_s and box_tolerance must be >= 0")
        re.compile(self.id_regex)


@register_builder
class CholecT50Builder(SourceBuilder):
    """CholecT50 → phase and triplet events, and tool tracks where boxes exist."""

    name = "cholect50"
    data_source = "CholecT50"
    tasks = ("NAP", "TAG", "DVC", "VS", "STG", "RC")
    primary_kind = "phase"  # DVC / NAP / VS use phases
    config_class = CholecT50Config
    config: CholecT50Config

    # ------------------------------------------------------------ listing
    def list_videos(self) -> list[str]:
        labels = self.root / self.config.labels_dir
        if not labels.is_dir():
            raise InputError("CholecT50 labels folder not found", labels)
        pattern = re.compile(self.config.id_regex)
        ids = [p.stem for p in labels.glob("*.json") if pattern.fullmatch(p.stem)]
        return sorted(ids, key=lambda v: (video_number(v), v))

    @classmethod
    def known_test_groups(cls) -> frozenset[str]:
        """The default split variant's test videos that are Cholec80 surgeries, as split groups."""
        variant = cls.config_class().split_variant
        numbers = SPLITS[variant]["test"] if variant else ()
        return frozenset(g for n in numbers if (g := cholec80_group(n)))

    @classmethod
    def detect(cls, root: str | Path) -> bool:
        root = Path(root)
        return any((root / "labels").glob("VID*.json"))  # videos/ is optional: --plan-only

    # ------------------------------------------------------------ reading
    def read_video(self, video_id: str) -> VideoAnnotation:
        cfg = self.config
        path = require_file(self.root / cfg.labels_dir / f"{video_id}.json", "CholecT50 label file")
        data = load_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("annotations"), dict):
            raise InputError("expected a JSON object with an 'annotations' object", path)
        issues: list[str] = []
        vocab = self._vocabularies(data, path, issues)
        fps = cfg.fps or self._label_fps(data, path)

        keys = self._keys(data["annotations"], path)
        spacing = key_spacing(keys, self._max_step(fps), cfg.merge_gap_keys)
        frames = self._frame_files(video_id, keys)
        media = "present" if frames[min(frames)].is_file() else "absent"
        size = cfg.frame_size or (image_size(frames[min(frames)]) if media == "present" else None)
        if size is None and self._has_boxes(data["annotations"]):
            raise InputError(f"{video_id} has boxes but no frame to read the frame size from; give it with "
                             f"--option frame_size=WxH", self.root / cfg.videos_dir / video_id)
        width, height = size if size else (None, None)
        num_frames = max(frames) + 1
        declared = data.get("num_frames")
        if isinstance(declared, int) and declared != num_frames:
            what = ("the number of labelled frames" if declared == len(keys)
                    else f"neither the video length nor the {len(keys)} labelled frames")
            issues.append(f"label file says num_frames={declared}: {what}; the video is taken to be {num_frames} "
                          f"frames long (its last frame)")
        if spacing.tolerance > self._max_step(fps):
            issues.append(f"sparse label keys: {len(keys)} keys, median step {spacing.step / fps:g} s; runs of one "
                          f"label joined across gaps up to {spacing.tolerance / fps:g} s")
        meta = VideoMeta(video_id=video_id, native_fps=fps, num_frames=num_frames, duration_s=num_frames / fps,
                         width=width, height=height, frame_files=frames, split=self._split(video_id),
                         attrs={"procedure": PROCEDURE, "label_fps": fps,
                                "split_group": cholec80_group(video_number(video_id)),
                                "label_keys": spacing.as_attrs(fps), "media": media})
        if media == "absent":
            issues.append("no frame folder: planned from the labels alone (the labelled frames stand for the frames)")

        phase_of, triplets_at, boxes_at = self._parse_annotations(data["annotations"], path, vocab, meta, issues)
        runs = _Runs(spacing, keys, meta)
        events = self._phase_events(phase_of, vocab["phase"], runs) + self._triplet_events(triplets_at, vocab, runs)
        tracks = self._tracks(boxes_at, vocab["instrument"], meta, spacing, issues)
        meta.attrs["boxed"] = bool(tracks)
        present = sorted({e.label for e in events if e.kind == "triplet"})
        ann = VideoAnnotation(source=self.name, data_source=self.data_source, video=meta, events=events,
                              tracks=tracks, vocab={"phase": [vocab["phase"][k] for k in sorted(vocab["phase"])],
                                                    "triplet": present,
                                                    "tool": sorted({t.label for t in tracks})},
                              issues=issues)
        ann.validate()
        return ann

    def _label_fps(self, data: dict[str, Any], path: Path) -> float:
        fps = data.get("fps", 1)
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps <= 0:
            raise InputError(f"'fps' must be a positive number, found {fps!r}", path, "fps")
        return float(fps)

    def _split(self, video_id: str) -> str | None:
        if self.config.split_variant is None:
            return None
        n = video_number(video_id)
        for split, numbers in SPLITS[self.config.split_variant].items():
            if n in numbers:
                return split
        return None

    def _frame_files(self, video_id: str, keys: list[int]) -> dict[int, Path]:
        """The frames on disk; when planning without frames (``plan_only``), the labelled frames' paths."""
        folder = self.root / self.config.videos_dir / video_id
        frames = ({int(p.stem): p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.stem.isdigit()}
                  if folder.is_dir() else {})
        if frames:
            return frames
        if self.plan_only:
            return {k: folder / f"{k:06d}.png" for k in keys}
        what = "not found" if not folder.is_dir() else "holds no NNNNNN.png frames"
        raise InputError(f"frame folder of {video_id} {what} (the label file lists this video); --plan-only "
                         f"plans from the labels alone", folder)

    @staticmethod
    def _keys(annotations: dict[str, Any], path: Path) -> list[int]:
        """The labelled frame numbers, sorted."""
        keys = []
        for key in annotations:
            try:
                keys.append(int(key))
            except ValueError:
                raise InputError("frame id is not an integer", path, f"annotations[{key!r}]") from None
        if not keys:
            raise InputError("'annotations' holds no labelled frame", path, "annotations")
        return sorted(keys)

    @staticmethod
    def _has_boxes(annotations: dict[str, Any]) -> bool:
        return any(isinstance(vec, list) and len(vec) >= 7 and all(isinstance(x, (int, float)) and x >= 0
                                                                    for x in vec[3:7])
                   for instances in annotations.values() if isinstance(instances, list) for vec in instances)

    def _vocabularies(self, data: dict[str, Any], path: Path, issues: list[str]) -> dict[str, dict[int, str]]:
        """id → name per category, from the file's ``categories``, else label_mapping.txt / documented lists."""
        documented = {"instrument": INSTRUMENTS, "verb": VERBS, "target": TARGETS, "phase": PHASES,
                      "triplet": TRIPLETS}
        cats = data.get("categories")
        if isinstance(cats, list):  # the docs' list form: [{"triplet": {...}}, {"instrument": {...}}, ...]
            merged: dict[str, Any] = {}
            for entry in cats:
                if isinstance(entry, dict):
                    merged.update(entry)
            cats = merged
        if cats is not None and not isinstance(cats, dict):
            raise InputError(f"'categories' must be an object or a list, found {type(cats).__name__}", path,
                             "categories")
        cats = cats or {}
        vocab: dict[str, dict[int, str]] = {}
        for key, names in documented.items():
            if key in cats:
                vocab[key] = category_map(cats[key], path, f"categories.{key}")
                differing = [f"{k}: {v!r}" for k, v in sorted(vocab[key].items())
                             if k < len(names) and v != names[k]]
                if differing:
                    issues.append(f"categories.{key} differs from the documented list at {differing[:3]}")
            elif key == "triplet" and (mapping := self._label_mapping()) is not None:
                vocab[key] = {ivt: f"{INSTRUMENTS[i]},{VERBS[v]},{TARGETS[t]}" for ivt, (i, v, t) in mapping.items()}
            else:
                vocab[key] = dict(enumerate(names))
                issues.append(f"no categories.{key} in the label file; the documented list is used")
        return vocab

    def _label_mapping(self) -> dict[int, tuple[int, int, int]] | None:
        """``label_mapping.txt``: triplet id → (instrument, verb, target) ids; None if the file is absent."""
        path = self.root / "label_mapping.txt"
        if not path.is_file():
            return None
        out: dict[int, tuple[int, int, int]] = {}
        for n, row in enumerate(read_csv(path, header=False), start=1):
            if row[0].lstrip().startswith("#"):
                continue
            try:
                ivt, i, v, t = (int(c) for c in row[:4])
            except ValueError:
                raise InputError(f"expected integer ids 'IVT, I, V, T, IV, IT', found {row}", path,
                                 f"line {n}") from None
            if not (0 <= i < len(INSTRUMENTS) and 0 <= v < len(VERBS) and 0 <= t < len(TARGETS)):
                raise InputError(f"component id out of range in {row}", path, f"line {n}")
            out[ivt] = (i, v, t)
        return out

    def _parse_annotations(self, annotations: dict[str, Any], path: Path, vocab: dict[str, dict[int, str]],
                           meta: VideoMeta, issues: list[str]
                           ) -> tuple[dict[int, int], dict[int, set[int]], dict[tuple[int, int], list[Box]]]:
        """Per frame: the phase id, the triplet ids, and the distinct instrument boxes (pixel xyxy)."""
        cfg = self.config
        last_ok = meta.num_frames - 1 + int(round(cfg.end_tolerance_s * meta.native_fps))
        phase_of: dict[int, int] = {}
        triplets_at: dict[int, set[int]] = defaultdict(set)
        boxes_at: dict[tuple[int, int], list[Box]] = defaultdict(list)
        past_end = clipped = conflicts = 0
        for key, instances in annotations.items():
            record = f"annotations[{key!r}]"
            try:
                frame = int(key)
            except ValueError:
                raise InputError("frame id is not an integer", path, record) from None
            if frame < 0 or frame > last_ok:
                raise InputError(f"frame {frame} is past the last frame {meta.num_frames - 1} of "
                                 f"{meta.video_id} (tolerance {cfg.end_tolerance_s}s)", path, record)
            if frame >= meta.num_frames:
                past_end += 1
                continue
            if not isinstance(instances, list):
                raise InputError("expected a list of instance vectors", path, record)
            for n, vec in enumerate(instances):
                where = f"{record}[{n}]"
                if not isinstance(vec, list) or len(vec) < VECTOR_LEN or not all(
                        isinstance(x, (int, float)) and not isinstance(x, bool) for x in vec[:VECTOR_LEN]):
                    raise InputError(f"expected a vector of {VECTOR_LEN} numbers, found {vec!r}", path, where)
                triplet = self._class_id(vec[0], vocab["triplet"], "triplet", path, where)
                instrument = self._class_id(vec[1], vocab["instrument"], "instrument", path, where)
                self._class_id(vec[7], vocab["verb"], "verb", path, where)
                self._class_id(vec[8], vocab["target"], "target", path, where)
                phase = self._class_id(vec[14], vocab["phase"], "phase", path, where)
                if phase is not None and phase_of.setdefault(frame, phase) != phase:
                    conflicts += 1
                if triplet is not None:
                    triplets_at[frame].add(triplet)
                box = [float(x) for x in vec[3:7]]
                if instrument is None or any(x < 0 for x in box):
                    continue
                if box[2] == 0 or box[3] == 0:
                    issues.append(f"frame {frame}: empty {vocab['instrument'][instrument]} box dropped")
                    continue
                pixel, changed = check_box(xywh_norm_to_xyxy(box, meta.width, meta.height), meta.width,
                                           meta.height, cfg.box_tolerance, path, where)
                clipped += changed
                if pixel not in boxes_at[(frame, instrument)]:
                    boxes_at[(frame, instrument)].append(pixel)
        if past_end:
            issues.append(f"{past_end} labelled frame(s) past the last frame {meta.num_frames - 1} dropped")
        if clipped:
            issues.append(f"{clipped} box(es) overhanging the frame clipped")
        if conflicts:
            issues.append(f"{conflicts} instance(s) disagree with their frame's phase; the first phase is kept")
        return phase_of, triplets_at, boxes_at

    @staticmethod
    def _class_id(value: float, names: dict[int, str], what: str, path: Path, record: str) -> int | None:
        """A category id, or None for -1 (absent); anything else unknown raises."""
        if value == _ABSENT:
            return None
        cid = int(value)
        if cid != value or cid not in names:
            raise InputError(f"unknown {what} id {value!r} (known: 0..{max(names)})", path, record)
        return cid

    def _max_step(self, fps: float) -> int:
        return 1 + int(round(self.config.merge_gap_s * fps))

    def _phase_events(self, phase_of: dict[int, int], names: dict[int, str], runs: _Runs) -> list[Event]:
        return [Event(label=names[pid], start_s=start, end_s=end, kind="phase", attrs={"phase_id": pid})
                for pid, start, end in runs(phase_of.items())]

    def _triplet_events(self, triplets_at: dict[int, set[int]], vocab: dict[str, dict[int, str]],
                        runs: _Runs) -> list[Event]:
        frames_of: dict[int, list[int]] = defaultdict(list)
        for frame, ids in triplets_at.items():
            for tid in ids:
                frames_of[tid].append(frame)
        events = []
        for tid, frames in frames_of.items():
            raw = vocab["triplet"][tid]
            for _, start, end in runs((f, tid) for f in frames):
                events.append(Event(label=triplet_label(raw), start_s=start, end_s=end, kind="triplet",
                                    attrs={"triplet_id": tid, "triplet": raw}))
        return sorted(events, key=lambda e: (e.start_s, e.end_s, e.label))

    def _tracks(self, boxes_at: dict[tuple[int, int], list[Box]], instruments: dict[int, str], meta: VideoMeta,
                spacing: KeySpacing, issues: list[str]) -> list[Track]:
        """One track per run of frames where exactly one box of an instrument is drawn."""
        fps = meta.native_fps
        single: dict[int, list[tuple[int, Box]]] = defaultdict(list)
        ambiguous = 0
        for (frame, instrument), boxes in boxes_at.items():
            if len(boxes) == 1:
                single[instrument].append((frame, boxes[0]))
            else:
                ambiguous += 1
        if ambiguous:
            issues.append(f"{ambiguous} frame(s) with several boxes of one instrument left out of tracks "
                          f"(CholecT50 has no track ids)")
        tracks = []
        for instrument in sorted(single):
            by_frame = dict(single[instrument])
            runs = sequence_runs(((f, instrument) for f in by_frame), spacing.tolerance)
            name = instruments[instrument]
            for n, (_, first, last) in enumerate(runs, start=1):
                boxes = {f / fps: by_frame[f] for f in sorted(by_frame) if first <= f <= last}
                tracks.append(Track(label=name, track_id=f"{name}-{n}", boxes=boxes, kind="tool",
                                    attrs={"instrument_id": instrument}))
        return tracks
