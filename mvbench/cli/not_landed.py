"""Commands whose implementation has not landed yet: they say so and exit non-zero, never pretend."""

from __future__ import annotations

import typer

from mvbench import __version__
from mvbench.errors import NotLandedError

# command -> what it will do (commands not available in this version)
PENDING = {
    "publish": "publish a built dataset to the Hugging Face Hub",
}


def register(app: typer.Typer) -> None:
    """Add a placeholder for every pending command that no other module registered."""
    taken = {c.name or (c.callback.__name__.replace("_", "-") if c.callback else "")
             for c in app.registered_commands}
    taken |= {g.name for g in app.registered_groups}
    for name, what in PENDING.items():
        if name in taken:
            continue
        app.command(name, help=f"(not available in this version) {what[0].upper()}{what[1:]}.",
                    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
                    add_help_option=False)(_pending(name, what))


def _pending(name: str, what: str):
    def command(ctx: typer.Context) -> None:
        raise NotLandedError(f"`mvbench {name}` will {what}; it is not available in mvbench {__version__}.")
    command.__name__ = name.replace("-", "_")
    return command
