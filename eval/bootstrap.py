"""95% bootstrap intervals for the ten leaderboard metrics, resampling whole videos.

Samples cut from one video are not independent (one clip is asked several questions, windows of a
video overlap, one surgeon's skill shows in every clip), so resampling single samples would give
intervals that are too narrow. The unit resampled here is the **video**:

- Within each task, records are grouped by video: ``(data_source, metadata.video_id)``; a record
  without a video id is its own group.
- Resampling is **stratified by data_source**: each draw takes, within every source, as many videos
  as the source has, with replacement. The benchmark's mix of sources is fixed by design (and the
  SA/CVS metrics are unweighted means over sources); what is random is which videos it holds.
  A source with a single video cannot show its own variance, so such sources are resampled
  together as one stratum (the survey statistician's "collapsed strata"; merged into the smallest
  other source when it is the only one). A metric whose task has fewer than two videos gets no
  interval.
- Each draw recomputes the metric through the task's own :meth:`Task.aggregate` on the drawn
  records (a video drawn twice counts twice). The judge metrics are recomputed from the stored
  per-sample judge scores: no judge call is made.
- The interval is the percentile interval of the draws (2.5th and 97.5th percentiles for 95%),
  with a fixed seed; the number of draws, seed, unit and strata are recorded beside it.

:func:`paired_intervals` gives, for two runs on the same records, the difference of each metric and
its interval from the same draws for both runs (a paired bootstrap), so a gap whose interval
excludes 0 is one the data supports.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mvbench.tasks import LEADERBOARD_KEYS, TASKS, Task, leaderboard_metrics
from mvbench.tasks.base import owner_of

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
UNITS = ("video", "sample")
# Merged-record fields the tasks' pooling reads (grouping keys); kept in samples files so the
# intervals can be recomputed from them.
_POOLING_KEYS = ("data_source", "qa_type", "metadata", "video_id", "fps", "dataset", "dataset_name")
_METADATA_KEYS = ("video_id", "fps", "dataset")


@dataclass(frozen=True)
class BootstrapConfig:
    """How intervals are computed.

    Args:
        resamples: number of bootstrap draws.
        seed: seeds the draws (same seed, same records: same intervals).
        confidence: coverage of the percentile interval (0.95: 2.5th to 97.5th percentile).
        unit: ``video`` (whole videos, the default) or ``sample`` (each sample on its own; too
            narrow when samples of a video are correlated; kept for comparison).
    """

    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    confidence: float = 0.95
    unit: str = "video"

    def __post_init__(self) -> None:
        if self.resamples < 20:
            raise ValueError(f"resamples must be >= 20 for a percentile interval, not {self.resamples}")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"confidence must be in [0.5, 1), not {self.confidence}")
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, not {self.unit!r}")

    def describe(self) -> dict[str, Any]:
        """The settings as recorded beside the intervals."""
        return {"method": "percentile bootstrap", "unit": self.unit,
                "strata": "data_source within task (single-video sources resampled together)",
                "resamples": self.resamples, "seed": self.seed, "confidence": self.confidence}


def pooling_fields(record: dict) -> dict:
    """The fields of a merged record that a task's pooling reads (its grouping keys).

    >>> pooling_fields({"data_source": "AVOS", "qa_type": "tal", "gnd": "x", "question": "q",
    ...                 "metadata": {"video_id": "v1", "fps": "1.0", "input_video_start_frame": "3"}})
    {'data_source': 'AVOS', 'qa_type': 'tal', 'metadata': {'video_id': 'v1', 'fps': '1.0'}}
    """
    out = {k: record[k] for k in _POOLING_KEYS if k in record and k != "metadata"}
    metadata = record.get("metadata")
    if isinstance(metadata, dict):
        out["metadata"] = {k: metadata[k] for k in _METADATA_KEYS if k in metadata}
    if out.get("data_source") in (None, "", "Unknown") and record.get("question"):
        out["question"] = record["question"]  # NAP/SA/CVS detect the dataset from it then
    order = {k: i for i, k in enumerate((*_POOLING_KEYS, "question"))}
    return dict(sorted(out.items(), key=lambda kv: order[kv[0]]))


def _task_metrics(task: Task) -> list[str]:
    return [m.key for t, m in leaderboard_metrics() if t is task]


def _by_task(records: Sequence[dict]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        name = owner_of(rec.get("qa_type"))
        if name is not None:
            out.setdefault(name, []).append(i)
    return out


def metric_values(records: Sequence[dict], samples: Sequence[dict]) -> dict[str, float | None]:
    """The ten leaderboard metrics of per-sample scores, pooled by each task's ``aggregate``.

    Args:
        records: merged records (or their :func:`pooling_fields`), in scoring order.
        samples: each record's per-sample score dict, aligned.

    Returns:
        ``{key: value}`` for :data:`LEADERBOARD_KEYS`; None for a task without records, or a
        judge metric without judge scores.
    """
    out: dict[str, float | None] = dict.fromkeys(LEADERBOARD_KEYS)
    for name, idx in _by_task(records).items():
        task = TASKS.get(name)
        pooled = task.aggregate([records[i] for i in idx], [samples[i] for i in idx])
        for key in _task_metrics(task):
            out[key] = pooled.get(key)
    return out


class _Draws:
    """Per task: the strata (sources) of video clusters, and seeded draws of record indices."""

    def __init__(self, records: Sequence[dict], unit: str):
        self.tasks: dict[str, list[list[list[int]]]] = {}  # task -> strata -> clusters -> record indices
        self.clusters = 0
        for name, idx in _by_task(records).items():
            strata: dict[str, dict[Any, list[int]]] = {}
            for i in idx:
                rec = records[i]
                source = str(rec.get("data_source") or "")
                metadata = rec.get("metadata") if isinstance(rec.get("metadata"), dict) else {}
                video = metadata.get("video_id") or rec.get("video_id")
                key = (video if unit == "video" and video not in (None, "") else ("#", i))
                strata.setdefault(source, {}).setdefault(key, []).append(i)
            self.tasks[name] = _collapse([list(clusters.values()) for _, clusters in sorted(strata.items())])
            self.clusters += sum(len(c) for c in self.tasks[name])

    def too_few(self, name: str) -> bool:
        """Whether a task has fewer than two videos (no interval can be drawn)."""
        return sum(len(s) for s in self.tasks.get(name, [])) < 2

    def draw(self, rng: np.random.Generator) -> dict[str, list[int]]:
        """One bootstrap draw: per task, the record indices of the drawn videos."""
        out: dict[str, list[int]] = {}
        for name, strata in self.tasks.items():
            picked: list[int] = []
            for clusters in strata:
                for c in rng.integers(0, len(clusters), size=len(clusters)):
                    picked.extend(clusters[c])
            out[name] = picked
        return out


def _collapse(strata: list[list[list[int]]]) -> list[list[list[int]]]:
    """Resample single-video strata together (into the smallest other stratum if only one)."""
    singles = [s for s in strata if len(s) == 1]
    multi = [s for s in strata if len(s) > 1]
    if len(singles) >= 2:
        return [*multi, [c for s in singles for c in s]]
    if singles and multi:
        smallest = min(range(len(multi)), key=lambda i: len(multi[i]))
        multi[smallest] = multi[smallest] + singles[0]
        return multi
    return strata


def _pool(task: Task, records: Sequence[dict], samples: Sequence[dict], idx: list[int]) -> dict:
    return task.aggregate([records[i] for i in idx], [samples[i] for i in idx])


def _resampled(draws: _Draws, config: BootstrapConfig, wanted: set[str], records: Sequence[dict],
               *runs: Sequence[dict]) -> Iterator[tuple[str, tuple[float, ...]]]:
    """For each of ``config.resamples`` draws of videos: every wanted metric key, with its value
    pooled over the draw in each run (in order), when every run has one."""
    rng = np.random.default_rng(config.seed)
    for _ in range(config.resamples):
        for name, idx in draws.draw(rng).items():
            task = TASKS.get(name)
            keys = [k for k in _task_metrics(task) if k in wanted]
            if not keys:
                continue
            pooled = [_pool(task, records, samples, idx) for samples in runs]
            for k in keys:
                if all(p.get(k) is not None for p in pooled):
                    yield k, tuple(float(p[k]) for p in pooled)


def _percentiles(values: list[float], confidence: float) -> dict[str, float] | None:
    values = [v for v in values if math.isfinite(v)]
    if len(values) < 2:
        return None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(np.asarray(values, dtype=np.float64), [tail, 100 - tail])
    return {"low": float(low), "high": float(high)}


def _single_video_keys(draws: _Draws) -> set[str]:
    return {k for name in draws.tasks if draws.too_few(name) for k in _task_metrics(TASKS.get(name))}


def _keys_to_do(point: dict[str, float | None] | None, computed: dict[str, float | None]) -> set[str]:
    """Metrics with a value: those the run reports (``point``), else those computable here."""
    source = point if point is not None else computed
    return {k for k in LEADERBOARD_KEYS if source.get(k) is not None and computed.get(k) is not None}


def bootstrap_intervals(records: Sequence[dict], samples: Sequence[dict], config: BootstrapConfig = BootstrapConfig(),
                        point: dict[str, float | None] | None = None) -> dict[str, Any]:
    """Percentile bootstrap intervals of the ten leaderboard metrics.

    Args:
        records: merged records (or their :func:`pooling_fields`), in scoring order.
        samples: each record's per-sample score dict (judge scores included), aligned.
        config: draws, seed, confidence, unit.
        point: the metrics the run reports; a metric reported as None (judge skipped or
            failed) gets no interval. Default: every metric computable from ``samples``.

    Returns:
        ``config.describe()`` plus ``clusters`` (the videos resampled, counted per task) and
        ``metrics``: ``{key: {"low", "high"} or None}`` for every leaderboard key (None: no
        value, or fewer than two videos).
    """
    if len(records) != len(samples):
        raise ValueError(f"{len(records)} records but {len(samples)} sample score dicts")
    computed = metric_values(records, samples)
    draws = _Draws(records, config.unit)
    wanted = _keys_to_do(point, computed) - _single_video_keys(draws)
    values: dict[str, list[float]] = {k: [] for k in wanted}
    for k, (v,) in _resampled(draws, config, wanted, records, samples):
        values[k].append(v)
    metrics = {k: (_percentiles(values[k], config.confidence) if k in wanted else None) for k in LEADERBOARD_KEYS}
    return {**config.describe(), "clusters": draws.clusters, "metrics": metrics}


def paired_intervals(records: Sequence[dict], samples_a: Sequence[dict], samples_b: Sequence[dict],
                     config: BootstrapConfig = BootstrapConfig()) -> dict[str, Any]:
    """Differences A − B of each metric between two runs on the same records, with intervals.

    Both runs are pooled on the same draws of videos, so what the two runs share (the hardness
    of each video) cancels out of the difference.

    Args:
        records: the merged records (or their :func:`pooling_fields`) both runs answered.
        samples_a / samples_b: each run's per-sample score dicts, aligned with ``records``.
        config: draws, seed, confidence, unit.

    Returns:
        ``config.describe()`` plus ``clusters`` and ``metrics``: ``{key: {"diff", "low", "high"}
        or None}`` (None when either run lacks the metric).
    """
    if not len(records) == len(samples_a) == len(samples_b):
        raise ValueError("records and both runs' samples must be aligned")
    point_a, point_b = metric_values(records, samples_a), metric_values(records, samples_b)
    draws = _Draws(records, config.unit)
    wanted = {k for k in LEADERBOARD_KEYS if point_a[k] is not None and point_b[k] is not None}
    wanted -= _single_video_keys(draws)
    diffs: dict[str, list[float]] = {k: [] for k in wanted}
    for k, (a, b) in _resampled(draws, config, wanted, records, samples_a, samples_b):
        diffs[k].append(a - b)
    metrics: dict[str, dict | None] = {}
    for k in LEADERBOARD_KEYS:
        interval = _percentiles(diffs[k], config.confidence) if k in wanted else None
        metrics[k] = None if interval is None else {"diff": float(point_a[k]) - float(point_b[k]), **interval}
    return {**config.describe(), "clusters": draws.clusters, "metrics": metrics}


__all__ = ["BootstrapConfig", "DEFAULT_RESAMPLES", "DEFAULT_SEED", "bootstrap_intervals", "metric_values",
           "paired_intervals", "pooling_fields"]
