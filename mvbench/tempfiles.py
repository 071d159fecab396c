"""Temporary files for atomic writes, created with the permissions an ordinary file gets.

``tempfile.mkstemp`` creates its file with mode 0600 whatever the umask (it is meant for private
scratch files), and ``os.replace`` keeps that mode: datasets, results and frames written through
it could be read by their owner only. :func:`make_temp` creates the file with mode 0666 minus the
process umask, as ``open()`` does, so a group-shared folder stays shared.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def make_temp(folder: str | Path, prefix: str = ".", suffix: str = ".tmp") -> tuple[int, str]:
    """Create a new, empty file in ``folder`` and open it for writing.

    Args:
        folder: where (the same folder as the final file, so ``os.replace`` is atomic).
        prefix / suffix: around a random part of the name.

    Returns:
        ``(file descriptor, path)``, as ``tempfile.mkstemp`` returns them; the mode is
        ``0o666 & ~umask``.

    Raises:
        FileExistsError: only if 100 random names in a row were taken.
    """
    for _ in range(100):
        path = os.path.join(os.fspath(folder), f"{prefix}{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(path, _FLAGS, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name in {folder}")
