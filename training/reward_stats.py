"""``mvbench reward-stats``: the frozen normalisation statistics, from SFT rollouts.

Input: ``mvbench eval`` runs of the SFT model on the *train* split (each run folder holds
``predictions.jsonl`` and ``results.json``, whose fingerprint names the dataset and model). Each
prediction is joined by uid with its record's ground truth and scored with the same reward code
training uses (:class:`mvbench.training.rewards.RewardSuite`, raw components: no normalisation,
no format penalty), with the task contexts built from the dataset's records as training builds
them (NAP's class lists: :func:`mvbench.training.data.task_contexts`). Output: p25, p50, p75 and n of every raw component per (data_source,
component), plus each component pooled over sources, and the provenance (models, dataset hash,
prediction files, judge, rewarded tasks): :class:`mvbench.training.normalization.RewardStats`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import defaultdict
from pathlib import Path

from mvbench import __version__
from mvbench.errors import InputError
from mvbench.eval.data import load_eval_data
from mvbench.training.data import ground_truth_of, task_contexts
from mvbench.training.normalization import RewardStats
from mvbench.training.rewards import RewardSuite

log = logging.getLogger(__name__)

BATCH = 256  # completions scored per call (one concurrent judge batch)


def run_files(path: Path) -> tuple[Path, Path | None]:
    """(predictions.jsonl, results.json or None) of an ``mvbench eval`` run folder or its predictions file.

    Raises:
        InputError: a folder without ``predictions.jsonl``, a missing file, or one whose first
            non-empty line is not a JSON object (a cheap look: the reader checks every line).
    """
    if path.is_dir():
        preds = path / "predictions.jsonl"
        if not preds.is_file():
            raise InputError("no predictions.jsonl in this folder (is it an `mvbench eval` run?)", path=path)
    elif path.is_file():
        preds = path
    else:
        raise InputError("predictions not found", path=path)
    with open(preds, "rb") as f:
        first = next((line for line in f if line.strip()), b"")
    try:
        ok = isinstance(json.loads(first), dict) if first else False
    except (json.JSONDecodeError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise InputError("not a predictions.jsonl of `mvbench eval` (empty, or line 1 is not a JSON object)", path=preds)
    results = preds.with_name("results.json")
    return preds, results if results.is_file() else None


def _read_predictions(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{n}: not JSON ({e})") from None
            if isinstance(entry, dict) and isinstance(entry.get("uid"), str) and isinstance(entry.get("prediction"), str):
                out[entry["uid"]] = entry["prediction"]
    return out


def compute_reward_stats(predictions: list[str | Path], suite: RewardSuite, *, data: str | Path | None = None,
                         frames_root: str | Path | None = None, split: str | None = None) -> RewardStats:
    """Raw-reward quartiles per (data_source, component) over SFT rollouts.

    Args:
        predictions: ``mvbench eval`` run folders or their ``predictions.jsonl`` files.
        suite: the reward code (its config says which tasks; its judge scores the caption halves).
        data: the dataset the runs evaluated (default: each run's ``results.json`` fingerprint).
        frames_root: for official JSON data.
        split: the split evaluated (default: the run's; normally ``train``).

    Raises:
        InputError: unreadable runs, no dataset to join with, or no rewarded prediction at all.
    """
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    provenance: dict = {"created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                        "mvbench": __version__, "rewarded_tasks": list(suite.config.tasks), "runs": []}
    judge_failed = 0
    for item in predictions:
        preds_path, results_path = run_files(Path(item))
        results = json.loads(results_path.read_text(encoding="utf-8")) if results_path else {}
        fingerprint = results.get("fingerprint") or {}
        dataset = fingerprint.get("dataset") or {}
        source = data or dataset.get("origin")
        if not source:
            raise InputError("cannot tell which dataset these predictions answer: pass --data", path=preds_path)
        run_split = split or dataset.get("split") or "train"
        if run_split != "train":
            log.warning("%s: predictions on split %r; MedGRPO's statistics come from SFT rollouts on train",
                        preds_path, run_split)
        loaded = load_eval_data(source, frames_root=frames_root, split=run_split)
        by_uid = {r.uid: r for r in loaded.records}
        suite.contexts = task_contexts(loaded.records)  # NAP's class lists, as training builds them
        answers = _read_predictions(preds_path)
        pairs = [(by_uid[u], p) for u, p in answers.items() if u in by_uid]
        missing = len(answers) - len(pairs)
        if missing:
            log.warning("%s: %d predictions have no record in %s (skipped)", preds_path, missing, source)
        scored = 0
        for start in range(0, len(pairs), BATCH):
            chunk = pairs[start:start + BATCH]
            samples = suite.raw_components([p for _, p in chunk], [ground_truth_of(r) for r, _ in chunk])
            for sample in samples:
                if sample is None:
                    continue
                judge_failed += sample.judge_failed
                for component, x in sample.components.items():
                    values[(sample.source, component)].append(x)
                    scored += 1
        provenance["runs"].append({"predictions": str(preds_path.resolve()), "model": fingerprint.get("model"),
                                   "data": {"origin": str(source), "split": run_split,
                                            "sha256": dataset.get("sha256") or loaded.dataset_hash},
                                   "predictions_read": len(answers), "components_scored": scored})
    if not values:
        raise InputError(f"no prediction of a rewarded task ({', '.join(suite.config.tasks)}) could be scored")
    provenance["judge"] = suite.judge.info() if suite.judge is not None else None
    provenance["judge_failed_pairs"] = judge_failed
    return RewardStats.from_values(values, provenance)
