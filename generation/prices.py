"""The price table (``generation/prices.toml``, or a file given with ``--prices``) and cost arithmetic.

>>> table = PriceTable.load()
>>> round(table.cost("gpt-4.1", 1_000_000, 100_000, batch=False), 2)
2.8
>>> round(table.cost("gpt-4.1-2025-04-14", 1_000_000, 100_000, batch=True), 2)
1.4
>>> table.cost("my-local-model", 10, 10, batch=False) is None
True
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mvbench.errors import InputError

_SNAPSHOT = re.compile(r"^(?P<base>.+)-\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens, standard and batch, with where the figures come from."""

    input: float
    output: float
    batch_input: float
    batch_output: float
    source: str = ""
    read: str = ""


@dataclass(frozen=True)
class PriceTable:
    """Model id → :class:`Price` (``version`` and the file it came from kept for the manifest)."""

    prices: dict[str, Price]
    version: str
    path: str

    @classmethod
    def load(cls, path: str | Path | None = None) -> "PriceTable":
        """Read the built-in table, or ``path``.

        Raises:
            InputError: a missing or malformed file (naming it and the model entry).
        """
        if path is None:
            text = resources.files(__package__).joinpath("prices.toml").read_text(encoding="utf-8")
            where = "mvbench/generation/prices.toml"
        else:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as e:
                raise InputError(f"cannot read the price table: {e}", path) from None
            where = str(path)
        try:
            data = tomllib.loads(text)
            prices = {name: Price(float(d["input"]), float(d["output"]), float(d["batch_input"]),
                                  float(d["batch_output"]), str(d.get("source", "")), str(d.get("read", "")))
                      for name, d in (data.get("models") or {}).items()}
        except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as e:
            raise InputError(f"malformed price table: {type(e).__name__}: {e}", where) from None
        return cls(prices, str(data.get("version", "")), where)

    def price(self, model: str) -> Price | None:
        """The price of ``model`` (a dated snapshot falls back to its base name), or None."""
        if model in self.prices:
            return self.prices[model]
        m = _SNAPSHOT.match(model)
        return self.prices.get(m.group("base")) if m else None

    def cost(self, model: str, input_tokens: int, output_tokens: int, batch: bool) -> float | None:
        """USD for the tokens, or None when the model has no price."""
        p = self.price(model)
        if p is None:
            return None
        rate_in, rate_out = (p.batch_input, p.batch_output) if batch else (p.input, p.output)
        return (input_tokens * rate_in + output_tokens * rate_out) / 1e6
