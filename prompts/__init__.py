"""Prompt templates, shipped as package data (TOML files, each with a ``version``).

>>> load("tasks/tag")["version"]
'1'
"""

from __future__ import annotations

import hashlib
import tomllib
from functools import cache
from importlib import resources
from typing import Any


@cache
def load(name: str) -> dict[str, Any]:
    """Load ``prompts/<name>.toml`` (for example ``"tasks/tag"`` or ``"judge/caption_judge"``).

    Raises:
        FileNotFoundError: no such prompt file, naming the path looked for.
    """
    path = resources.files(__name__).joinpath(f"{name}.toml")
    if not path.is_file():
        raise FileNotFoundError(f"no prompt file {name}.toml in {resources.files(__name__)}")
    return tomllib.loads(path.read_text(encoding="utf-8"))


def prompt_hash(*names: str) -> str:
    """A short hash over the named prompt files (all of them when none is named).

    Manifests and results record it, so a changed prompt invalidates what was built with it.
    """
    root = resources.files(__name__)
    files = sorted(names) if names else sorted(_all_names(root))
    h = hashlib.sha256()
    for name in files:
        h.update(name.encode())
        h.update(root.joinpath(f"{name}.toml").read_bytes())
    return h.hexdigest()[:16]


def prompt_names(exclude: tuple[str, ...] = ()) -> list[str]:
    """Every prompt file's name (``tasks/tag``, ``generation/dvc_gpt`` ...), sorted, minus those
    starting with a prefix in ``exclude``."""
    return sorted(n for n in _all_names(resources.files(__name__)) if not n.startswith(exclude))


def _all_names(root, prefix: str = "") -> list[str]:
    out = []
    for entry in root.iterdir():
        if entry.is_dir() and not entry.name.startswith("__"):
            out += _all_names(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(".toml"):
            out.append(prefix + entry.name[:-5])
    return out
