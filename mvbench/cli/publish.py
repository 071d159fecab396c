"""``mvbench publish`` (a built dataset to the Hugging Face Hub) and ``mvbench materialise`` (back)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

err = Console(stderr=True, soft_wrap=True, highlight=False)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def publish_command(
    dataset: Annotated[Path, typer.Argument(metavar="DATASET", help="A built dataset folder (mvbench build --out).")],
    repo_id: Annotated[str, typer.Option("--repo-id", metavar="ORG/NAME", help="The Hub dataset repository.")],
    private: Annotated[bool, typer.Option("--private", help="Create the repository private (an existing one "
                                                            "keeps its visibility).")] = False,
    dry_run: Annotated[Optional[Path], typer.Option(
        "--dry-run", metavar="DIR", help="Write exactly what would be uploaded into DIR and stop (no token, no "
                                         "network). Load it with datasets.load_dataset(DIR, CONFIG).")] = None,
    confirm_terms: Annotated[bool, typer.Option(
        "--confirm-terms", help="Publish sources whose terms are unknown or forbid republishing (you hold the "
                                "right to).")] = False,
    message: Annotated[Optional[str], typer.Option("--message", "-m", help="Commit message.")] = None,
    frames_shard_mb: Annotated[int, typer.Option("--frames-shard-mb", help="JPEG megabytes per frames "
                                                                           "shard.")] = 256,
) -> None:
    """Publish DATASET so that datasets.load_dataset("ORG/NAME", CONFIG) reads it (configs: all, each task, each source, frames)."""
    from mvbench.builders.publish import HfHubClient, publish, restricted_sources
    from mvbench.builders.manifest import read_manifest

    if frames_shard_mb < 1:
        raise typer.BadParameter("--frames-shard-mb must be >= 1")
    restricted = restricted_sources(read_manifest(dataset))
    if restricted and dry_run is not None:
        err.print(f"warning: the terms of {', '.join(restricted)} do not clearly allow republishing (see LICENSE.md "
                  "in the dry-run folder); a real publish needs --confirm-terms", markup=False)
    client = None if dry_run is not None else HfHubClient()
    result = publish(dataset, repo_id, client=client, private=private, staging=dry_run, message=message,
                     confirm_terms=confirm_terms, frames_shard_bytes=frames_shard_mb * 1024 * 1024)
    files, p = result.staged.files, result.plan
    err.print(f"staged {len(files)} files ({_mb(sum(f.size for f in files.values()))}): "
              f"{sum(1 for f in files if f.startswith('records/'))} record shards, "
              f"{sum(1 for f in files if f.startswith('frames/'))} frames shards, README.md, LICENSE.md, manifest.json",
              markup=False)
    since = "no earlier publish recorded" if p.first else "since the last publish"
    err.print(f"plan ({since}): upload {len(p.upload)} files ({_mb(p.upload_bytes)}), delete {len(p.delete)}, "
              f"unchanged {len(p.unchanged)}", markup=False)
    if dry_run is not None:
        err.print(f"dry run: nothing uploaded; the repository as it would be is in {dry_run}", markup=False)
        typer.echo(str(dry_run))
    elif result.uploaded:
        err.print(f"published to {result.url or repo_id} (commit {result.commit or '?'})", markup=False)
        typer.echo(f"https://huggingface.co/datasets/{repo_id}")
    else:
        err.print(f"nothing to upload: {repo_id} already holds this dataset", markup=False)


def materialise_command(
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="A published repository folder (a --dry-run "
                                                                 "folder, a download) or a Hub id ORG/NAME.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write: the built layout mvbench eval reads.")],
    split: Annotated[Optional[list[str]], typer.Option("--split", help="Only this split (repeat); default all.")] = None,
) -> None:
    """Records and frame files of a published dataset, back in the layout `mvbench eval --data` reads."""
    from mvbench.builders.publish import materialise

    manifest = materialise(source, out, splits=split or None)
    err.print(f"materialised {source} ({str(manifest.get('content_hash'))[:12]}) into {out}", markup=False)
    typer.echo(str(out))


def register(app: typer.Typer) -> None:
    """Add ``publish`` and ``materialise``."""
    app.command("publish")(publish_command)
    app.command("materialise")(materialise_command)
