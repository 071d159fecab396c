"""Checks of command-line values shared by the commands: output paths and config construction.

Each turns a bad value into a one-line usage error naming the option (exit code 2) before any work
starts, instead of a traceback from deep inside (``FileExistsError`` from ``mkdir``, a config's
``ValueError``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

T = TypeVar("T")


def output_dir(path: Path, option: str) -> Path:
    """``path`` as an output folder: it may exist as a folder, never as a file.

    Raises:
        typer.BadParameter: ``path`` is an existing file (or a path through one).
    """
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                raise typer.BadParameter(f"{option} {path}: {parent} is a file, not a folder")
            break
    return path


def output_file(path: Path, option: str) -> Path:
    """``path`` as an output file: never an existing folder, and its folder not a file.

    Raises:
        typer.BadParameter: ``path`` is a folder, or lies under a file.
    """
    if path.is_dir():
        raise typer.BadParameter(f"{option} {path} is a folder; give a file path")
    output_dir(path.parent, option)
    return path


def config(factory: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Build a config dataclass; its ``ValueError`` (which says what to change) becomes a usage error."""
    try:
        return factory(*args, **kwargs)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
