"""Rank models as the official MedVidBench leaderboard app does.

- Values are compared as the app stores them: ``round(round(v, 4), 3)`` (the scorer prints 4
  decimals, the app keeps 3).
- A metric a submission lacks counts as 0.0, as the app fills it before storing ("Fill missing
  metrics with 0"), so it ties with a real 0.000 (it is still shown as missing).
- Each metric gets a **dense** rank (ties share a rank, the next distinct value takes the next
  rank).
- The overall order is by mean rank; ties are broken by more first places, then a lower rank sum,
  then a higher sum of value / column maximum, then the name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mvbench.tasks import LEADERBOARD_KEYS, METRICS


def displayed(value: float | None) -> float | None:
    """The value the leaderboard shows and ranks on.

    >>> displayed(0.12345), displayed(None)
    (0.123, None)
    """
    return None if value is None else round(round(float(value), 4), 3)


@dataclass
class Entry:
    """One leaderboard row: a model name and its ten metrics (None when not computed)."""

    name: str
    metrics: dict[str, float | None]
    source: str = ""           # where the numbers came from (a results.json, or "paper")
    ranks: dict[str, int] = field(default_factory=dict)
    mean_rank: float = 0.0
    dataset: dict | None = None  # the run's fingerprint.dataset (None: unknown, e.g. a score file)
    failed: int = 0              # requests that never got an answer (counts.failed)
    empty_answers: int = 0       # answers that came back empty (counts.empty_answers): also incomplete
    notes: list[str] = field(default_factory=list)  # what loading changed (e.g. NaN read as missing)
    intervals: dict[str, dict | None] = field(default_factory=dict)  # key -> {"low", "high"} (95% bootstrap)
    interval_info: dict | None = None  # how the intervals were drawn (method, unit, resamples, seed)
    counts: dict[str, dict] = field(default_factory=dict)  # task key -> {"records", "scored"}
    fingerprint: dict = field(default_factory=dict)  # what to show beside the row (frames, pixels, judge...)
    flags: list[tuple[str, str]] = field(default_factory=list)  # caveats: (code, text)
    judge_skipped: bool = False  # the llm metrics are missing because no judge ran

    @property
    def is_paper(self) -> bool:
        """A published row (reported, not reproduced here)."""
        return self.source == "paper"

    def flag(self, code: str, text: str) -> None:
        """Add a caveat once."""
        if all(c != code for c, _ in self.flags):
            self.flags.append((code, text))


def dense_ranks(values: list[float | None], higher_is_better: bool = True) -> list[int]:
    """Dense ranks (1 = best); None ranks last.

    >>> dense_ranks([0.5, 0.9, 0.5, None]), dense_ranks([0.5, 0.9], higher_is_better=False)
    ([2, 1, 2, 3], [1, 2])
    """
    distinct = sorted({v for v in values if v is not None}, reverse=higher_is_better)
    position = {v: i + 1 for i, v in enumerate(distinct)}
    return [position[v] if v is not None else len(distinct) + 1 for v in values]


def rank(entries: list[Entry], keys: tuple[str, ...] = LEADERBOARD_KEYS) -> list[Entry]:
    """Fill ``ranks`` and ``mean_rank`` and return the entries best first (missing metrics rank as 0.0)."""
    if not entries:
        return []
    shown = {k: [displayed(e.metrics.get(k)) if e.metrics.get(k) is not None else 0.0 for e in entries]
             for k in keys}
    col_max = {k: max((v for v in shown[k] if v is not None), default=0.0) for k in keys}
    for k in keys:
        for e, r in zip(entries, dense_ranks(shown[k], METRICS[k].higher_is_better)):
            e.ranks[k] = r
    for e in entries:
        e.mean_rank = sum(e.ranks[k] for k in keys) / len(keys)

    def order(e: Entry) -> tuple:
        firsts = sum(1 for k in keys if e.ranks[k] == 1)
        rank_sum = sum(e.ranks[k] for k in keys)
        normalised = sum((displayed(e.metrics.get(k)) or 0.0) / col_max[k] for k in keys if col_max[k] > 0)
        return (e.mean_rank, -firsts, rank_sum, -normalised, e.name)

    return sorted(entries, key=order)
