"""Strict JSON: everything mvbench writes is standard JSON, so no ``NaN`` or ``Infinity``.

Python's ``json.dumps`` writes ``NaN``/``Infinity`` by default, which other JSON readers reject.
:func:`dumps` refuses them (``allow_nan=False``) and says where they are; callers that can meet a
non-finite number (a metric) replace it with null and record why (``mvbench.eval.score``).
"""

from __future__ import annotations

import json
import math
from typing import Any


class NonFiniteError(ValueError):
    """A value to be written as JSON holds NaN or an infinity.

    Args:
        paths: where, as ``$.key[index]...`` paths.
    """

    def __init__(self, paths: list[str]):
        self.paths = paths
        shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        super().__init__(f"non-finite number (NaN or Infinity is not JSON) at {shown}")


def non_finite_paths(obj: Any, path: str = "$") -> list[str]:
    """Where ``obj`` holds a NaN or infinite float (dicts, lists and tuples are searched).

    >>> non_finite_paths({"a": [1.0, float("nan")], "b": {"c": float("inf")}, "d": "nan"})
    ['$.a[1]', '$.b.c']
    """
    if isinstance(obj, float):
        return [] if math.isfinite(obj) else [path]
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in non_finite_paths(v, f"{path}.{k}")]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in non_finite_paths(v, f"{path}[{i}]")]
    return []


def dumps(obj: Any, *, ensure_ascii: bool = False, **kwargs: Any) -> str:
    """``json.dumps`` with ``allow_nan=False`` (non-ASCII kept unless asked otherwise).

    Raises:
        NonFiniteError: ``obj`` holds NaN or an infinity (naming where).

    >>> dumps({"x": 1.5, "y": None})
    '{"x": 1.5, "y": null}'
    >>> dumps([float("nan")])
    Traceback (most recent call last):
    ...
    mvbench.strict_json.NonFiniteError: non-finite number (NaN or Infinity is not JSON) at $[0]
    """
    try:
        return json.dumps(obj, ensure_ascii=ensure_ascii, allow_nan=False, **kwargs)
    except ValueError as e:
        paths = non_finite_paths(obj)
        if not paths:
            raise
        raise NonFiniteError(paths) from e


def finite_or_none(value: Any) -> Any:
    """``value``, or None if it is a NaN or infinite float.

    >>> finite_or_none(0.5), finite_or_none(float("nan")), finite_or_none("x")
    (0.5, None, 'x')
    """
    return None if isinstance(value, float) and not math.isfinite(value) else value
