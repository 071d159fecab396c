"""MedGRPO reward normalisation: a logistic per (data_source, reward component), frozen from SFT rollouts.

r = 1 / (1 + exp(-k (x - p50) / IQR)), with p25/p50/p75 of the raw reward of that
(data_source, component) over SFT-baseline rollouts (medvidbench-format.md §7; k = 3 by default),
so the median maps to 0.5 whatever the pair's raw scale. The statistics are computed once
(``mvbench reward-stats``), written to a JSON file with their provenance, and only read during
training, so every rank normalises identically and the mapping never drifts.

Edge cases are explicit and logged once per pair:

- **IQR floor**: a pair whose IQR is below ``iqr_floor`` (e.g. almost every SFT answer scores 0)
  uses the floor, so the logistic stays finite and its slope bounded.
- **Unseen pair / too small n** (``n < min_n``): ``on_missing="pooled"`` (default) uses the
  component's statistics pooled over every data source (if that pool has ``n >= min_n``), else
  passes the raw reward through; ``"raw"`` always passes it through; ``"error"`` refuses.

A *component* is a task name (``TAG``, ``STG``...) or, for the hybrid caption reward, one of its
halves (``VS.judge``, ``VS.similarity``): both halves are normalised before they are mixed.

Plain functions and dataclasses, no trainer import: verl/EasyR1 users can call them too.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mvbench.dataset_io import atomic_write_json
from mvbench.errors import InputError

log = logging.getLogger(__name__)

STATS_FORMAT = "mvbench-reward-stats"
STATS_VERSION = 1
ON_MISSING = ("pooled", "raw", "error")
POOLED = "*"  # the data_source key of a component's statistics pooled over every source


def logistic(x: float, p50: float, iqr: float, k: float = 3.0) -> float:
    """The MedGRPO normalisation of one raw reward.

    >>> logistic(0.3, 0.3, 0.2)
    0.5
    >>> round(logistic(0.5, 0.3, 0.2), 4)
    0.9526
    """
    z = -k * (x - p50) / iqr
    if z > 700:  # exp overflow: the value is 0 to double precision
        return 0.0
    return 1.0 / (1.0 + math.exp(z))


@dataclass(frozen=True)
class PairStats:
    """Quartiles and count of one (data_source, component)'s raw rewards."""

    p25: float
    p50: float
    p75: float
    n: int

    @property
    def iqr(self) -> float:
        """p75 − p25."""
        return self.p75 - self.p25

    @classmethod
    def of(cls, values: Iterable[float]) -> "PairStats":
        """Quartiles (numpy's linear interpolation) of finite values.

        Raises:
            ValueError: no finite value.
        """
        arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
        if arr.size == 0:
            raise ValueError("no finite rewards")
        p25, p50, p75 = np.percentile(arr, [25, 50, 75])
        return cls(float(p25), float(p50), float(p75), int(arr.size))


@dataclass
class RewardStats:
    """Frozen normalisation statistics: ``pairs[data_source][component]`` plus their provenance."""

    pairs: dict[str, dict[str, PairStats]]
    provenance: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_values(cls, values: Mapping[tuple[str, str], Iterable[float]],
                    provenance: dict[str, Any] | None = None) -> "RewardStats":
        """Statistics of raw rewards grouped by (data_source, component), plus each component's pool.

        Args:
            values: raw rewards per (data_source, component); None/NaN values are skipped.
            provenance: what they come from (model, data hash, predictions, judge...).
        """
        pairs: dict[str, dict[str, PairStats]] = {}
        pooled: dict[str, list[float]] = {}
        for (source, component), vals in sorted(values.items()):
            vals = [v for v in vals if v is not None and math.isfinite(v)]
            if not vals:
                continue
            pairs.setdefault(source, {})[component] = PairStats.of(vals)
            pooled.setdefault(component, []).extend(vals)
        for component, vals in sorted(pooled.items()):
            pairs.setdefault(POOLED, {})[component] = PairStats.of(vals)
        return cls(pairs, dict(provenance or {}))

    def get(self, source: str, component: str) -> PairStats | None:
        """The statistics of one pair, or None."""
        return self.pairs.get(source, {}).get(component)

    def to_json(self) -> dict:
        """The stats file's content."""
        return {"format": STATS_FORMAT, "version": STATS_VERSION, "provenance": self.provenance,
                "stats": {s: {c: asdict(p) for c, p in comps.items()} for s, comps in self.pairs.items()}}

    def save(self, path: str | Path) -> Path:
        """Write the stats file atomically (strict JSON)."""
        return atomic_write_json(Path(path), self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "RewardStats":
        """Read a stats file written by :meth:`save` (``mvbench reward-stats``).

        Raises:
            InputError: missing, not JSON, another format, or malformed entries (naming the file).
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError("reward stats file not found (make it with `mvbench reward-stats`)", path=path) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputError(f"not valid JSON: {e}", path=path) from None
        if not isinstance(data, dict) or data.get("format") != STATS_FORMAT:
            raise InputError(f"not a {STATS_FORMAT} file", path=path)
        pairs: dict[str, dict[str, PairStats]] = {}
        try:
            for source, comps in data["stats"].items():
                for component, s in comps.items():
                    stats = PairStats(float(s["p25"]), float(s["p50"]), float(s["p75"]), int(s["n"]))
                    if not (stats.p25 <= stats.p50 <= stats.p75) or stats.n < 1:
                        raise ValueError(f"{source}/{component}: quartiles out of order or n < 1")
                    pairs.setdefault(source, {})[component] = stats
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InputError(f"malformed stats entry: {e}", path=path) from None
        return cls(pairs, data.get("provenance") or {})


@dataclass(frozen=True)
class NormalizationConfig:
    """How raw rewards are normalised.

    Args:
        enabled: False is the paper's ``--no-reward-norm`` ablation (raw rewards).
        stats: the stats file (``mvbench reward-stats``); required when enabled.
        k: the logistic's steepness.
        iqr_floor: the smallest IQR used.
        min_n: pairs with fewer SFT rollouts count as unseen.
        on_missing: ``pooled`` | ``raw`` | ``error`` for unseen or too-small pairs.
    """

    enabled: bool = True
    stats: str | None = None
    k: float = 3.0
    iqr_floor: float = 0.05
    min_n: int = 20
    on_missing: str = "pooled"

    def __post_init__(self) -> None:
        if self.k <= 0:
            raise ValueError("normalization.k must be > 0")
        if self.iqr_floor <= 0:
            raise ValueError("normalization.iqr_floor must be > 0 (it keeps the logistic finite)")
        if self.min_n < 1:
            raise ValueError("normalization.min_n must be >= 1")
        if self.on_missing not in ON_MISSING:
            raise ValueError(f"normalization.on_missing must be one of {ON_MISSING}, not {self.on_missing!r}")


class Normalizer:
    """Maps raw rewards to normalised ones per (data_source, component); logs every fallback once.

    Args:
        config: the normalisation settings.
        stats: loaded statistics (read from ``config.stats`` when None and enabled).
    """

    def __init__(self, config: NormalizationConfig, stats: RewardStats | None = None):
        self.config = config
        if stats is None and config.enabled:
            if not config.stats:
                raise InputError("reward normalisation needs a stats file from `mvbench reward-stats` "
                                 "(--reward-stats FILE or normalization.stats); --no-reward-norm trains on raw "
                                 "rewards (the paper's ablation)")
            stats = RewardStats.load(config.stats)
        self.stats = stats
        self.how: dict[tuple[str, str], str] = {}  # (source, component) -> own | pooled | raw (+ "/floored")
        self._logged: set[tuple[str, str, str]] = set()

    def resolve(self, source: str, component: str) -> tuple[PairStats | None, str]:
        """The statistics used for a pair and how they were chosen (``own``, ``pooled``, ``raw``).

        Raises:
            InputError: ``on_missing="error"`` and the pair is unseen or too small.
        """
        cfg = self.config
        own = self.stats.get(source, component) if self.stats else None
        if own is not None and own.n >= cfg.min_n:
            return own, "own"
        reason = "unseen" if own is None else f"only {own.n} SFT rollouts (< min_n {cfg.min_n})"
        if cfg.on_missing == "error":
            raise InputError(f"no usable reward statistics for ({source}, {component}): {reason}",
                             path=cfg.stats)
        if cfg.on_missing == "pooled":
            pooled = self.stats.get(POOLED, component) if self.stats else None
            if pooled is not None and pooled.n >= cfg.min_n:
                self._note(source, component, f"{reason}; using {component} pooled over sources")
                return pooled, "pooled"
        self._note(source, component, f"{reason}; raw reward passed through unnormalised")
        return None, "raw"

    def __call__(self, x: float, source: str, component: str) -> float:
        """The normalised reward (the raw one when normalisation is off or falls back to raw)."""
        if not self.config.enabled:
            return x
        stats, how = self.resolve(source, component)
        if stats is not None:
            iqr = stats.iqr
            if iqr < self.config.iqr_floor:
                self._note(source, component, f"IQR {iqr:.4g} below the floor; using {self.config.iqr_floor}")
                iqr = self.config.iqr_floor
                how += "/floored"
            x = logistic(x, stats.p50, iqr, self.config.k)
        self.how[(source, component)] = how
        return x

    def report(self) -> dict[str, str]:
        """How each pair seen so far was normalised (``source/component`` -> own|pooled|raw[/floored])."""
        return {f"{s}/{c}": how for (s, c), how in sorted(self.how.items())}

    def _note(self, source: str, component: str, message: str) -> None:
        if (source, component, message) not in self._logged:
            self._logged.add((source, component, message))
            log.warning("reward normalisation (%s, %s): %s", source, component, message)
