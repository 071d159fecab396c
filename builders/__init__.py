"""Source builders: raw dataset trees → canonical annotations → task instances.

Built-in sources are registered on first use; third parties add sources through the Python entry
point group ``mvbench.builders`` (``name = "package.module:BuilderClass"``).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from mvbench.builders.base import BUILDERS, SourceBuilder, register_builder

BUILTIN_SOURCES = ("cholect50", "cholectrack20", "cholec80_cvs", "copesd", "avos", "egosurgery",
                   "jigsaws", "nurvid")
_loaded = False


def load_builders() -> None:
    """Import the built-in source modules and entry-point plugins (once)."""
    global _loaded
    if _loaded:
        return
    for name in BUILTIN_SOURCES:
        try:
            importlib.import_module(f"mvbench.builders.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"mvbench.builders.{name}":
                raise
    for ep in entry_points(group="mvbench.builders"):
        cls = ep.load()
        if ep.name not in BUILDERS:
            BUILDERS.register(ep.name, cls)
    _loaded = True


def get_builder(name: str) -> type[SourceBuilder]:
    """The builder class for a source name (raises KeyError listing known sources)."""
    load_builders()
    return BUILDERS.get(name)


def builder_names() -> list[str]:
    """Registered source names: built-ins in :data:`BUILTIN_SOURCES` order, then plugins.

    The order does not depend on which modules were imported first (a fixture module imports
    its reader, which registers it).
    """
    load_builders()
    builtin = [name for name in BUILTIN_SOURCES if name in BUILDERS]
    return builtin + [name for name in BUILDERS if name not in builtin]


__all__ = ["BUILDERS", "SourceBuilder", "register_builder", "get_builder", "builder_names",
           "load_builders", "BUILTIN_SOURCES"]
