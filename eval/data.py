"""Load what ``mvbench eval`` evaluates: the official test set, a built dataset, an official JSON, or a Hub dataset.

Records come back in file order (the submission must follow test-file order), filtered by task and
source, with every frame path resolved to a file on disk. A ``--data`` value is read as, in order:
``official-test`` (the public test set from the Hub, :mod:`mvbench.eval.official`), an existing
folder (built dataset), an existing file (official JSON), a Hub dataset id ``owner/name`` (only when
it cannot be a local path: no such local folder prefix, no file suffix). Anything else is a missing
file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mvbench.dataset_io import load_json, read_official_json, read_parquet
from mvbench.errors import InputError
from mvbench.records import DATA_SOURCE_ALIASES, DATA_SOURCES, Record, canonical_json, normalise_data_source

# owner/name as the Hub spells dataset ids; anything else that does not exist is a missing file.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


@dataclass
class EvalData:
    """Records to evaluate and how to find their frames.

    Args:
        records: in file order, after filtering.
        base_dir: relative frame paths are relative to this folder.
        frames_root: where official absolute paths (``/root/data/...``) are remapped to.
        kind: ``built`` | ``official`` | ``hub``.
        origin: what the user passed.
        dataset_hash: sha256 over the selected records (official fields), for results' fingerprint.
        positions: each selected record's position (by uid) in the loaded file, before filtering.
        provenance: for the official test set, the Hub repo, revision, resolved commit and file
            hashes (recorded in the fingerprint); None otherwise.
        fixture: the dataset was built from generated fixture trees (its manifest says so):
            its numbers say nothing about a model.
    """

    records: list[Record]
    base_dir: Path
    frames_root: Path | None
    kind: str
    origin: str
    dataset_hash: str
    positions: dict[str, int]
    provenance: dict | None = None
    fixture: bool = False


def load_eval_data(data: str | Path, *, frames_root: str | Path | None = None, split: str = "test",
                   tasks: list[str] | None = None, sources: list[str] | None = None,
                   limit: int | None = None, revision: str | None = None) -> EvalData:
    """Load and filter the records to evaluate.

    Args:
        data: ``official-test``, a built dataset folder (``manifest.json`` + Parquet), an official
            JSON file, or a Hub dataset id (see the module docstring for the order).
        frames_root: for official JSON, the folder holding the official frames (``testdata``); for
            ``official-test``, frames already unpacked there (``testdata.zip`` is then not fetched).
        split: for built and Hub datasets, which split to take.
        tasks / sources: keep only these task names (``TAG``...) / data sources (case-insensitive).
        limit: keep at most this many records per task (in file order).
        revision: for ``official-test`` and Hub ids, the branch, tag or commit to fetch.

    Raises:
        InputError: a missing file (naming it), an unusable Hub dataset, or nothing left to evaluate.
    """
    from mvbench.eval.official import OFFICIAL_TEST, fetch_official_test

    path = Path(data)
    provenance = None
    origin = str(data)
    if str(data) == OFFICIAL_TEST and not path.exists():
        official = fetch_official_test(revision, with_frames=frames_root is None)
        records, kind, base = read_official_json(official.questions), "official-test", official.base_dir
        frames_root = frames_root or official.frames_root
        provenance = official.provenance
        origin = f"hf://{provenance['repo']}@{provenance['commit'] or provenance['revision']}/{official.questions.name}"
    elif revision is not None and not _is_hub_id(str(data)):
        raise InputError(f"--data-revision applies to {OFFICIAL_TEST} and Hub dataset ids, not to a local path",
                         path)
    elif path.is_dir():
        records = [r for r in read_parquet(path) if r.split == split or split == "all"]
        kind, base = "built", path
        if not records:
            raise InputError(f"no records with split {split!r}", path)
    elif path.is_file():
        records, kind, base = read_official_json(path), "official", path.parent
    elif _is_hub_id(str(data)):
        records, kind, base = _load_hub(str(data), split, revision), "hub", Path.cwd()
    else:
        raise InputError(f"file not found (not a built dataset folder, an official JSON file, {OFFICIAL_TEST}, "
                         "or a Hub dataset id owner/name)", path)
    positions = {r.uid: i for i, r in enumerate(records)}
    records = filter_records(records, tasks=tasks, sources=sources, limit=limit)
    if not records:
        raise InputError(f"no records left after filtering (tasks={tasks}, sources={sources})", path)
    digest = hashlib.sha256(canonical_json([r.to_official() for r in records]).encode()).hexdigest()
    return EvalData(records, base, Path(frames_root) if frames_root else None, kind, origin, digest,
                    {r.uid: positions[r.uid] for r in records}, provenance,
                    fixture=kind == "built" and _is_fixture_build(path))


def _is_hub_id(value: str) -> bool:
    """``owner/name`` that cannot be meant as a local path: no file suffix, no local ``owner/`` folder."""
    if not _HUB_ID.match(value) or Path(value).exists():
        return False
    owner, name = value.split("/")
    return not Path(owner).is_dir() and Path(name).suffix.lower() not in (".json", ".jsonl", ".parquet", ".zip")


def _is_fixture_build(folder: Path) -> bool:
    """Whether a built dataset's manifest marks it as built from fixture trees."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return False
    data = load_json(manifest)
    return bool(isinstance(data, dict) and data.get("fixture"))


def filter_records(records: list[Record], *, tasks: list[str] | None = None, sources: list[str] | None = None,
                   limit: int | None = None) -> list[Record]:
    """Keep records of the given tasks and sources, at most ``limit`` per task, in order.

    Raises:
        InputError: an unknown task or source name (listing the known ones).
    """
    from mvbench.tasks import TASKS

    want_tasks = {t.upper() for t in tasks} if tasks else None
    if want_tasks and not want_tasks <= set(TASKS):
        raise InputError(f"unknown task(s) {sorted(want_tasks - set(TASKS))}; known: {', '.join(TASKS)}")
    want_sources = {normalise_data_source(s).lower() for s in sources} if sources else None
    known_sources = {s.lower() for s in DATA_SOURCES}
    if want_sources and not want_sources <= known_sources:
        raise InputError(f"unknown source(s) {sorted(want_sources - known_sources)}; known: "
                         f"{', '.join(DATA_SOURCES)} (also {', '.join(DATA_SOURCE_ALIASES)})")
    kept: list[Record] = []
    per_task: dict[str, int] = {}
    for r in records:
        if want_tasks and r.task not in want_tasks:
            continue
        if want_sources and normalise_data_source(r.data_source).lower() not in want_sources:
            continue
        if limit is not None and per_task.get(r.task, 0) >= limit:
            continue
        per_task[r.task] = per_task.get(r.task, 0) + 1
        kept.append(r)
    return kept


def _load_hub(repo_id: str, split: str, revision: str | None = None) -> list[Record]:
    import datasets

    try:
        extra = {"revision": revision} if revision is not None else {}
        ds = datasets.load_dataset(repo_id, split=split, **extra)
    except Exception as e:  # offline, missing, gated: all end the same way for the user
        first = (str(e).strip().splitlines() or [""])[0]
        raise InputError(f"no such local file or folder, and cannot load it as a Hub dataset: "
                         f"{type(e).__name__}: {first}", repo_id) from None
    return [Record.from_row(row) for row in ds]


class FrameResolver:
    """Map a record's frame path to a file on disk.

    Relative paths are joined to ``base_dir``. An absolute path that does not exist (official files
    say ``/root/data/AVOS/frames_15fps/<id>/<n>.jpg``) is looked up under ``frames_root`` by its
    longest suffix that exists there; the prefix found is remembered, so later lookups are direct.
    """

    def __init__(self, base_dir: Path, frames_root: Path | None = None):
        self.base_dir = base_dir
        self.frames_root = frames_root
        self._prefixes: list[PurePosixPath] = []

    def resolve(self, frame: str, uid: str) -> Path:
        """The file for ``frame`` of sample ``uid``; InputError naming both if there is none."""
        p = PurePosixPath(frame)
        if not p.is_absolute():
            cand = self.base_dir / frame
            if cand.is_file():
                return cand
            if self.frames_root is not None and (self.frames_root / frame).is_file():
                return self.frames_root / frame
        elif Path(frame).is_file():
            return Path(frame)
        if self.frames_root is not None and p.is_absolute():
            for prefix in self._prefixes:
                if p.is_relative_to(prefix):
                    cand = self.frames_root / p.relative_to(prefix)
                    if cand.is_file():
                        return cand
            parts = p.parts
            for k in range(1, len(parts)):
                cand = self.frames_root.joinpath(*parts[k:])
                if cand.is_file():
                    self._prefixes.append(PurePosixPath(*parts[:k]))
                    return cand
        hint = "" if self.frames_root else " (pass --frames-root for official files)"
        raise InputError(f"frame not found: {frame}{hint}", record=uid)
