"""``mvbench fixtures``: small raw source trees in each source's real on-disk format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from mvbench.cli.checks import output_dir


def register(app: typer.Typer) -> None:
    """Add the ``fixtures`` group (``make``, ``list``)."""
    group = typer.Typer(help="Generate raw fixture trees in each source's real format.", no_args_is_help=True)

    @group.command("list")
    def list_() -> None:
        """List the sources that can generate a fixture tree."""
        from mvbench.builders import get_builder
        from mvbench.builders.fixtures import fixture_sources, fixture_variants

        table = Table(title="fixture sources")
        for col in ("source", "data_source", "tasks", "variants"):
            table.add_column(col)
        for name in fixture_sources():
            cls = get_builder(name)
            table.add_row(name, cls.data_source, ", ".join(cls.tasks), ", ".join(fixture_variants(name)))
        Console().print(table)

    @group.command("make")
    def make(
        out_dir: Annotated[Path, typer.Argument(help="Folder to write (for 'all': one subfolder per source).")],
        source: Annotated[str, typer.Option("--source", "-s", help="Source name, or 'all'.")],
        seed: Annotated[int, typer.Option("--seed")] = 0,
        variant: Annotated[Optional[str], typer.Option("--variant", help="A variant shaped like a real release (see 'fixtures list').")] = None,
    ) -> None:
        """Write a fixture raw tree (for --source all: OUT/<source>/ for every source).

        ``mvbench build --source S --root OUT`` accepts OUT as written here (the tree may be one or
        two levels down).
        """
        from mvbench.builders.fixtures import fixture_sources, make_fixture

        output_dir(out_dir, "OUT_DIR")
        if source == "all":
            if variant:
                raise typer.BadParameter("--variant needs one --source")
            for name in fixture_sources():
                root = make_fixture(name, out_dir / name, seed=seed)
                Console().print(f"{name}: {root}")
        else:
            root = make_fixture(source, out_dir, seed=seed, variant=variant)
            Console().print(f"{source}: {root}")

    app.add_typer(group, name="fixtures")
