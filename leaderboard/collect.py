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
from mvbench.tasks import LEADERBOARD_KEYS, METRICS, TASKS
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
    empty = counts.get("empty_answers") or 0
    if isinstance(empty, bool) or not isinstance(empty, int):
        raise InputError(f"counts.empty_answers must be an integer, got {empty!r}", path)
    entry = Entry(name or model or _default_name(path), metrics, source=str(path), dataset=dataset,
                  failed=failed, empty_answers=empty, notes=notes)
    entry.intervals, entry.interval_info = _intervals(data, path)
    entry.counts = _task_counts(counts)
    entry.fingerprint = _fingerprint_summary(data, fingerprint)
    judge_keys = [m.key for m in METRICS.values() if m.judge and m.leaderboard]
    entry.judge_skipped = data.get("judge") is None and all(metrics[k] is None for k in judge_keys)
    _flag_entry(entry, data)
    return entry


def _intervals(data: dict, path: Path) -> tuple[dict[str, dict | None], dict | None]:
    """The 95% intervals a results file carries (``intervals.metrics``), checked."""
    block = _dict_or_none(data, "intervals", "intervals", path)
    if not block:
        return {}, None
    metrics = _dict_or_none(block, "metrics", "intervals.metrics", path) or {}
    out: dict[str, dict | None] = {}
    for key in LEADERBOARD_KEYS:
        value = metrics.get(key)
        if value is None:
            out[key] = None
            continue
        if not (isinstance(value, dict) and all(isinstance(value.get(b), (int, float)) and
                                                not isinstance(value.get(b), bool) for b in ("low", "high"))):
            raise InputError(f"intervals.metrics.{key} must be {{low, high}} numbers or null, got {value!r}", path)
        out[key] = {"low": float(value["low"]), "high": float(value["high"])}
    info = {k: v for k, v in block.items() if k != "metrics"}
    return out, info


def _task_counts(counts: dict) -> dict[str, dict]:
    """Records and scored samples per task (``counts.by_task`` of results.json, ``counts`` of a score file)."""
    by_task = counts.get("by_task") if isinstance(counts.get("by_task"), dict) else counts
    out: dict[str, dict] = {}
    for _, task in TASKS.items():
        c = by_task.get(task.key)
        if isinstance(c, dict) and isinstance(c.get("records"), int):
            out[task.key] = {"records": c["records"], "scored": c.get("scored")}
    return out


def _fingerprint_summary(data: dict, fingerprint: dict) -> dict[str, str]:
    """What the page shows beside a run: backend, frames, pixels, prompt mode, judge, data."""
    params = fingerprint.get("generation_params") if isinstance(fingerprint.get("generation_params"), dict) else {}
    spec = fingerprint.get("model_spec") if isinstance(fingerprint.get("model_spec"), dict) else {}
    dataset = fingerprint.get("dataset") if isinstance(fingerprint.get("dataset"), dict) else {}
    judge = fingerprint.get("judge") if isinstance(fingerprint.get("judge"), dict) else None
    out: dict[str, str] = {}
    if spec.get("backend"):
        out["backend"] = str(spec["backend"])
    if params.get("frames_as"):
        timing = params.get("video_timing")
        out["frames"] = str(params["frames_as"]) + (f", timing {timing}" if timing else "")
    if params.get("max_pixels"):
        out["pixels"] = f"{params.get('min_pixels', '?')}–{params['max_pixels']} per frame"
    if params.get("max_tokens"):
        out["max tokens"] = str(params["max_tokens"])
    if fingerprint.get("prompt_mode"):
        out["prompt"] = str(fingerprint["prompt_mode"])
    if judge:
        out["judge"] = str(judge.get("model"))
    elif "judge" in fingerprint or "judge" in data:
        out["judge"] = f"skipped ({data.get('judge_skipped_reason') or 'no judge'})"
    if dataset.get("sha256"):
        where = ", ".join(str(x) for x in (dataset.get("kind"), dataset.get("split")) if x)
        out["data"] = f"{str(dataset['sha256'])[:12]} ({where})" if where else str(dataset["sha256"])[:12]
    if fingerprint.get("frames_rule"):
        out["frames rule"] = str(fingerprint["frames_rule"])
    return out


def _flag_entry(entry: Entry, data: dict) -> None:
    """Caveats a run carries by itself (fixture data, skipped judge, subset, failures)."""
    d = entry.dataset or {}
    if d.get("fixture"):
        entry.flag("fixture", "fixture data: generated test trees, not real videos; says nothing about a model")
    judge_keys = [m.key for m in METRICS.values() if m.judge and m.leaderboard]
    if entry.judge_skipped:
        reason = data.get("judge_skipped_reason") or "no judge"
        entry.flag("judge", f"judge skipped ({reason}): DVC/VS/RC llm missing, ranked as 0")
    elif all(entry.metrics[k] is None for k in judge_keys) and _judge_failed_every_pair(data):
        entry.flag("judge", "the judge gave no scores (every call failed): DVC/VS/RC llm missing, ranked as 0")
    subset = _subset(entry.dataset)
    if subset:
        entry.flag("subset", f"subset ({subset}): not the whole split")
    if entry.failed:
        entry.flag("incomplete", f"{entry.failed} requests failed (scored as empty answers)")
    if entry.empty_answers:
        entry.flag("incomplete", f"{entry.empty_answers} answers came back empty (rerun to request them again)")
    invalid = (data.get("counts") or {}).get("invalid")
    if isinstance(invalid, int) and invalid > 0:
        entry.flag("invalid", f"{invalid} records left out: their ground truth is unusable (--skip-invalid)")


def _judge_failed_every_pair(data: dict) -> bool:
    """Whether the run's judge was asked about some pairs and answered none (not: no caption records)."""
    judge = data.get("judge")
    if not isinstance(judge, dict):
        return False
    pairs, failed = judge.get("pairs"), judge.get("failed")
    return isinstance(pairs, int) and isinstance(failed, int) and pairs > 0 and failed >= pairs


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
    incomplete = [e for e in runs if e.failed > 0 or e.empty_answers > 0]
    if incomplete and not allow_incomplete:
        listed = "; ".join(f"{e.source} ({e.failed} failed, {e.empty_answers} empty)" for e in incomplete)
        raise InputError(f"incomplete runs (failed requests and empty answers score as wrong): {listed}; rerun "
                         "the same `mvbench eval` command to retry them, or pass --allow-incomplete")
    notes: list[str] = []
    if incomplete:
        notes.append("incomplete runs are ranked (--allow-incomplete): failed requests score as empty answers")
    unknown = [e for e in runs if not (e.dataset and e.dataset.get("sha256"))]
    unknown_ids = {id(e) for e in unknown}
    if unknown and len(runs) > 1:
        notes.append("cannot check that these were scored on the same data (no fingerprint.dataset): "
                     + ", ".join(e.source for e in unknown))
        for e in unknown:
            e.flag("unverified", "data unknown (no fingerprint.dataset): cannot check it matches the others")
    groups: dict[str, list[Entry]] = defaultdict(list)
    for e in runs:
        if id(e) not in unknown_ids:
            groups[e.dataset["sha256"]].append(e)  # type: ignore[index]
    if len(groups) > 1 and not allow_mixed:
        listed = "; ".join(_describe(e) for g in groups.values() for e in g)
        raise InputError(f"runs evaluated on different data do not rank against each other: {listed}; "
                         "evaluate them on the same file without --limit/--tasks/--sources, or pass --allow-mixed")
    if len(groups) > 1:
        notes.append("runs evaluated on different data are ranked together (--allow-mixed): their ranks do not "
                     "compare models")
        for sha, group in groups.items():
            for e in group:
                e.flag("mixed", f"different data ({sha[:12]}) from other rows: ranks not comparable")
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
