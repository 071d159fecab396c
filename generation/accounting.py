"""Tokens, cost, calls, cache hits and retries per writer; the ``--budget-usd`` cap.

Costs come from the journal (every finished call carries its usage and cost), so the totals cover
all runs into one output folder; the counters of this run (requests, cache hits, retries,
failures) come from the clients. A call whose model has no price costs ``None`` (reported as
unpriced), which ``--budget-usd`` refuses up front.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from mvbench.errors import InputError
from mvbench.llm.retry import Usage

from mvbench.generation.config import Writer
from mvbench.generation.prices import PriceTable

RESERVE_INPUT_FACTOR = 1.25  # estimated input tokens are approximate: reserve a margin


@dataclass
class WriterTotals:
    """One writer's totals."""

    calls: int = 0
    live: int = 0
    batch: int = 0
    cached: int = 0
    failed: int = 0
    retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["cost_usd"] = round(self.cost_usd, 6)
        return d


def call_cost(prices: PriceTable, writer: Writer, usage: Usage, via: str) -> float | None:
    """USD of one call (None when the model has no price); cache hits are free."""
    if via == "cache":
        return 0.0
    return prices.cost(writer.model, usage.input_tokens, usage.output_tokens, batch=via == "batch")


def totals_from_journal(entries: list[dict[str, Any]]) -> dict[str, WriterTotals]:
    """Per ``variant:model`` totals of journalled calls (all runs)."""
    out: dict[str, WriterTotals] = {}
    for e in entries:
        t = out.setdefault(f"{e['variant']}:{e['model']}", WriterTotals())
        t.calls += 1
        via = e.get("via", "live")
        if via == "cache":
            t.cached += 1
        elif via == "batch":
            t.batch += 1
        else:
            t.live += 1
        t.retries += max(0, int(e.get("attempts") or 1) - 1)
        u = Usage.from_dict(e.get("usage"))
        t.input_tokens += u.input_tokens
        t.output_tokens += u.output_tokens
        if e.get("cost_usd") is None and via != "cache":
            t.unpriced += 1
        else:
            t.cost_usd += float(e.get("cost_usd") or 0.0)
    return dict(sorted(out.items()))


class Budget:
    """Spend tracking with reservations: a call is sent only if its upper-bound cost still fits.

    A refused reservation is not the end: money comes back when calls in flight settle below
    their upper bound, and the caller may try again then. The run stops (:meth:`stop`,
    :attr:`exhausted`) only when a call does not fit although nothing is in flight any more.

    Args:
        cap_usd: the cap (None: unlimited).
        spent_usd: what earlier runs into the same folder spent.
    """

    def __init__(self, cap_usd: float | None, spent_usd: float = 0.0):
        self.cap = cap_usd
        self.spent = spent_usd
        self.reserved = 0.0
        self.refused = 0
        self.stopped = False
        self._lock = threading.Lock()

    @property
    def exhausted(self) -> bool:
        """True once the run stopped at the cap (no new call is scheduled)."""
        return self.stopped

    @property
    def in_flight(self) -> bool:
        """Whether some reservation is still open (its call or job may settle below it)."""
        with self._lock:
            return self.reserved > 1e-12

    def reserve(self, amount: float) -> bool:
        """Reserve ``amount`` USD; False (and nothing reserved) if it would pass the cap now."""
        with self._lock:
            if self.cap is not None and self.spent + self.reserved + amount > self.cap + 1e-12:
                self.refused += 1
                return False
            self.reserved += amount
            return True

    def stop(self) -> None:
        """The next call cannot fit and nothing is in flight: stop scheduling calls."""
        self.stopped = True

    def hold(self, amount: float) -> None:
        """Reserve ``amount`` unconditionally (a job already submitted by an earlier process)."""
        with self._lock:
            self.reserved += amount

    def settle(self, reserved: float, actual: float | None) -> None:
        """Replace a reservation by the call's actual cost (0 for a failed call)."""
        with self._lock:
            self.reserved = max(0.0, self.reserved - reserved)
            self.spent += actual or 0.0


def upper_bound_cost(prices: PriceTable, writer: Writer, est_input_tokens: int, max_tokens: int,
                     batch: bool) -> float:
    """The most a call may cost: estimated input with a margin, and the whole output budget."""
    cost = prices.cost(writer.model, int(est_input_tokens * RESERVE_INPUT_FACTOR), max_tokens, batch=batch)
    return cost or 0.0


def check_budget_prices(prices: PriceTable, writers: list[Writer], budget: float | None) -> None:
    """``--budget-usd`` needs a price for every writer (and the validator).

    Raises:
        InputError: naming the model without a price and how to add one.
    """
    if budget is None:
        return
    missing = [w.model for w in writers if prices.price(w.model) is None]
    if missing:
        raise InputError(f"--budget-usd needs a price for {missing}: add them to a price table and pass "
                         f"--prices FILE (see {prices.path})")
