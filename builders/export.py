"""Export a built dataset to the official MedVidBench JSON + frame folder, and import it back.

``export_medvidbench(IN, OUT)`` writes ``OUT/medvidbench_<split>.json`` (records in source, then
uid order) and the frames those records use under ``OUT/frames/<source>/<video>/<index>.jpg``
(hard links where the file system allows, else copies; ``copy=True`` always copies). Frame paths in
the JSON are ``<frames_prefix>/<source>/<video>/<index>.jpg`` (default prefix ``frames``: relative
to the JSON file, as our records are).

Test files, like the published ``cleaned_test_data_11_04.json``, carry no answers: the gpt turn and
the ``struc_info`` key are dropped. ``with_answers=True`` keeps both (a TrainVal-style file).

:func:`import_official` reads an official JSON (ours or the published one) back into records,
optionally pointing frame paths at local files under ``frames_root``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from mvbench.builders.balance import read_dataset
from mvbench.dataset_io import atomic_write_json, read_official_json
from mvbench.errors import InputError
from mvbench.records import Record

FRAMES_DIR = "frames"
FORMATS = ("medvidbench",)


def _strip_frames_dir(path: str) -> str:
    """``frames/src/vid/000001.jpg`` → ``src/vid/000001.jpg`` (other paths unchanged)."""
    parts = PurePosixPath(path).parts
    return PurePosixPath(*parts[1:]).as_posix() if parts and parts[0] == FRAMES_DIR else path


def official_test_record(record: Record, *, with_answers: bool, frames_prefix: str) -> dict[str, Any]:
    """One record in the official JSON form, frame paths re-rooted at ``frames_prefix``."""
    obj = record.to_official()
    prefix = frames_prefix.rstrip("/")
    obj["video"] = [f"{prefix}/{_strip_frames_dir(p)}" for p in record.video]
    if isinstance(obj.get("RC_info"), dict) and isinstance(obj["RC_info"].get("start_frame"), str):
        obj["RC_info"] = {**obj["RC_info"],
                          "start_frame": f"{prefix}/{_strip_frames_dir(obj['RC_info']['start_frame'])}"}
    if not with_answers:
        obj["conversations"] = [t for t in obj["conversations"] if t.get("from") != "gpt"]
        obj.pop("struc_info", None)
    return obj


def _link_or_copy(src: Path, dst: Path, copy: bool) -> None:
    if dst.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    if not copy:
        try:
            os.link(src, tmp)
            os.replace(tmp, dst)
            return
        except OSError:
            tmp.unlink(missing_ok=True)
    shutil.copyfile(src, tmp)  # a new file, with the umask's mode (copy2 would copy the source's mode)
    os.replace(tmp, dst)


def export_medvidbench(in_dir: str | Path, out_dir: str | Path, *, split: str = "test",
                       with_answers: bool = False, frames_prefix: str = FRAMES_DIR,
                       copy: bool = False, frames: bool = True) -> Path:
    """Write the official JSON and frame folder for one split (``"all"``: every split).

    Args:
        in_dir: a built dataset.
        out_dir: export folder.
        split: ``train`` / ``val`` / ``test`` / ``all``.
        with_answers: keep the gpt turn and ``struc_info``.
        frames_prefix: prefix of the frame paths written in the JSON.
        copy: copy frames instead of hard-linking them.
        frames: also export the frame files (off: JSON only).

    Returns:
        The JSON file written.

    Raises:
        InputError: no records in that split, or a referenced frame is missing (a plan-only build).
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    by_source = read_dataset(in_dir)
    records = [r for source in sorted(by_source) for r in sorted(by_source[source], key=lambda r: r.uid)
               if split == "all" or r.split == split]
    if not records:
        raise InputError(f"no records in split {split!r}", in_dir)
    if frames:
        needed = sorted({p for r in records for p in r.video}
                        | {r.RC_info["start_frame"] for r in records if r.RC_info})
        for rel in needed:
            src = in_dir / rel
            if not src.is_file():
                raise InputError("frame not found (was the dataset built with --plan-only?)", src)
            _link_or_copy(src, out_dir / FRAMES_DIR / _strip_frames_dir(rel), copy)
    objs = [official_test_record(r, with_answers=with_answers, frames_prefix=frames_prefix)
            for r in records]
    return atomic_write_json(out_dir / f"medvidbench_{split}.json", objs)


def import_official(json_path: str | Path, frames_root: str | Path | None = None) -> list[Record]:
    """Read an official MedVidBench JSON into records.

    Args:
        json_path: the JSON file (a list of records, or the inference-output dict).
        frames_root: if given, each frame path is re-pointed at the file under ``frames_root``
            that matches the longest tail of the path (``.../AVOS/vid/000001.jpg`` →
            ``frames_root/AVOS/vid/000001.jpg``, else ``frames_root/vid/000001.jpg``, ...).

    Returns:
        Records (``generator="official"``, split from the ``train`` flag).

    Raises:
        InputError: malformed JSON/records, or a frame path with no file under ``frames_root``.
    """
    records = read_official_json(json_path)
    if frames_root is None:
        return records
    root = Path(frames_root)
    tails: dict[str, int] = {}  # parent folder of an official path -> tail length that resolved

    def local(path: str, record: Record) -> str:
        parts = PurePosixPath(path).parts
        parent = str(PurePosixPath(*parts[:-1])) if len(parts) > 1 else ""
        if parent in tails:
            candidate = root.joinpath(*parts[-tails[parent]:])
            if candidate.is_file():
                return str(candidate)
        for k in range(len(parts) - (1 if parts and parts[0] == "/" else 0), 0, -1):
            candidate = root.joinpath(*parts[-k:])
            if candidate.is_file():
                tails[parent] = k
                return str(candidate)
        raise InputError(f"frame {path} not found under {root}", json_path, record.id or record.uid)

    for r in records:
        r.video = [local(p, r) for p in r.video]
        if r.RC_info and isinstance(r.RC_info.get("start_frame"), str):
            r.RC_info = {**r.RC_info, "start_frame": local(r.RC_info["start_frame"], r)}
    return records
