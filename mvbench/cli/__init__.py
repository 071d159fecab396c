"""The ``mvbench`` command line: one module per command group, wired here.

Each module under ``mvbench/cli/`` defines ``register(app)``. Known errors (:class:`MvbenchError`)
print as one line naming the file or sample, exit code 1; usage errors as one line, exit code 2;
Ctrl-C as one line, exit code 130; tracebacks only with ``MVBENCH_DEBUG=1``. SIGTERM (SLURM time
limits, ``timeout``) exits with 143 through Python's normal unwinding, so ``finally`` blocks run
(a launched vLLM server is stopped).
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from mvbench import __version__
from mvbench.cli.help_format import MvbenchGroup
from mvbench.errors import MvbenchError
from mvbench.redact import RedactingFilter, redact

err_console = Console(stderr=True, soft_wrap=True)  # one error, one line (no hard wrapping)
app = typer.Typer(name="mvbench", no_args_is_help=True, add_completion=False, cls=MvbenchGroup,
                  help="Build, evaluate and train on MedVidBench (medical video understanding).")

# Command modules, in --help order; each defines register(app).
COMMAND_MODULES = ("build", "generate", "eval", "score", "export", "publish", "leaderboard", "train", "fixtures",
                   "demo")

# Libraries that log every HTTP request at INFO; shown only with -v. openai and google-genai send
# through httpx2 (a fork of httpx with its own "httpx2" logger).
QUIET_LOGGERS = ("httpx", "httpx2", "httpcore", "google_genai", "openai", "urllib3")

INTERRUPTED = "interrupted: answers so far are saved; rerun the same command to resume"
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143   # 128 + SIGTERM


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
    # A terminal gets rich log lines; a file or pipe (CI, SLURM logs) gets plain unwrapped lines.
    handler: logging.Handler = (RichHandler(console=err_console, show_path=False) if err_console.is_terminal
                                else logging.StreamHandler(sys.stderr))
    if not err_console.is_terminal:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    handler.addFilter(RedactingFilter())  # no API key reaches stderr, whatever logs it
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[handler], force=True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"mvbench.cli.{name}").register(app)


_register_all()


def _click_exception_types() -> tuple[type[BaseException], ...]:
    """ClickException classes: typer >= 0.29 bundles its own click (``typer._click``); older typer uses click."""
    types: list[type[BaseException]] = []
    try:
        from typer._click.exceptions import ClickException as TyperClickException
        types.append(TyperClickException)
    except ImportError:
        pass
    try:
        from click.exceptions import ClickException
        types.append(ClickException)
    except ImportError:
        pass
    return tuple(types)


def _show_click_error(e: Any) -> int:
    """Print a usage error as one line (no-args help as the help page); return its exit code."""
    if type(e).__name__ == "NoArgsIsHelpError":  # `mvbench` alone: the help page
        e.show()
        return int(e.exit_code)
    ctx = getattr(e, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    message = " ".join(e.format_message().split())  # choice lists come with newlines and tabs
    err_console.print(f"[bold red]error:[/] {escape(message)}{escape(hint)}", highlight=False)
    return int(e.exit_code)


def _one_line(message: str) -> str:
    """``message`` with its lines joined by spaces (and runs of blanks collapsed)."""
    return " ".join(message.split())


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_TERMINATED)


def main() -> None:
    """Entry point: run the app, printing known errors, usage errors and Ctrl-C as one line."""
    signal.signal(signal.SIGTERM, _terminate)
    click_errors = _click_exception_types()
    try:
        # Without standalone mode click returns a command's exit code instead of exiting with it.
        code = app(standalone_mode=False)
    except MvbenchError as e:
        if os.environ.get("MVBENCH_DEBUG"):
            raise
        # escape(): "[row 3]" and "[video05]" in messages are text, not rich markup. One line, always
        # (a parser's message can span several: YAML's points at the column with a caret line).
        err_console.print(f"[bold red]error:[/] {escape(_one_line(redact(e)))}", highlight=False)
        sys.exit(1)
    except OSError as e:  # a path that is a folder, a file, missing or not writable, met deep inside
        if os.environ.get("MVBENCH_DEBUG"):
            raise
        where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
        message = (f"{where}: " if where else "") + (e.strerror or str(e))
        err_console.print(f"[bold red]error:[/] {escape(_one_line(redact(message)))}", highlight=False)
        sys.exit(1)
    except KeyError as e:  # not a known error: a bug; say what and how to see where
        if os.environ.get("MVBENCH_DEBUG"):
            raise
        err_console.print(f"[bold red]error:[/] internal error: missing key {escape(_one_line(repr(e.args[0] if e.args else e)))}"
                          " (rerun with MVBENCH_DEBUG=1 for the traceback, and report it)", highlight=False)
        sys.exit(1)
    except typer.Exit as e:
        code = e.exit_code
    except (typer.Abort, KeyboardInterrupt):  # older click turns Ctrl-C into Abort
        code = EXIT_INTERRUPTED
    except click_errors as e:
        if os.environ.get("MVBENCH_DEBUG"):
            raise
        sys.exit(_show_click_error(e))
    if code == EXIT_INTERRUPTED:  # typer >= 0.29 turns Ctrl-C into Exit(130)
        err_console.print(INTERRUPTED, highlight=False)
    sys.exit(code if isinstance(code, int) else 0)
