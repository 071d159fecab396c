"""Publish a built dataset to the Hugging Face Hub, and materialise a published one back.

Repository layout (everything Parquet, so ``datasets`` reads every config with one loader)::

    README.md                                        dataset card (YAML configs, terms, counts, build, citation)
    LICENSE.md                                       the per-source terms
    manifest.json                                    the build manifest (local paths reduced to folder names)
    records/<source>/<task>/<split>-NNNNN.parquet    records (mvbench.records.ARROW_SCHEMA), sorted by uid
    frames/<source>/<split>-NNNNN.parquet            each frame once, an Image column (builders.hub_frames)

Configs ``all`` (default), one per task and one per source select files by glob, so no record is
stored twice, and a change to one source re-uploads only that source's files (plus card and
manifest).

Publishing stages the repository into a folder (``--dry-run DIR`` stops there: DIR holds exactly
what would be uploaded), hashes every file, and compares with the record of the last publish to
that repository (``DATASET/.mvbench-publish/<owner>--<name>.json``: per file its sha256 and size,
and the commit): only new and changed files are uploaded and files no longer staged are deleted,
so an unchanged re-publish uploads nothing and makes no call at all. The upload itself is
``HfApi.upload_folder`` (``create_repo(exist_ok=True, private=...)`` first): resumable, and it
skips files the Hub already holds. The token is whatever ``huggingface_hub`` resolves (``HF_TOKEN``,
``hf auth login``); it is passed to the client and never printed or written.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from mvbench.builders.card import render_card, render_licence, terms_of
from mvbench.builders.hub_frames import DEFAULT_SHARD_BYTES, FRAMES_DIR, pack_frames, unpack_frames
from mvbench.builders.manifest import MANIFEST_NAME, content_hash, count_records, read_manifest, record_frames
from mvbench.dataset_io import atomic_write_bytes, atomic_write_json, load_json, read_parquet, write_parquet
from mvbench.errors import InputError, ServerError
from mvbench.records import Record

log = logging.getLogger(__name__)

RECORDS_DIR = "records"
RECORDS_PER_SHARD = 10_000
PUBLISH_RECORDS_DIR = ".mvbench-publish"
# Hub repository limits (huggingface.co/docs/hub/repositories-recommendations).
MAX_FILES = 100_000
MAX_FOLDER_ENTRIES = 10_000
MAX_FILE_BYTES = 20 * 1024 ** 3
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


@dataclass(frozen=True)
class FileInfo:
    """A staged file's size and sha256 (what the last-publish record keeps per file)."""

    size: int
    sha256: str


@dataclass
class Plan:
    """What a publish would do, against the last publish to the same repository."""

    upload: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    upload_bytes: int = 0
    first: bool = True  # no record of an earlier publish (every file is offered; the Hub skips what it has)

    @property
    def empty(self) -> bool:
        """Nothing to upload or delete."""
        return not self.upload and not self.delete


@dataclass
class Staged:
    """A staged repository folder and its files (repository path -> size and sha256)."""

    root: Path
    files: dict[str, FileInfo]
    manifest: dict[str, Any]


class HubClient(Protocol):
    """The three Hub calls publishing makes (injected, so tests need no network)."""

    def head(self, repo_id: str) -> str | None:
        """The repository's current commit, or None if it does not exist."""

    def create_repo(self, repo_id: str, private: bool) -> str:
        """Create the dataset repository if missing; return its URL."""

    def upload(self, folder: Path, repo_id: str, allow: Sequence[str], delete: Sequence[str], message: str) -> str:
        """Upload the allowed files of ``folder`` and delete ``delete`` in the repository; return the commit id."""


def check_repo_id(repo_id: str) -> str:
    """``owner/name`` or InputError."""
    if not _REPO_ID.match(repo_id or ""):
        raise InputError(f"--repo-id must be owner/name, not {repo_id!r}")
    return repo_id


def file_info(path: Path) -> FileInfo:
    """Size and sha256 of a file (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return FileInfo(path.stat().st_size, h.hexdigest())


def publishable_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as published: the builder's local raw roots and split file reduced to their names."""
    out = copy.deepcopy(manifest)
    for info in (out.get("sources") or {}).values():
        if isinstance(info, dict) and info.get("root"):
            info["root"] = PurePosixPath(str(info["root"]).replace("\\", "/")).name
    config = out.get("config") or {}
    if config.get("split_file"):
        config["split_file"] = PurePosixPath(str(config["split_file"]).replace("\\", "/")).name
    return out


def _source_names(manifest: dict[str, Any]) -> dict[str, str]:
    """data_source → source (builder) name."""
    return {info["data_source"]: name for name, info in (manifest.get("sources") or {}).items()
            if isinstance(info, dict) and info.get("data_source")}


def load_built(dataset: Path) -> tuple[dict[str, Any], list[Record]]:
    """A built dataset's manifest and records, checked against the manifest's content hash.

    Raises:
        InputError: no manifest, a build without frames, or records that changed since the build.
    """
    manifest = read_manifest(dataset)
    if manifest.get("format") != "mvbench-dataset" or "counts" not in manifest:
        raise InputError("not a built mvbench dataset (manifest without format/counts)", dataset / MANIFEST_NAME)
    if not (manifest.get("frames") or {}).get("written", True):
        raise InputError("a --plan-only build has no frames: build it fully before publishing", dataset)
    records = read_parquet(dataset)
    digest, _, _ = content_hash(records)
    if digest != manifest.get("content_hash"):
        raise InputError(f"the records do not match the manifest's content hash ({str(manifest.get('content_hash'))[:12]}"
                         f" vs {digest[:12]}): the folder changed after the build; rebuild it", dataset)
    return manifest, records


def _prepare_dir(out: Path) -> None:
    """An empty folder, or one an earlier staging wrote (its files are replaced)."""
    if out.exists() and any(out.iterdir()):
        looks_staged = (out / "README.md").is_file() and (out / MANIFEST_NAME).is_file() and (out / RECORDS_DIR).is_dir()
        if not looks_staged:
            raise InputError("the staging folder is not empty and holds no earlier staging: use an empty folder",
                             out)
    out.mkdir(parents=True, exist_ok=True)


def _remove_stale(out: Path, keep: set[str]) -> None:
    for path in sorted(out.rglob("*"), reverse=True):
        rel = path.relative_to(out).as_posix()
        if path.is_file() and rel not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def stage(dataset: str | Path, out: str | Path, repo_id: str, *, records_per_shard: int = RECORDS_PER_SHARD,
          frames_shard_bytes: int = DEFAULT_SHARD_BYTES) -> Staged:
    """Write the repository's files into ``out`` (exactly what a publish uploads).

    Args:
        dataset: a built dataset folder.
        out: the staging folder (empty, or an earlier staging of it).
        repo_id: ``owner/name`` (named in the card's examples).
        records_per_shard: records per Parquet file at most.
        frames_shard_bytes: JPEG bytes per frames shard (a video is never split).

    Returns:
        The staged folder with each file's size and sha256.

    Raises:
        InputError: see :func:`load_built`; a staging folder in use; a Hub limit exceeded.
    """
    dataset, out = Path(dataset), Path(out)
    check_repo_id(repo_id)
    manifest, records = load_built(dataset)
    _prepare_dir(out)
    names = _source_names(manifest)
    groups: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
    frames_by_split: dict[str, set[str]] = defaultdict(set)
    for r in records:
        source = names.get(r.data_source, r.data_source)
        split = r.split or "unsplit"
        groups[(source, r.task, split)].append(r)
        frames_by_split[split].update(record_frames(r))
    record_files: list[str] = []
    for (source, task, split), recs in sorted(groups.items()):
        recs.sort(key=lambda r: r.uid)
        for i in range(0, len(recs), records_per_shard):
            rel = f"{RECORDS_DIR}/{source}/{task}/{split}-{i // records_per_shard:05d}.parquet"
            write_parquet(recs[i:i + records_per_shard], out / rel)
            record_files.append(rel)
    frame_files = pack_frames(dataset, frames_by_split, out, frames_shard_bytes)
    published = publishable_manifest(manifest)
    atomic_write_bytes(out / MANIFEST_NAME, (json.dumps(published, indent=2, ensure_ascii=False, allow_nan=False)
                                             + "\n").encode("utf-8"))
    atomic_write_bytes(out / "README.md", render_card(published, records, record_files, frame_files,
                                                      repo_id).encode("utf-8"))
    atomic_write_bytes(out / "LICENSE.md", render_licence(list(published.get("counts", {}))).encode("utf-8"))
    keep = {MANIFEST_NAME, "README.md", "LICENSE.md", *record_files, *frame_files}
    _remove_stale(out, keep)
    files = {rel: file_info(out / rel) for rel in sorted(keep)}
    check_hub_limits(files)
    return Staged(out, files, published)


def check_hub_limits(files: dict[str, FileInfo]) -> None:
    """Raise InputError when the staged repository would break a Hub limit (files, folder entries, file size)."""
    if len(files) > MAX_FILES:
        raise InputError(f"{len(files)} files: the Hub allows {MAX_FILES} per repository; raise the shard sizes")
    entries: dict[str, set[str]] = defaultdict(set)
    for rel, info in files.items():
        parts = rel.split("/")
        for depth in range(len(parts)):
            entries["/".join(parts[:depth])].add(parts[depth])
        if info.size > MAX_FILE_BYTES:
            raise InputError(f"{rel} is {info.size} bytes: the Hub takes files under {MAX_FILE_BYTES}; lower the "
                             "frames shard size")
    for folder, names in entries.items():
        if len(names) > MAX_FOLDER_ENTRIES:
            raise InputError(f"{folder or 'the repository root'} would hold {len(names)} entries: the Hub allows "
                             f"{MAX_FOLDER_ENTRIES} per folder; raise the shard sizes")


def record_path(dataset: str | Path, repo_id: str) -> Path:
    """Where the record of the last publish of ``dataset`` to ``repo_id`` is kept."""
    return Path(dataset) / PUBLISH_RECORDS_DIR / f"{repo_id.replace('/', '--')}.json"


def load_record(dataset: str | Path, repo_id: str) -> dict[str, Any] | None:
    """The last publish's record, or None if there is none."""
    path = record_path(dataset, repo_id)
    if not path.is_file():
        return None
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise InputError("malformed publish record (delete it to upload everything again)", path)
    return data


def save_record(dataset: str | Path, repo_id: str, files: dict[str, FileInfo], commit: str | None) -> Path:
    """Record what the repository holds after a publish (per file: size, sha256; and the commit)."""
    return atomic_write_json(record_path(dataset, repo_id), {
        "repo_id": repo_id, "repo_type": "dataset", "commit": commit,
        "files": {rel: {"size": f.size, "sha256": f.sha256} for rel, f in sorted(files.items())}})


def plan(files: dict[str, FileInfo], last: dict[str, Any] | None) -> Plan:
    """New and changed files to upload, files gone to delete, the rest unchanged (compared locally)."""
    if last is None:
        return Plan(upload=sorted(files), upload_bytes=sum(f.size for f in files.values()), first=True)
    before = last["files"]
    upload = [rel for rel, f in sorted(files.items())
              if not (isinstance(before.get(rel), dict) and before[rel].get("sha256") == f.sha256
                      and before[rel].get("size") == f.size)]
    return Plan(upload=upload, delete=sorted(set(before) - set(files)),
                unchanged=sorted(set(files) - set(upload)), upload_bytes=sum(files[r].size for r in upload), first=False)


def restricted_sources(manifest: dict[str, Any]) -> list[str]:
    """Sources whose terms do not clearly allow republishing (none for fixture data)."""
    if manifest.get("fixture"):
        return []
    return [s for s in manifest.get("counts", {}) if terms_of(s).redistributable is not True]


@dataclass
class PublishResult:
    """What a publish did (or, for a dry run, would do)."""

    staged: Staged
    plan: Plan
    commit: str | None = None
    url: str | None = None
    uploaded: bool = False


def publish(dataset: str | Path, repo_id: str, *, client: HubClient | None, private: bool = False,
            staging: str | Path | None = None, message: str | None = None, confirm_terms: bool = False,
            frames_shard_bytes: int = DEFAULT_SHARD_BYTES) -> PublishResult:
    """Stage, plan and (unless ``client`` is None: a dry run) upload a built dataset.

    Args:
        dataset: the built dataset folder.
        repo_id: ``owner/name`` of the dataset repository.
        client: the Hub client; None stages and plans only (``--dry-run``).
        private: create the repository private (no effect on an existing one).
        staging: where to stage (the ``--dry-run`` folder, kept); default a temporary folder beside
            the dataset, removed afterwards.
        message: the commit message.
        confirm_terms: the user confirmed the right to republish sources whose terms are unknown
            or forbid it.
        frames_shard_bytes: JPEG bytes per frames shard.

    Raises:
        InputError: bad dataset or staging folder, a Hub limit, or (uploading) restricted
            sources without ``confirm_terms``.
        ServerError: the Hub refused or could not be reached (nothing is recorded then).
    """
    dataset = Path(dataset)
    check_repo_id(repo_id)
    manifest = read_manifest(dataset)
    restricted = restricted_sources(manifest)
    if restricted and client is not None and not confirm_terms:
        listed = "; ".join(f"{s}: {terms_of(s).licence}" for s in restricted)
        raise InputError(f"the terms of {', '.join(restricted)} do not clearly allow republishing ({listed}); "
                         "publish without them, or pass --confirm-terms if you have the right to")
    temporary = staging is None
    root = Path(staging) if staging is not None else Path(tempfile.mkdtemp(prefix=".mvbench-publish-",
                                                                          dir=dataset.resolve().parent))
    staged = stage(dataset, root, repo_id, frames_shard_bytes=frames_shard_bytes)
    last = load_record(dataset, repo_id)
    if client is not None and last is not None:
        head = client.head(repo_id)  # the record describes the repository only if nobody changed it since
        if head != last.get("commit"):
            log.warning("%s is at commit %s, not the %s the last publish recorded (changed, reset or deleted "
                        "since): every file is uploaded", repo_id, head, last.get("commit"))
            last = None
    todo = plan(staged.files, last)
    result = PublishResult(staged, todo)
    if client is None:
        return result
    try:
        if todo.empty:
            log.info("nothing changed since the last publish to %s: nothing to upload", repo_id)
            return result
        result.url = client.create_repo(repo_id, private)
        result.commit = client.upload(staged.root, repo_id, todo.upload, todo.delete,
                                      message or f"mvbench: dataset {manifest.get('content_hash', '')[:12]}")
        result.uploaded = True
        save_record(dataset, repo_id, staged.files, result.commit)
    finally:
        if temporary:  # a rerun stages the same bytes again; an 18 GB leftover helps no one
            shutil.rmtree(root, ignore_errors=True)
    return result


class HfHubClient:
    """:class:`HubClient` over ``huggingface_hub.HfApi`` with a token it never shows.

    Args:
        token: the token (default: ``huggingface_hub.get_token()``: ``HF_TOKEN``, then the file
            ``hf auth login`` writes).

    Raises:
        InputError: no token anywhere.
    """

    def __init__(self, token: str | None = None):
        from huggingface_hub import HfApi, get_token

        self._token = token or get_token()
        if not self._token:
            raise InputError("no Hugging Face token: run `hf auth login` or set HF_TOKEN")
        self._api = HfApi(token=self._token)

    def __repr__(self) -> str:
        return "HfHubClient(token=<hidden>)"

    def _fail(self, what: str, e: Exception) -> ServerError:
        text = str(e).replace(self._token, "<token>") if self._token else str(e)
        return ServerError(f"Hugging Face Hub: {what} failed: {type(e).__name__}: {' '.join(text.split())}")

    def head(self, repo_id: str) -> str | None:
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            return self._api.repo_info(repo_id, repo_type="dataset").sha
        except RepositoryNotFoundError:
            return None
        except Exception as e:  # HTTP, offline mode, auth: one line, token scrubbed
            raise self._fail(f"reading {repo_id}", e) from None

    def create_repo(self, repo_id: str, private: bool) -> str:
        try:
            return str(self._api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True))
        except Exception as e:  # HTTP, offline mode, auth: one line, token scrubbed
            raise self._fail(f"creating {repo_id}", e) from None

    def upload(self, folder: Path, repo_id: str, allow: Sequence[str], delete: Sequence[str], message: str) -> str:
        try:
            info = self._api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="dataset",
                                           allow_patterns=list(allow), delete_patterns=list(delete) or None,
                                           commit_message=message)
        except Exception as e:
            raise self._fail(f"uploading to {repo_id}", e) from None
        return str(getattr(info, "oid", "") or "")


# ----- back from the Hub ------------------------------------------------------------------------

def _write_build_shards(out: Path, records: list[Record], manifest: dict[str, Any]) -> list[str]:
    """Records as a build writes them: ``<source>/<split>-NNNNN.parquet``, sorted by uid, its shard size."""
    names = _source_names(manifest)
    size = int((manifest.get("config") or {}).get("shard_size") or 1000)
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        groups[(names.get(r.data_source, r.data_source), r.split or "unsplit")].append(r)
    written = []
    for (source, split), recs in sorted(groups.items()):
        recs.sort(key=lambda r: r.uid)
        for i in range(0, len(recs), size):
            rel = f"{source}/{split}-{i // size:05d}.parquet"
            write_parquet(recs[i:i + size], out / rel)
            written.append(rel)
    return written


def _fetch(source: str, splits: Sequence[str] | None) -> Path:
    """A Hub id's files via the Hub cache (works offline when cached)."""
    from huggingface_hub import snapshot_download

    patterns = [MANIFEST_NAME, "README.md", "LICENSE.md", f"{RECORDS_DIR}/**"]
    patterns += [f"{FRAMES_DIR}/*/{s}-*.parquet" for s in splits] if splits else [f"{FRAMES_DIR}/**"]
    try:
        return Path(snapshot_download(source, repo_type="dataset", allow_patterns=patterns))
    except Exception as e:
        raise InputError(f"cannot download the Hub dataset: {type(e).__name__}: {' '.join(str(e).split())}",
                         source) from None


def materialise(source: str | Path, out: str | Path, splits: Sequence[str] | None = None) -> dict[str, Any]:
    """Turn a published repository back into the built layout ``mvbench eval --data`` reads.

    Args:
        source: a published repository folder (a ``--dry-run`` folder or a download), or a Hub id.
        out: the folder to write (empty, or an earlier materialisation of the same dataset).
        splits: only these splits (default: all). A full restore is checked against the manifest's
            content hash.

    Returns:
        The manifest written to ``out``.

    Raises:
        InputError: not a published repository, a different dataset already in ``out``, or
            records / frames that do not match the manifest.
    """
    src = Path(source)
    if not src.is_dir():
        if not _REPO_ID.match(str(source)):
            raise InputError("not a published dataset folder or a Hub dataset id (owner/name)", source)
        src = _fetch(str(source), splits)
    out = Path(out)
    manifest = load_json(src / MANIFEST_NAME)
    if not (src / RECORDS_DIR).is_dir():
        raise InputError(f"no {RECORDS_DIR}/ folder: not a repository written by mvbench publish", src)
    if (out / MANIFEST_NAME).is_file():
        there = load_json(out / MANIFEST_NAME)
        origin = (there.get("subset_of") or {}).get("content_hash") or there.get("content_hash")
        if origin != manifest.get("content_hash"):
            raise InputError("holds another dataset: materialise into an empty folder", out)
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
        raise InputError("not empty: materialise into an empty folder", out)
    records = read_parquet(src / RECORDS_DIR)
    if splits:
        records = [r for r in records if (r.split or "unsplit") in set(splits)]
    else:
        digest, _, _ = content_hash(records)
        if digest != manifest.get("content_hash"):
            raise InputError(f"the records do not match the manifest's content hash ({digest[:12]} vs "
                             f"{str(manifest.get('content_hash'))[:12]})", src)
    shards = sorted((src / FRAMES_DIR).glob("*/*.parquet"))
    if splits:
        shards = [s for s in shards if s.name.rsplit("-", 1)[0] in set(splits)]
    out.mkdir(parents=True, exist_ok=True)
    n_frames = unpack_frames(shards, out)
    needed = {f for r in records for f in record_frames(r)}
    missing = sorted(f for f in needed if not (out / f).is_file())
    if missing:
        raise InputError(f"{len(missing)} frames the records reference are not in the frames shards (first: "
                         f"{missing[0]})", src)
    written = _write_build_shards(out, records, manifest)
    for stale in out.glob("*/*.parquet"):
        if stale.relative_to(out).as_posix() not in written and stale.parts[-2] != FRAMES_DIR:
            stale.unlink()
    manifest = {**manifest, "shards": sorted(written)}  # the shards written here (a build's own names)
    if splits:  # a subset: the manifest describes what is there, and says what it was cut from
        digest, n_records, n_frames = content_hash(records)
        source_of = {info.get("data_source"): name for name, info in (manifest.get("sources") or {}).items()}
        manifest = {**manifest, "content_hash": digest, "records": n_records,
                    "counts": count_records(records, source_of),
                    "frames": {**(manifest.get("frames") or {}), "count": n_frames},
                    "subset_of": {"content_hash": manifest.get("content_hash"), "splits": sorted(splits)}}
    atomic_write_json(out / MANIFEST_NAME, manifest)
    log.info("materialised %d records and %d frames into %s", len(records), n_frames, out)
    return manifest


__all__ = ["FileInfo", "HfHubClient", "HubClient", "Plan", "PublishResult", "Staged", "check_hub_limits",
           "load_record", "materialise", "plan", "publish", "publishable_manifest", "record_path", "save_record",
           "stage"]
