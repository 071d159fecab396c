"""The expert annotations behind a video's caption instances, kept beside the dataset.

A build writes ``OUT/annotations/<source>/<video>.json`` for every video that has a DVC, VS or RC
instance: the canonical :class:`~mvbench.builders.base.VideoAnnotation` the instances were planned
from (video facts, events, tracks with their boxes, vocabularies). ``mvbench generate`` reads it to
enrich the prompts (boxes drawn on frames, per-frame phase/triplet/action text), so the paid stage
needs only the built dataset, not the raw source tree that the build read (which may be on another
machine, or gone). It is free and deterministic like the rest of the build, and not part of the
records or their content hash.

For a dataset built before these files existed, :func:`load_annotation` re-reads the video
through its builder from the raw root the manifest records (or one given explicitly).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mvbench.builders.base import Event, Track, VideoAnnotation, VideoMeta
from mvbench.dataset_io import atomic_write_bytes, load_json
from mvbench.errors import InputError

ANNOTATIONS_DIR = "annotations"
FORMAT_VERSION = 1
CAPTION_TASKS = ("DVC", "VS", "RC")


def _safe(video_id: str) -> str:
    from mvbench.builders.pipeline import safe_name  # one naming rule for every per-video file

    return safe_name(video_id)


def annotation_path(out: str | Path, source: str, video_id: str) -> Path:
    """``OUT/annotations/<source>/<video>.json``."""
    return Path(out) / ANNOTATIONS_DIR / source / f"{_safe(video_id)}.json"


def _plain(value: Any) -> Any:
    """JSON-able copy of builder attrs (paths and sets become strings and lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def annotation_to_json(ann: VideoAnnotation) -> dict[str, Any]:
    """The parts of a video's annotations that enrichment uses, as plain JSON (boxes as lists)."""
    v = ann.video
    return {
        "format": FORMAT_VERSION, "source": ann.source, "data_source": ann.data_source,
        "video": {"video_id": v.video_id, "native_fps": v.native_fps, "num_frames": v.num_frames,
                  "duration_s": v.duration_s, "width": v.width, "height": v.height,
                  "attrs": _plain({k: a for k, a in v.attrs.items() if k not in ("decode_fps", "decode_num_frames")})},
        "events": [{"label": e.label, "start_s": e.start_s, "end_s": e.end_s, "kind": e.kind,
                    "attrs": _plain(e.attrs)} for e in ann.events],
        "tracks": [{"label": t.label, "track_id": t.track_id, "kind": t.kind,
                    "boxes": [[ts, *map(float, box)] for ts, box in sorted(t.boxes.items())]}
                   for t in ann.tracks],
        "vocab": _plain(ann.vocab),
    }


def annotation_from_json(data: dict[str, Any], path: str | Path | None = None) -> VideoAnnotation:
    """Inverse of :func:`annotation_to_json` (frames are not needed: the meta points nowhere).

    Raises:
        InputError: a malformed file (naming it).
    """
    try:
        v = data["video"]
        meta = VideoMeta(video_id=v["video_id"], native_fps=float(v["native_fps"]), num_frames=int(v["num_frames"]),
                         duration_s=float(v["duration_s"]), width=v.get("width"), height=v.get("height"),
                         frame_files={}, attrs=dict(v.get("attrs") or {}))
        events = [Event(e["label"], float(e["start_s"]), float(e["end_s"]), e.get("kind", "action"),
                        dict(e.get("attrs") or {})) for e in data.get("events", [])]
        tracks = [Track(t["label"], t["track_id"], {float(b[0]): tuple(map(float, b[1:5])) for b in t["boxes"]},
                        t.get("kind", "tool")) for t in data.get("tracks", [])]
        return VideoAnnotation(source=data["source"], data_source=data["data_source"], video=meta,
                               events=events, tracks=tracks, vocab=dict(data.get("vocab") or {}))
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise InputError(f"malformed annotation file: {type(e).__name__}: {e}", path) from None


def write_annotation(out: str | Path, ann: VideoAnnotation) -> Path:
    """Write one video's annotation file atomically (compact JSON)."""
    path = annotation_path(out, ann.source, ann.video.video_id)
    text = json.dumps(annotation_to_json(ann), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return atomic_write_bytes(path, text.encode("utf-8"))


def load_annotation(out: str | Path, source: str, video_id: str, root: str | Path | None = None,
                    builder_options: dict[str, Any] | None = None, seed: int = 0) -> VideoAnnotation:
    """A video's annotations: the build's annotation file, else re-read through the source's builder.

    Args:
        out: the built dataset folder.
        source: the builder name.
        video_id: the source video.
        root: the raw root to re-read from when the file is missing (the manifest's ``root``).
        builder_options: the build's ``--option`` overrides for that source.
        seed: the build's seed.

    Raises:
        InputError: no annotation file and no readable raw root (saying which to provide).
    """
    path = annotation_path(out, source, video_id)
    if path.is_file():
        return annotation_from_json(load_json(path), path)
    if root is None or not Path(root).is_dir():
        raise InputError(f"no annotation file for {source}:{video_id} and the raw root {root!r} is not a "
                         "folder: rebuild the dataset, or pass the raw root of that source", path)
    from mvbench.builders import get_builder

    builder = get_builder(source)(root, seed=seed, **(builder_options or {}))
    return builder.read_video(video_id)
