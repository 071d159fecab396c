"""Paired comparisons of two runs on the same records: each metric's difference and its 95% interval.

The per-sample files a run leaves (``samples_<task>.jsonl`` beside an eval ``results.json``, or
``<stem>.samples.jsonl`` beside a ``mvbench score`` file) hold every sample's scores (judge scores
included) and the fields its task's pooling reads. Both runs are pooled on the same bootstrap draws
of whole videos (:func:`mvbench.eval.bootstrap.paired_intervals`), so a difference whose interval
excludes 0 is a gap the data supports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mvbench.errors import InputError
from mvbench.eval.bootstrap import BootstrapConfig, paired_intervals
from mvbench.leaderboard.ranking import Entry
from mvbench.tasks import LEADERBOARD_KEYS


@dataclass
class RunSamples:
    """One run's per-sample scores, keyed by sample (uid for eval runs, position for score files)."""

    pooling: dict[str, dict]
    scores: dict[str, dict]
    has_videos: bool  # the files name each sample's video (else only sample-level resampling is possible)
    invalid: frozenset[str] = frozenset()  # samples left out of the run's metrics (unusable ground truth)


@dataclass
class Comparison:
    """``better`` − ``worse`` per metric: ``{"diff", "low", "high"}`` or None (a run lacks it)."""

    better: str
    worse: str
    metrics: dict[str, dict | None]
    info: dict


def samples_files(entry: Entry) -> list[Path]:
    """The per-sample files of a run loaded from ``entry.source``."""
    path = Path(entry.source)
    if path.name == "results.json":
        return sorted(path.parent.glob("samples_*.jsonl"))
    return [path.with_name(f"{path.stem}.samples.jsonl")]


def load_run_samples(entry: Entry) -> RunSamples:
    """Read a run's per-sample scores.

    Raises:
        InputError: the run has no per-sample files, or a line is not a JSON object with scores.
    """
    files = [f for f in samples_files(entry) if f.is_file()]
    if not files:
        raise InputError("no per-sample files beside it (samples_<task>.jsonl or <stem>.samples.jsonl): "
                         "a paired comparison needs them", entry.source)
    pooling: dict[str, dict] = {}
    scores: dict[str, dict] = {}
    invalid: set[str] = set()
    has_videos = True
    for f in files:
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"line {n} is not JSON: {e.msg}", f) from None
            if not isinstance(row, dict) or not isinstance(row.get("scores"), dict):
                raise InputError(f"line {n} has no scores object", f)
            key = str(row["uid"] if "uid" in row else row.get("index"))
            if row.get("invalid"):  # left out of the run's metrics (unusable ground truth): out of the pairs too
                invalid.add(key)
                continue
            view = row.get("pooling")
            if not isinstance(view, dict):  # files written before the pooling fields were kept
                view = {"data_source": row.get("data_source"), "qa_type": row.get("qa_type")}
                has_videos = False
            pooling[key] = view
            scores[key] = row["scores"]
    return RunSamples(pooling, scores, has_videos, frozenset(invalid))


def compare(better: Entry, worse: Entry, config: BootstrapConfig = BootstrapConfig()) -> Comparison:
    """The paired difference ``better − worse`` of every leaderboard metric.

    Raises:
        InputError: the runs were not scored on the same records.
    """
    a, b = load_run_samples(better), load_run_samples(worse)
    if a.invalid != b.invalid:
        raise InputError(f"a paired comparison needs both runs scored on the same records: {better.source} left "
                         f"{len(a.invalid)} invalid records out, {worse.source} {len(b.invalid)}, not the same ones")
    sha_a, sha_b = ((e.dataset or {}).get("sha256") for e in (better, worse))
    if set(a.scores) != set(b.scores) or (sha_a and sha_b and sha_a != sha_b):
        raise InputError(f"a paired comparison needs both runs scored on the same records: {better.source} has "
                         f"{len(a.scores)} samples, {worse.source} {len(b.scores)}"
                         f"{' (different data)' if sha_a != sha_b else ''}")
    keys = sorted(a.scores)
    for k in keys:
        if a.pooling[k].get("qa_type") != b.pooling[k].get("qa_type"):
            raise InputError(f"sample {k} has qa_type {a.pooling[k].get('qa_type')!r} in {better.source} but "
                             f"{b.pooling[k].get('qa_type')!r} in {worse.source}: not the same records")
    if not (a.has_videos and b.has_videos):
        config = BootstrapConfig(config.resamples, config.seed, config.confidence, unit="sample")
    result = paired_intervals([a.pooling[k] for k in keys], [a.scores[k] for k in keys],
                              [b.scores[k] for k in keys], config)
    metrics = {k: (None if better.metrics.get(k) is None or worse.metrics.get(k) is None else result["metrics"][k])
               for k in LEADERBOARD_KEYS}
    info = {k: v for k, v in result.items() if k != "metrics"}
    return Comparison(better.name, worse.name, metrics, info)


def compare_all(ranked: list[Entry], config: BootstrapConfig = BootstrapConfig()) -> list[Comparison]:
    """Every pair of runs, the better-ranked one first (paper rows have no samples and are skipped)."""
    runs = [e for e in ranked if not e.is_paper]
    return [compare(runs[i], runs[j], config) for i in range(len(runs)) for j in range(i + 1, len(runs))]
