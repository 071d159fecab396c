"""One small generic registry for builders, tasks, metrics and rewards.

Registration is explicit (decorator or call), a duplicate name raises, and an unknown name is
answered with the known names and a "did you mean".
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from mvbench.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name → object map with explicit registration.

    Args:
        kind: what is registered, used in error messages ("builder", "task", ...).

    >>> r = Registry[int]("number")
    >>> r.register("one", 1)
    1
    >>> r.get("one")
    1
    >>> sorted(r)
    ['one']
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._frozen = False

    def register(self, name: str, obj: T | None = None) -> T | Callable[[T], T]:
        """Register ``obj`` under ``name``; without ``obj``, return a decorator."""
        if obj is None:
            def decorator(o: T) -> T:
                self.register(name, o)
                return o
            return decorator
        if self._frozen:
            raise RuntimeError(f"the {self.kind} registry is frozen; cannot add {name!r}")
        if name in self._items and self._items[name] is not obj:
            raise ValueError(f"a {self.kind} named {name!r} is already registered")
        self._items[name] = obj
        return obj

    def get(self, name: str) -> T:
        """Return the object registered under ``name``, or raise UnknownNameError (a KeyError) listing the known names."""
        try:
            return self._items[name]
        except KeyError:
            known = sorted(self._items)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(known)}") from None

    def freeze(self) -> None:
        """Refuse further registrations."""
        self._frozen = True

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, T]]:
        """All (name, object) pairs in registration order."""
        return list(self._items.items())
