"""Frames packed for the Hub, and unpacked back into the layout ``mvbench eval`` reads.

A built dataset keeps one JPEG per frame (``frames/<source>/<video>/<index:06d>.jpg``): a full
MedVidBench is ~100k files, past the Hub's limits (10k entries per folder, 100k files per
repository, ~100 files per commit). Here the frames become Parquet shards
``frames/<source>/<split>-NNNNN.parquet`` with one row per frame: ``path`` (exactly as the records'
``video`` lists name it), ``source``, ``video`` and ``image`` (a ``datasets`` ``Image``: the JPEG
bytes, unchanged). Each frame is stored once, however many records share it; a video's frames
stay together in one shard; the split is the video's. The shards carry ``datasets``' feature
metadata, so ``load_dataset(repo, "frames")`` decodes ``image`` to PIL.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq

from mvbench.errors import InputError
from mvbench.tempfiles import make_temp

FRAMES_DIR = "frames"
DEFAULT_SHARD_BYTES = 256 * 1024 * 1024
ROW_GROUP = 100  # rows per row group: small enough for the Hub's dataset viewer


def frame_schema() -> pa.Schema:
    """The Arrow schema of a frames shard, with ``datasets``' feature metadata (``image`` is an Image)."""
    import datasets

    return datasets.Features({"path": datasets.Value("string"), "source": datasets.Value("string"),
                              "video": datasets.Value("string"), "image": datasets.Image()}).arrow_schema


def video_of(frame: str) -> tuple[str, str]:
    """``(source, video)`` of a built frame path ``frames/<source>/<video>/<index>.jpg``.

    Raises:
        InputError: a path outside that layout.
    """
    parts = PurePosixPath(frame).parts
    if len(parts) != 4 or parts[0] != FRAMES_DIR:
        raise InputError(f"frame path {frame!r} is not frames/<source>/<video>/<file>: only a built dataset's "
                         "frames can be packed")
    return parts[1], parts[2]


def _write_shard(rows: list[tuple[str, str, str, Path]], dest: Path, schema: pa.Schema) -> None:
    """One shard, atomically, written a row group at a time (a shard's JPEGs are never all in memory)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_temp(dest.parent, prefix=f".{dest.name}.", suffix=".tmp")  # the umask's mode, not 0600
    try:
        with os.fdopen(fd, "wb") as f, pq.ParquetWriter(f, schema, compression="none") as writer:
            for start in range(0, len(rows), ROW_GROUP):
                chunk = rows[start:start + ROW_GROUP]
                images = [{"bytes": file.read_bytes(), "path": PurePosixPath(path).name} for path, _, _, file in chunk]
                table = pa.Table.from_pydict({"path": [r[0] for r in chunk], "source": [r[1] for r in chunk],
                                              "video": [r[2] for r in chunk], "image": images}, schema=schema)
                writer.write_table(table, row_group_size=ROW_GROUP)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pack_frames(dataset: Path, frames_by_split: dict[str, Iterable[str]], out_dir: Path,
                shard_bytes: int = DEFAULT_SHARD_BYTES) -> list[str]:
    """Pack the frames records reference into Parquet shards under ``out_dir/frames``.

    Args:
        dataset: the built dataset (frame paths are relative to it).
        frames_by_split: split → the frame paths its records reference.
        out_dir: the repository folder being staged.
        shard_bytes: start a new shard once a shard holds this many bytes of JPEG (a video is
            never split across shards).

    Returns:
        The shards' repository paths, sorted.

    Raises:
        InputError: a referenced frame is missing on disk, or a video's frames are referenced from
            two splits.
    """
    schema = frame_schema()
    videos: dict[tuple[str, str], tuple[str, set[str]]] = {}
    for split in sorted(frames_by_split):
        for frame in frames_by_split[split]:
            key = video_of(frame)
            owner, paths = videos.setdefault(key, (split, set()))
            if owner != split:
                raise InputError(f"video {key[0]}/{key[1]} has frames in splits {owner!r} and {split!r}: a video "
                                 "belongs to one split", dataset)
            paths.add(frame)
    by_shard: dict[tuple[str, str], list[tuple[str, list[str]]]] = {}
    for (source, video), (split, paths) in sorted(videos.items()):
        by_shard.setdefault((source, split), []).append((video, sorted(paths)))
    written: list[str] = []
    for (source, split), vids in sorted(by_shard.items()):
        shards: list[list[tuple[str, str, str, Path]]] = [[]]
        size = 0
        for video, paths in vids:
            files = [dataset / p for p in paths]
            missing = [p for p, f in zip(paths, files) if not f.is_file()]
            if missing:
                raise InputError(f"frame {missing[0]} is referenced by a record but missing ({len(missing)} of "
                                 f"video {video}'s frames): rebuild the dataset", dataset)
            video_bytes = sum(f.stat().st_size for f in files)
            if shards[-1] and size + video_bytes > shard_bytes:
                shards.append([])
                size = 0
            shards[-1] += [(p, source, video, f) for p, f in zip(paths, files)]
            size += video_bytes
        for index, rows in enumerate(shards):
            rel = f"{FRAMES_DIR}/{source}/{split}-{index:05d}.parquet"
            _write_shard(rows, out_dir / rel, schema)
            written.append(rel)
    return sorted(written)


def unpack_frames(shards: Sequence[Path], out_dir: Path) -> int:
    """Write every frame of the given shards to ``out_dir/<path>`` (the built layout); return how many.

    A frame already there with the same bytes is left alone, so an interrupted restore resumes.

    Raises:
        InputError: a shard that is not a frames shard, or a path that would leave ``out_dir``.
    """
    count = 0
    for shard in shards:
        try:
            pf = pq.ParquetFile(shard)
        except (pa.ArrowInvalid, OSError) as e:
            raise InputError(f"unreadable frames shard: {e}", shard) from None
        if not {"path", "image"} <= set(pf.schema_arrow.names):
            raise InputError("not a frames shard (no path/image columns)", shard)
        for batch in pf.iter_batches(columns=["path", "image"], batch_size=ROW_GROUP):
            for path, image in zip(batch.column("path").to_pylist(), batch.column("image").to_pylist()):
                rel = PurePosixPath(path)
                if rel.is_absolute() or ".." in rel.parts or rel.parts[:1] != (FRAMES_DIR,):
                    raise InputError(f"frame path {path!r} is not under {FRAMES_DIR}/", shard)
                dest = out_dir / rel
                data = image["bytes"]
                if not (dest.is_file() and dest.stat().st_size == len(data) and dest.read_bytes() == data):
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    tmp = dest.with_name(f".{dest.name}.tmp")
                    tmp.write_bytes(data)
                    os.replace(tmp, dest)
                count += 1
    return count
