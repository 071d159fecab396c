"""Exceptions that the CLI turns into one clear line naming the file or sample at fault."""

from __future__ import annotations

from pathlib import Path

from mvbench.redact import redact


class MvbenchError(Exception):
    """Base class for every error mvbench reports to a user (printed without a traceback)."""


class InputError(MvbenchError):
    """Bad input: a missing, corrupt or malformed file, or a bad record inside one.

    Args:
        message: what is wrong, in words a user can act on.
        path: the file at fault, if any.
        record: the record, row, key or sample inside that file, if any.
    """

    def __init__(self, message: str, path: str | Path | None = None, record: object | None = None):
        self.path = str(path) if path is not None else None
        self.record = record
        self.reason = message
        where = ""
        if self.path:
            where = self.path
        if record is not None:
            where = f"{where} [{record}]" if where else f"[{record}]"
        super().__init__(f"{where}: {message}" if where else message)


class VideoError(InputError):
    """A video that is missing, empty, zero-length or cannot be decoded."""


class UnknownNameError(MvbenchError, KeyError):
    """An unknown source, task, model or other registered name (the message lists the known ones).

    Also a KeyError, so lookups keep their mapping semantics.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ServerError(MvbenchError):
    """A model or judge server failed (after retries) for one request.

    The message is masked with :func:`mvbench.redact.redact` (a server's error body may echo the
    API key), so neither logs nor files that record the error can carry a key.
    """

    def __init__(self, message: str):
        super().__init__(redact(message))
