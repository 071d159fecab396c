"""Conventional ``--help`` columns on typer versions that print a ``<type>`` for every parameter.

Typer 0.29 (which bundles its own click as ``typer._click``) fills the rich help's type column
from ``display_type_rich()``: boolean flags, ``--help`` included, show ``<bool>`` although they
take no value, and arguments show ``<path>`` / ``<list[Path]>`` under their lower-case Python
name. :class:`MvbenchGroup` (the root group's class) tidies every command once the tree is
built: flags get an empty metavar (typer prints the metavar instead of the type when one is
set) and arguments are shown by their upper-case name (``RESULTS...``, ``IN_DIR``) without a
type. On typer versions without ``display_type_rich`` (real click) nothing is changed: they
already render flags and arguments this way.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperGroup

# Typer versions whose help prints a "<type>" per parameter have this hook; older ones do not.
_PRINTS_TYPES = hasattr(TyperArgument, "display_type_rich")


class _NamedArgument(TyperArgument):
    """An argument shown by its upper-case name (``RESULTS...`` in the panel), with no type column."""

    @property
    def display_name_raw(self) -> str:
        return self.metavar if self.metavar is not None else self.name.upper()

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def _tidy_param(param: Any) -> None:
    if getattr(param, "param_type_name", None) == "argument":
        if type(param) is TyperArgument:
            param.__class__ = _NamedArgument  # same fields, two display methods overridden
    elif getattr(param, "is_flag", False) and not getattr(param, "count", False) and param.metavar is None:
        param.metavar = ""  # typer shows a set metavar in place of the "<bool>" type


def tidy_help(command: Any) -> None:
    """Tidy the help of ``command`` and every command under it (in place; idempotent).

    Args:
        command: a click/typer command or group.
    """
    if not _PRINTS_TYPES:
        return
    for param in command.params:
        _tidy_param(param)
    # The --help option is made lazily and cached per command; make it now so it is tidied too.
    help_option = command.get_help_option(command.context_class(command))
    if help_option is not None:
        _tidy_param(help_option)
    for sub in (getattr(command, "commands", None) or {}).values():
        tidy_help(sub)


class MvbenchGroup(TyperGroup):
    """The root group: a :class:`TyperGroup` whose command tree has conventional help columns."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        tidy_help(self)
