"""Collect evaluation results (``results.json`` or ``mvbench score`` files) into leaderboard entries.

Ranking only means something between runs on the same data: :func:`check_comparable` refuses runs
evaluated on different records (``fingerprint.dataset.sha256``, a hash of the selected records) and
runs with failed requests, unless the caller allows them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from mvbench.dataset_io import load_json
from mvbench.errors import InputError
from mvbench.tasks import LEADERBOARD_KEYS
from mvbench.leaderboard.ranking import Entry

SUBSET_KEYS = ("tasks", "sources", "limit")  # fingerprint.dataset fields set only for a subset


def _metric(data: dict, key: str, path: Path, notes: list[str]) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{key} must be a number or null, got {type(value).__name__} {value!r}", path)
    if math.isnan(value):
        notes.append(f"{path}: {key} is NaN; shown as missing (ranks as 0.0)")
        return None
    if math.isinf(value):
        raise InputError(f"{key} must be a finite number, got {value!r}", path)
    return float(value)


def _dict_or_none(parent: dict, key: str, where: str, path: Path) -> dict | None:
    value = parent.get(key)
    if value is not None and not isinstance(value, dict):
        raise InputError(f"{where} must be an object, got {type(value).__name__} {value!r}", path)
    return value


def _default_name(path: Path) -> str:
    """The folder of a ``results.json``; else the file name without ``.scores.json`` / ``.json``."""
    if path.name == "results.json":
        return path.resolve().parent.name
    return path.name.removesuffix(".json").removesuffix(".scores")


def load_entry(path: str | Path, name: str | None = None) -> Entry:
    """One entry from a results file, or from an eval output folder holding ``results.json``.

    The name defaults to the model recorded in the file's fingerprint, else the folder name
    (for ``results.json``) or the file name.

    Args:
        path: a ``results.json`` / ``*.scores.json`` file, or a folder holding ``results.json``.
        name: the display name (default: ``fingerprint.model``, else the folder or file name).

    Returns:
        The entry, with ``dataset`` (``fingerprint.dataset``), ``failed`` (``counts.failed``) and
        ``notes`` (a NaN metric is read as missing and noted).

    Raises:
        InputError: naming the file, when it is not a JSON object with leaderboard metrics, a
            metric is not a number or null, or ``fingerprint`` / ``model`` / ``dataset`` /
            ``counts`` have the wrong type.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    data = load_json(path)
    if not isinstance(data, dict) or not any(k in data for k in LEADERBOARD_KEYS):
        raise InputError("not a results file (no leaderboard metrics)", path)
    notes: list[str] = []
    metrics = {k: _metric(data, k, path, notes) for k in LEADERBOARD_KEYS}
    fingerprint = _dict_or_none(data, "fingerprint", "fingerprint", path) or {}
    model = fingerprint.get("model")
    if model is not None and not isinstance(model, str):
        raise InputError(f"fingerprint.model must be a string, got {type(model).__name__} {model!r}", path)
    dataset = _dict_or_none(fingerprint, "dataset", "fingerprint.dataset", path)
    if dataset is not None and not isinstance(dataset.get("sha256"), (str, type(None))):
        raise InputError(f"fingerprint.dataset.sha256 must be a string, got {dataset.get('sha256')!r}", path)
    counts = _dict_or_none(data, "counts", "counts", path) or {}
    failed = counts.get("failed") or 0
    if isinstance(failed, bool) or not isinstance(failed, int):
        raise InputError(f"counts.failed must be an integer, got {failed!r}", path)
    return Entry(name or model or _default_name(path), metrics, source=str(path), dataset=dataset,
                 failed=failed, notes=notes)


def _subset(dataset: dict | None) -> str:
    """``"limit=4, tasks=['TAG']"`` for a run on a subset, else ''."""
    if not dataset:
        return ""
    return ", ".join(f"{k}={dataset[k]!r}" for k in SUBSET_KEYS if dataset.get(k) not in (None, [], ""))


def _describe(entry: Entry) -> str:
    d = entry.dataset or {}
    subset = _subset(entry.dataset)
    where = ", ".join(str(x) for x in (d.get("origin"), d.get("split") and f"split {d['split']}") if x)
    return (f"{entry.source} (data {str(d.get('sha256'))[:12]}{', ' + where if where else ''}"
            f"{'; subset: ' + subset if subset else ''})")


def check_comparable(entries: list[Entry], allow_mixed: bool = False, allow_incomplete: bool = False) -> list[str]:
    """Refuse to rank runs that do not compare: different data, or failed requests.

    Entries from ``paper`` and files without ``fingerprint.dataset`` (e.g. ``mvbench score``
    output) cannot be checked for data; they are named in the returned notes.

    Args:
        entries: loaded entries (paper rows are skipped).
        allow_mixed: rank runs on different data (or subsets) anyway.
        allow_incomplete: rank runs with ``counts.failed > 0`` anyway.

    Returns:
        Notes for the user (unverifiable data, a shared subset).

    Raises:
        InputError: naming the files whose data differ, or the incomplete runs.
    """
    runs = [e for e in entries if e.source != "paper"]
    incomplete = [e for e in runs if e.failed > 0]
    if incomplete and not allow_incomplete:
        listed = "; ".join(f"{e.source} ({e.failed} failed)" for e in incomplete)
        raise InputError(f"incomplete runs (requests that never got an answer score as wrong): {listed}; rerun "
                         "the same `mvbench eval` command to retry them, or pass --allow-incomplete")
    notes: list[str] = []
    unknown = [e for e in runs if not (e.dataset and e.dataset.get("sha256"))]
    unknown_ids = {id(e) for e in unknown}
    if unknown and len(unknown) < len(runs):
        notes.append("cannot check that these were scored on the same data (no fingerprint.dataset): "
                     + ", ".join(e.source for e in unknown))
    groups: dict[str, list[Entry]] = defaultdict(list)
    for e in runs:
        if id(e) not in unknown_ids:
            groups[e.dataset["sha256"]].append(e)  # type: ignore[index]
    if len(groups) > 1 and not allow_mixed:
        listed = "; ".join(_describe(e) for g in groups.values() for e in g)
        raise InputError(f"runs evaluated on different data do not rank against each other: {listed}; "
                         "evaluate them on the same file without --limit/--tasks/--sources, or pass --allow-mixed")
    subsets = sorted({_subset(e.dataset) for e in runs if _subset(e.dataset)})
    if len(groups) == 1 and subsets:
        notes.append(f"all runs share the same subset ({subsets[0]}): not comparable with full-test-set numbers")
    return notes


def disambiguate_names(entries: list[Entry]) -> None:
    """Give runs that share a display name distinct ones: ``name (folder)``, else ``name (path)``.

    Paper rows keep their names.
    """
    by_name: dict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        by_name[e.name].append(e)
    for name, group in by_name.items():
        runs = [e for e in group if e.source != "paper"]
        if len(group) < 2 or not runs:
            continue
        folders = [Path(e.source).resolve().parent.name for e in runs]
        by_folder = all(folders) and len(set(folders)) == len(folders)
        for e, folder in zip(runs, folders):
            e.name = f"{name} ({folder if by_folder else e.source})"
