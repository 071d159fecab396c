"""Read and write records: official MedVidBench JSON and Parquet shards.

Every write is atomic (a temporary file in the same folder, then ``os.replace``), so a killed
process never leaves a partial file that looks complete. Files get the mode ``open()`` would give
them (0666 minus the umask, :mod:`mvbench.tempfiles`), not ``mkstemp``'s private 0600. Every JSON
written is strict (no NaN or Infinity, :mod:`mvbench.strict_json`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mvbench.errors import InputError
from mvbench.records import ARROW_SCHEMA, Record
from mvbench.strict_json import NonFiniteError, dumps
from mvbench.tempfiles import make_temp


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_temp(path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> Path:
    """Write strict JSON atomically (UTF-8, non-ASCII kept).

    Raises:
        InputError: ``obj`` holds NaN or an infinity (naming the file and where), which JSON cannot
            hold; nothing is written.
    """
    try:
        text = dumps(obj, indent=indent)
    except NonFiniteError as e:
        raise InputError(f"refusing to write it: {e}", path) from None
    return atomic_write_bytes(path, text.encode("utf-8"))


def load_json(path: str | Path) -> Any:
    """Parse a JSON file; a missing or malformed file raises InputError naming it (and the line)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}", path) from None
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text: {e}", path) from None


def read_official_json(path: str | Path, **ours: Any) -> list[Record]:
    """Import an official MedVidBench JSON file (a list of records) into :class:`Record` objects.

    Records that would share a ``uid`` (exact duplicates in the file) get ``#<n>`` suffixes, so uids
    stay unique and stable for a given file.
    """
    data = load_json(path)
    if isinstance(data, dict) and all(k.isdigit() for k in data):  # inference-output style dict
        data = [data[k] for k in sorted(data, key=int)]
    if not isinstance(data, list):
        raise InputError(f"expected a JSON list of records, found {type(data).__name__}", path)
    records: list[Record] = []
    seen: dict[str, int] = {}
    for i, obj in enumerate(data):
        rec = Record.from_official(obj, path=path, index=i, **ours)
        n = seen.get(rec.uid, 0)
        seen[rec.uid] = n + 1
        if n:
            rec.uid = f"{rec.uid}#{n}"
        records.append(rec)
    return records


def write_official_json(records: Iterable[Record], path: str | Path, *, indent: int | None = 2) -> Path:
    """Export records as an official MedVidBench JSON list."""
    return atomic_write_json(path, [r.to_official() for r in records], indent=indent)


def records_to_table(records: Iterable[Record]) -> pa.Table:
    """Records → an Arrow table with :data:`ARROW_SCHEMA`."""
    return pa.Table.from_pylist([r.to_row() for r in records], schema=ARROW_SCHEMA)


def write_parquet(records: Iterable[Record], path: str | Path) -> Path:
    """Write one Parquet shard atomically."""
    return atomic_write_table(records_to_table(records), path)


def atomic_write_table(table: pa.Table, path: str | Path) -> Path:
    """Write any Arrow table as a Parquet file atomically (zstd)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_temp(path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            pq.write_table(table, f, compression="zstd")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_parquet(path: str | Path) -> list[Record]:
    """Read records from one Parquet file, or from a folder.

    A built dataset folder (it has ``manifest.json`` listing ``shards``) is read from exactly those
    shards, so other Parquet files beside them (``mvbench generate``'s drafts snapshot and
    ``rejects.parquet``) are never taken for records. Any other folder: every ``*.parquet`` below
    it, sorted, outside hidden folders.

    Raises:
        InputError: no Parquet file, a listed shard missing, or an unreadable file (naming it).
    """
    path = Path(path)
    if path.is_dir():
        shards = _manifest_shards(path)
        if shards is not None:
            files = [path / s for s in shards]
            missing = [f for f in files if not f.is_file()]
            if missing:
                raise InputError(f"a shard manifest.json lists is missing ({len(missing)} in all)", missing[0])
        else:
            files = sorted(f for f in path.rglob("*.parquet")
                           if not any(part.startswith(".") for part in f.relative_to(path).parts))
    else:
        files = [path]
    if not files or not all(f.is_file() for f in files):
        raise InputError("no Parquet files found", path)
    out: list[Record] = []
    for f in files:
        try:
            table = pq.read_table(f)
        except (pa.ArrowInvalid, OSError) as e:
            raise InputError(f"unreadable Parquet file: {e}", f) from None
        out += [Record.from_row(row) for row in table.to_pylist()]
    return out


def _manifest_shards(folder: Path) -> list[str] | None:
    """The ``shards`` a folder's ``manifest.json`` lists, or None (no manifest, or none listed)."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return None
    data = load_json(manifest)
    shards = data.get("shards") if isinstance(data, dict) else None
    if not isinstance(shards, list) or not shards or not all(isinstance(s, str) for s in shards):
        return None
    return shards
