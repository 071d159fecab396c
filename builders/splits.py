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

Cross-source groups (:func:`unify_groups`): some sources film the same surgeries — CholecT50
``VIDnn``, CholecTrack20 ``VIDnn`` and Cholec80-CVS ``videoNN`` are Cholec80 surgery ``nn`` — and
their official splits disagree (Cholec80 5, 22, 26, 29, 35 are test in Cholec80-CVS but train in
CholecT50; 42, 51, 73, 74, 80 the reverse). A builder names the recording in
``VideoMeta.attrs["split_group"]`` (``cholec80:05``). After the per-source rules above, every
group gets one split across all sources of the build: ``test`` if any member is test (test takes
precedence, so nothing seen in training is tested), else ``val`` if any member is val, else
``train``. A build of one source cannot see the others' raw splits, so builders also publish the
groups their official *tables* put in test (``SourceBuilder.known_test_groups``: Cholec80-CVS's
15 test videos and CholecT50's 8 Cholec80 test videos); those groups are test in every build.
Limitations: CholecTrack20's split comes from its folder layout, not a table, so a build without
CholecTrack20 cannot see it; an override file entry (rule 1) is explicit and is never moved.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Mapping, Sequence
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


def unify_groups(splits: Mapping[tuple[str, str], str], groups: Mapping[tuple[str, str], str | None],
                 known_test: Iterable[str] = (), fixed: Iterable[tuple[str, str]] = ()
                 ) -> tuple[dict[tuple[str, str], str], list[dict[str, str]]]:
    """Give every video of a cross-source group one split (see the module docstring).

    Args:
        splits: ``{(source, video_id): split}`` after the per-source rules.
        groups: ``{(source, video_id): group key or None}``.
        known_test: groups some source's official tables put in test.
        fixed: videos whose split came from an override file (never moved).

    Returns:
        The new splits and the moves, ``{"source", "video_id", "group", "from", "to"}`` each.

    >>> s = {("a", "VID05"): "train", ("b", "video05"): "test", ("a", "VID06"): "train"}
    >>> g = {("a", "VID05"): "cholec80:05", ("b", "video05"): "cholec80:05", ("a", "VID06"): "cholec80:06"}
    >>> new, moves = unify_groups(s, g, known_test={"cholec80:06"})
    >>> new[("a", "VID05")], new[("a", "VID06")], len(moves)
    ('test', 'test', 2)
    """
    rank = {"train": 0, "val": 1, "test": 2}
    fixed = set(fixed)
    target: dict[str, str] = {g: "test" for g in known_test}
    for key, group in groups.items():
        if group and key in splits:
            best = target.get(group, "train")
            target[group] = max(best, splits[key], key=rank.__getitem__)
    out = dict(splits)
    moves = []
    for key, group in sorted(groups.items()):
        if not group or key not in out or key in fixed or out[key] == target[group]:
            continue
        moves.append({"source": key[0], "video_id": key[1], "group": group, "from": out[key],
                      "to": target[group]})
        out[key] = target[group]
    return out, moves
