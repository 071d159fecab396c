"""The task-balanced "Standard" version: at most N records per (source, task), chosen with a seed.

``balance(IN, OUT, cap)`` reads a built dataset, keeps per (source, task) the ``cap`` records
whose ``sha256(seed, uid)`` is smallest (a seeded draw that does not depend on record order), and
writes a new dataset: ``OUT/<source>/<split>-NNNNN.parquet`` and ``OUT/manifest.json``.

Frames are referenced, not copied: records keep their ``frames/...`` paths, and ``OUT/frames`` is
a symbolic link to ``IN/frames`` (absolute), so ``OUT`` reads like a full dataset while the
frames stay in one place. The manifest names the input folder (``frames_from``). Copy
``IN/frames`` over the link to make ``OUT`` self-contained.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from mvbench.builders.manifest import (MANIFEST_NAME, base_manifest, content_hash, count_records,
                                       write_manifest)
from mvbench.dataset_io import load_json, read_parquet, write_parquet
from mvbench.errors import InputError
from mvbench.records import Record

FRAMES_DIR = "frames"


def _rank(seed: int, uid: str) -> str:
    return hashlib.sha256(f"{seed}\x1f{uid}".encode("utf-8")).hexdigest()


def read_dataset(in_dir: Path) -> dict[str, list[Record]]:
    """Records of a built dataset, by source folder (``IN/<source>/*.parquet``)."""
    if not in_dir.is_dir():
        raise InputError("dataset folder not found", in_dir)
    out: dict[str, list[Record]] = {}
    for folder in sorted(p for p in in_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.name == FRAMES_DIR or not any(folder.glob("*.parquet")):
            continue
        out[folder.name] = read_parquet(folder)
    if not out:
        raise InputError("no <source>/*.parquet shards found (is this a built dataset?)", in_dir)
    return out


def select_balanced(records: list[Record], cap: int, seed: int = 0, per_split: bool = False) -> list[Record]:
    """Keep at most ``cap`` records per task (per task and split with ``per_split``)."""
    groups: dict[tuple, list[Record]] = {}
    for r in records:
        groups.setdefault((r.task, r.split) if per_split else (r.task,), []).append(r)
    kept: list[Record] = []
    for _, group in sorted(groups.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        kept += sorted(group, key=lambda r: _rank(seed, r.uid))[:cap]
    return kept


def balance(in_dir: str | Path, out_dir: str | Path, cap: int, seed: int = 0, *,
            per_split: bool = False, shard_size: int = 1000) -> dict[str, Any]:
    """Write the capped dataset and its manifest; return the manifest.

    Args:
        in_dir: a built dataset (``mvbench build`` output).
        out_dir: the new dataset folder (must not be ``in_dir``).
        cap: records kept per (source, task) at most.
        seed: seeds the draw.
        per_split: cap each (source, task, split) separately instead.
        shard_size: records per shard at most.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if cap < 1:
        raise ValueError("cap must be >= 1")
    if in_dir.resolve() == out_dir.resolve():
        raise InputError("output folder must differ from the input folder", out_dir)
    by_source = read_dataset(in_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kept_all: list[Record] = []
    shards: list[str] = []
    for source, records in by_source.items():
        kept = select_balanced(records, cap, seed, per_split)
        kept_all += kept
        by_split: dict[str, list[Record]] = {}
        for r in kept:
            by_split.setdefault(r.split or "train", []).append(r)
        folder = out_dir / source
        written = set()
        for split, recs in sorted(by_split.items()):
            recs.sort(key=lambda r: r.uid)
            for n, start in enumerate(range(0, len(recs), shard_size)):
                path = write_parquet(recs[start:start + shard_size], folder / f"{split}-{n:05d}.parquet")
                written.add(path.name)
                shards.append(path.relative_to(out_dir).as_posix())
        for stale in folder.glob("*.parquet"):
            if stale.name not in written:
                stale.unlink()
    frames_link = out_dir / FRAMES_DIR
    if (in_dir / FRAMES_DIR).is_dir() and not frames_link.exists():
        os.symlink((in_dir / FRAMES_DIR).resolve(), frames_link, target_is_directory=True)
    source_manifest = load_json(in_dir / MANIFEST_NAME) if (in_dir / MANIFEST_NAME).is_file() else {}
    digest, n_records, n_frames = content_hash(kept_all)
    manifest = base_manifest("balance", {"input": str(in_dir.resolve()), "cap": cap, "seed": seed,
                                         "per_split": per_split, "shard_size": shard_size})
    manifest.update({
        "input_content_hash": source_manifest.get("content_hash"),
        "counts": count_records(kept_all, {r.data_source: s for s, rs in by_source.items() for r in rs[:1]}),
        "records": n_records,
        "records_in": sum(len(v) for v in by_source.values()),
        "frames": {"count": n_frames, "root": FRAMES_DIR, "frames_from": str((in_dir / FRAMES_DIR).resolve()),
                   "copied": False},
        "shards": sorted(shards),
        "content_hash": digest,
    })
    write_manifest(out_dir, manifest)
    return manifest
