"""Train/test splits by source video: deterministic, leak-free, overridable.

Precedence for one video (first that applies):

1. an override file (``--split-file``): JSON ``{"video_id": "test", ...}`` (optionally nested by
   source: ``{"nurvid": {...}}``) or CSV with columns ``video_id,split`` (and optionally
   ``source``);
2. the source's official split (``VideoMeta.split``: EgoSurgery, NurViD);
3. a hash of ``(seed, source, video_id)``: the video is ``test`` when the hash, read as a number
   in [0, 1), is below ``test_fraction`` (0.15 → 85/15).

Rule 3 alone can put no video of a small source in test (3 videos: 61 % of seeds); when a source
has ≥ 2 hash-assigned videos and none or all of them went to test, the video with the smallest
(largest) hash is moved, so both splits are non-empty. This depends only on the set of video ids.

A ``val`` split (official, or in an override file) maps to ``train`` unless ``keep_val=True``:
MedVidBench publishes train/val together (TrainVal) and the ``train`` flag is true for both.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from mvbench.dataset_io import load_json
from mvbench.errors import InputError

VALID = ("train", "val", "test")


def split_hash(video_id: str, source: str, seed: int) -> float:
    """The video's position in [0, 1) for the hash rule (sha256 of seed, source and id)."""
    digest = hashlib.sha256(f"{seed}\x1f{source}\x1f{video_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def load_split_file(path: str | Path, source: str | None = None) -> dict[str, str]:
    """Read an override file (JSON or CSV) into ``{video_id: split}`` for ``source``.

    Raises:
        InputError: unreadable file, a bad split name (naming the video), or a CSV without the
            ``video_id``/``split`` columns.
    """
    path = Path(path)
    out: dict[str, str] = {}
    if path.suffix.lower() == ".csv":
        if not path.is_file():
            raise InputError("split file not found", path)
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"video_id", "split"} <= set(reader.fieldnames):
                raise InputError("split CSV needs the columns video_id,split", path, "row 1")
            for n, row in enumerate(reader, start=2):
                if source and row.get("source") and row["source"] != source:
                    continue
                out[row["video_id"].strip()] = _check(row["split"], path, f"row {n}")
        return out
    data = load_json(path)
    if not isinstance(data, dict):
        raise InputError("split JSON must be an object {video_id: split}", path)
    if source and isinstance(data.get(source), dict):
        data = data[source]
    for vid, split in data.items():
        if isinstance(split, dict):  # another source's table
            continue
        out[str(vid)] = _check(split, path, vid)
    return out


def _check(split: object, path: Path, where: object) -> str:
    value = str(split).strip().lower()
    if value not in VALID:
        raise InputError(f"split {split!r} is not one of {VALID}", path, where)
    return value


def assign_splits(video_ids: Sequence[str], source: str, seed: int = 0,
                  official: Mapping[str, str | None] | None = None,
                  overrides: Mapping[str, str] | None = None, test_fraction: float = 0.15,
                  keep_val: bool = False) -> dict[str, str]:
    """Split every video of one source (see the module docstring for the rules).

    Args:
        video_ids: all videos of the source (the whole list: the non-empty-split guarantee
            looks at all of them).
        source: builder name (part of the hash).
        seed: build seed.
        official: the source's own split per video, where it has one.
        overrides: ``{video_id: split}`` from a split file.
        test_fraction: share of hash-assigned videos that go to test.
        keep_val: keep ``val`` instead of mapping it to ``train``.

    Returns:
        ``{video_id: "train" | "val" | "test"}``.
    """
    official = official or {}
    overrides = overrides or {}
    out: dict[str, str] = {}
    hashed: dict[str, float] = {}
    for vid in video_ids:
        chosen = overrides.get(vid) or official.get(vid)
        if chosen:
            chosen = chosen.lower()
            if chosen not in VALID:
                raise InputError(f"official split {chosen!r} is not one of {VALID}", None, vid)
            out[vid] = chosen
        else:
            hashed[vid] = split_hash(vid, source, seed)
            out[vid] = "test" if hashed[vid] < test_fraction else "train"
    if len(hashed) >= 2 and 0 < test_fraction < 1:
        test = [v for v in hashed if out[v] == "test"]
        if not test:
            out[min(hashed, key=lambda v: (hashed[v], v))] = "test"
        elif len(test) == len(hashed):
            out[max(hashed, key=lambda v: (hashed[v], v))] = "train"
    if not keep_val:
        out = {v: ("train" if s == "val" else s) for v, s in out.items()}
    return out
