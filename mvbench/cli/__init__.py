"""The ``mvbench`` command line: one module per command group, wired here.

Each module under ``mvbench/cli/`` defines ``register(app)``. Known errors (:class:`MvbenchError`)
print as one line naming the file or sample, exit code 1; tracebacks only with ``MVBENCH_DEBUG=1``.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from mvbench import __version__
from mvbench.errors import MvbenchError

err_console = Console(stderr=True, soft_wrap=True)  # one error, one line (no hard wrapping)
app = typer.Typer(name="mvbench", no_args_is_help=True, add_completion=False,
                  help="Build, evaluate and train on MedVidBench (medical video understanding).")

# Command modules, in --help order. A module that is absent (its issue not landed) is skipped
# and its commands are answered by cli/not_landed.py instead.
COMMAND_MODULES = ("build", "eval", "score", "export", "publish", "leaderboard", "train",
                   "fixtures", "demo", "not_landed")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mvbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=err_console, show_path=False)], force=True)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"mvbench.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"mvbench.cli.{name}":
                continue
            raise
        module.register(app)


_register_all()


def main() -> None:
    """Entry point: run the app, printing known errors as one line."""
    try:
        # Without standalone mode click returns a command's exit code instead of exiting with it.
        code = app(standalone_mode=False)
    except MvbenchError as e:
        if os.environ.get("MVBENCH_DEBUG"):
            raise
        # escape(): "[row 3]" and "[video05]" in messages are text, not rich markup.
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        sys.exit(1)
    except KeyError as e:  # registry lookups: unknown source/task/model names
        if os.environ.get("MVBENCH_DEBUG"):
            raise
        err_console.print(f"[bold red]error:[/] {escape(str(e.args[0] if e.args else e))}", highlight=False)
        sys.exit(1)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as e:  # click usage errors
        import click
        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
