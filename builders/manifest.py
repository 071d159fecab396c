"""The dataset manifest: what was built, from what, with which code, and a content hash.

``manifest.json`` is written last (atomically) by every command that writes a dataset; a folder
without it is an unfinished build. The content hash covers the records (canonical JSON of every
row, sorted by uid) and the frame list (every frame path the records reference, sorted): two
builds from the same inputs have the same hash whether or not one was interrupted and resumed.
Timestamps and worker counts are recorded but not hashed.
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from mvbench import __version__
from mvbench.dataset_io import atomic_write_json, load_json
from mvbench.records import SCHEMA_VERSION, Record, canonical_json

MANIFEST_NAME = "manifest.json"
FORMAT = "mvbench-dataset"
_PACKAGES = ("pyarrow", "datasets", "numpy", "av", "decord", "opencv-python-headless", "ray")


def package_versions() -> dict[str, str]:
    """Versions of mvbench, Python and the packages a build depends on (installed ones only)."""
    out = {"mvbench": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def record_frames(record: Record) -> list[str]:
    """Every frame path a record references (its frame list, plus the RC start frame)."""
    paths = list(record.video)
    if record.RC_info and isinstance(record.RC_info.get("start_frame"), str):
        paths.append(record.RC_info["start_frame"])
    return paths


def content_hash(records: Sequence[Record]) -> tuple[str, int, int]:
    """sha256 over the records (canonical JSON rows sorted by uid) and the sorted frame list.

    Returns:
        ``(hex digest, number of records, number of distinct frames)``.
    """
    rows = sorted((r.uid, canonical_json(r.to_row())) for r in records)
    frames: set[str] = set()
    h = hashlib.sha256()
    for r in records:
        frames.update(record_frames(r))
    for _, row in rows:
        h.update(row.encode("utf-8"))
        h.update(b"\n")
    h.update(b"--frames--\n")
    for path in sorted(frames):
        h.update(path.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest(), len(rows), len(frames)


def count_records(records: Iterable[Record], source_of: dict[str, str] | None = None
                  ) -> dict[str, dict[str, dict[str, int]]]:
    """Counts per (source, task, split); ``source_of`` maps data_source → source name."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for r in records:
        src = (source_of or {}).get(r.data_source, r.data_source)
        by_task = out.setdefault(src, {}).setdefault(r.task, {})
        split = r.split or "unsplit"
        by_task[split] = by_task.get(split, 0) + 1
    return {s: {t: dict(sorted(v.items())) for t, v in sorted(d.items())} for s, d in sorted(out.items())}


def base_manifest(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The fields every manifest starts with."""
    return {"format": FORMAT, "kind": kind, "schema_version": SCHEMA_VERSION,
            "versions": package_versions(), "config": config}


def write_manifest(out_dir: str | Path, manifest: dict[str, Any]) -> Path:
    """Write ``out_dir/manifest.json`` atomically."""
    return atomic_write_json(Path(out_dir) / MANIFEST_NAME, manifest)


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    """Read ``out_dir/manifest.json`` (InputError naming it if missing or malformed)."""
    return load_json(Path(out_dir) / MANIFEST_NAME)
