"""The official MedVidBench test set from the Hugging Face Hub: questions and frames, fetched and unpacked once.

``mvbench eval`` with no ``--data`` (or ``--data official-test``) evaluates the public test set of the
Hub dataset ``UII-AI/MedVidBench`` (CC BY-NC-SA 4.0): ``cleaned_test_data_11_04.json`` (6,245
questions, no answers) and ``testdata.zip`` (the frames, ~18 GB). Its ground truth is private: the
leaderboard Space scores the ``submission.json`` the run writes.

- **Download:** ``huggingface_hub.hf_hub_download`` into the Hugging Face cache (``HF_HUB_CACHE`` /
  ``HF_HOME``), at :data:`DEFAULT_REVISION` unless ``--data-revision`` says otherwise. The commit the
  revision resolved to (read from the cache's ``snapshots/<commit>/`` path) is recorded in
  ``results.json``. With ``HF_HUB_OFFLINE=1`` only the cache is read; a missing file is one line
  saying what to download and where to put it.
- **Frames:** ``testdata.zip`` is unpacked once into ``$MVBENCH_CACHE/official/<sha256[:16]>/``
  (default ``~/.cache/mvbench``). Members are written into ``<key>.partial/``, each as ``NAME.part``
  renamed to ``NAME`` once complete (so an interrupted extraction resumes where it stopped); only
  when every member is there with its size and CRC does the folder get the marker file
  (:data:`MARKER`: the archive's sha256 and size, and every member with its size) and its final
  name, by one rename. A later run reuses it after checking the marker against the archive (size
  and mtime; sha256 again if they changed) and every member's size. The archive's sha256 is
  checked against its Hub etag when the cache names the blob by it (LFS files). A truncated or
  corrupt archive raises one :class:`InputError` naming it; nothing extracted from it is used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from mvbench.dataset_io import atomic_write_json
from mvbench.errors import InputError
from mvbench.llm.cache import cache_root

log = logging.getLogger(__name__)

OFFICIAL_TEST = "official-test"
REPO_ID = "UII-AI/MedVidBench"
QUESTIONS_FILE = "cleaned_test_data_11_04.json"
FRAMES_FILE = "testdata.zip"
# The revision fetched by default. No full 40-hex commit of UII-AI/MedVidBench could be verified
# without network when this was written, so this is the branch; the commit it resolves to is
# recorded in every results.json (fingerprint.dataset.hub.commit). To pin, put the hash printed by
# `python -c "from huggingface_hub import HfApi; print(HfApi().dataset_info('UII-AI/MedVidBench').sha)"`
# here (a hash also resolves offline with no refs/ file).
DEFAULT_REVISION = "main"
LEADERBOARD_SPACE = "UII-AI/MedVidBench-Leaderboard"
LEADERBOARD_URL = f"https://huggingface.co/spaces/{LEADERBOARD_SPACE}"
MARKER = ".mvbench-extracted.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class OfficialTestSet:
    """The official test questions and where their frames are.

    Args:
        questions: the test JSON in the Hugging Face cache.
        base_dir: relative frame paths are joined to this folder (the extraction root).
        frames_root: official absolute paths (``/root/data/...``) are remapped under this folder.
        provenance: repo, requested revision, resolved commit, files with sha256 and size (for
            the fingerprint).
        extracted: members extracted by this call (0 when the frames were already unpacked).
    """

    questions: Path
    base_dir: Path
    frames_root: Path | None
    provenance: dict = field(default_factory=dict)
    extracted: int = 0


@dataclass(frozen=True)
class Extraction:
    """An unpacked archive: its folder, where frames are looked up, and what this call did."""

    root: Path
    frames_root: Path
    sha256: str
    extracted: int
    reused: int


def default_extract_root() -> Path:
    """``$MVBENCH_CACHE/official`` (default ``~/.cache/mvbench/official``)."""
    return cache_root("official")


def download_command(revision: str | None = None, files: tuple[str, ...] = (QUESTIONS_FILE, FRAMES_FILE)) -> str:
    """The shell command that puts the official files into the Hugging Face cache.

    ``hf download`` for huggingface_hub >= 0.34 (where the ``hf`` CLI appeared), else
    ``huggingface-cli download``.
    """
    from huggingface_hub import __version__ as hub_version

    major, minor = (int(x) for x in re.findall(r"\d+", hub_version)[:2])
    tool = "hf download" if (major, minor) >= (0, 34) else "huggingface-cli download"
    return f"{tool} {REPO_ID} {' '.join(files)} --repo-type dataset --revision {revision or DEFAULT_REVISION}"


def fetch_official_test(revision: str | None = None, *, hf_cache_dir: str | Path | None = None,
                        extract_root: str | Path | None = None, with_frames: bool = True) -> OfficialTestSet:
    """Download (or find in the cache) the official test set and unpack its frames once.

    Args:
        revision: branch, tag or commit of ``UII-AI/MedVidBench``; default :data:`DEFAULT_REVISION`.
        hf_cache_dir: the Hugging Face cache; default the hub's own (``HF_HUB_CACHE``/``HF_HOME``).
        extract_root: where frames are unpacked; default :func:`default_extract_root`.
        with_frames: also fetch and unpack ``testdata.zip`` (off when ``--frames-root`` is given).

    Returns:
        The questions file, the frame folders and the provenance.

    Raises:
        InputError: a file is neither in the cache nor downloadable (one line: what to download
            and where to put it), or the archive is truncated or corrupt.
    """
    revision = revision or DEFAULT_REVISION
    questions = _download(QUESTIONS_FILE, revision, hf_cache_dir, with_frames)
    commit = _snapshot_commit(questions)
    provenance: dict = {"repo": f"datasets/{REPO_ID}", "revision": revision, "commit": commit,
                        "files": {QUESTIONS_FILE: _file_info(questions)}}
    if not with_frames:
        return OfficialTestSet(questions, questions.parent, None, provenance)
    archive = _download(FRAMES_FILE, commit or revision, hf_cache_dir, with_frames)
    done = ensure_extracted(archive, extract_root if extract_root is not None else default_extract_root())
    provenance["files"][FRAMES_FILE] = {"sha256": done.sha256, "size": archive.stat().st_size}
    return OfficialTestSet(questions, done.root, done.frames_root, provenance, done.extracted)


def ensure_extracted(archive: str | Path, root: str | Path,
                     progress: Callable[[int, int], None] | None = None) -> Extraction:
    """Unpack ``archive`` under ``root`` once (see the module docstring); reuse it afterwards.

    Args:
        archive: the zip file (a Hugging Face cache snapshot link or a plain file).
        root: the folder holding extractions (one subfolder per archive sha256).
        progress: called as ``progress(done, total)`` after each member written.

    Returns:
        The extraction folder and what this call extracted (0 members when reused).

    Raises:
        InputError: the archive is truncated, corrupt, unsafe, or its sha256 is not its Hub etag;
            or the disk is full.
    """
    from filelock import FileLock

    archive, root = Path(archive), Path(root)
    real = Path(os.path.realpath(archive))
    if not real.is_file():
        raise InputError("archive not found", archive)
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".extract.lock")):
        found = _reuse_by_stat(real, root, archive.name)
        if found is not None:
            return found
        log.info("checking %s (sha256 of %.1f GB)", archive.name, real.stat().st_size / 1e9)
        sha = _sha256(real)
        etag = real.name if _SHA256.match(real.name) else None
        if etag is not None and etag != sha:
            raise InputError(f"damaged download: its sha256 is {sha[:12]}…, the Hub's is {etag[:12]}… (truncated "
                             f"or corrupt); delete it and download again ({download_command()})", archive)
        dest = root / sha[:16]
        marker = _read_marker(dest)
        if marker is not None and marker.get("zip_sha256") == sha and _members_ok(dest, marker):
            _write_marker(dest, {**marker, "source": _source_stat(real)})
            log.info("frames of %s already unpacked in %s", archive.name, dest)
            return Extraction(dest, dest / marker.get("frames_subdir", ""), sha, 0, len(marker["members"]))
        if dest.exists():
            log.warning("%s is incomplete or altered: unpacking %s again", dest, archive.name)
            shutil.rmtree(dest)
        return _extract(archive, real, sha, dest, progress)


# -- download ----------------------------------------------------------------------------------


def _download(filename: str, revision: str, hf_cache_dir: str | Path | None, with_frames: bool) -> Path:
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    cache = Path(hf_cache_dir) if hf_cache_dir is not None else Path(constants.HF_HUB_CACHE)
    try:
        return Path(hf_hub_download(REPO_ID, filename, repo_type="dataset", revision=revision,
                                    cache_dir=str(hf_cache_dir) if hf_cache_dir is not None else None))
    except LocalEntryNotFoundError:
        why = ("HF_HUB_OFFLINE=1" if constants.HF_HUB_OFFLINE else "the Hub could not be reached")
        files = (QUESTIONS_FILE, FRAMES_FILE) if with_frames else (QUESTIONS_FILE,)
        raise InputError(
            f"{filename} ({REPO_ID}@{revision}) is not in the Hugging Face cache {cache} and {why}: run "
            f"`{download_command(revision, files)}` on a machine with network, then copy the folder "
            f"{_repo_folder()} of its cache (~/.cache/huggingface/hub) into {cache}; or pass "
            f"--data {QUESTIONS_FILE} --frames-root FOLDER (the unpacked {FRAMES_FILE})") from None
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError, GatedRepoError) as e:
        raise InputError(f"cannot download {filename} from {REPO_ID}@{revision}: {type(e).__name__}: "
                         f"{_first_line(e)}") from None
    except (HfHubHTTPError, OSError) as e:
        raise InputError(f"cannot download {filename} from {REPO_ID}@{revision} into {cache}: "
                         f"{type(e).__name__}: {_first_line(e)}") from None


def _repo_folder() -> str:
    return "datasets--" + REPO_ID.replace("/", "--")


def _snapshot_commit(path: Path) -> str | None:
    """The commit of a cache path ``.../snapshots/<commit>/<file>`` (None for other layouts)."""
    parent = path.parent
    return parent.name if parent.parent.name == "snapshots" and re.match(r"^[0-9a-f]{40}$", parent.name) else None


def _file_info(path: Path) -> dict:
    return {"sha256": _sha256(path), "size": path.stat().st_size}


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


# -- extraction --------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _source_stat(real: Path) -> dict:
    st = real.stat()
    return {"path": str(real), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read_marker(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("members"), dict) else None


def _write_marker(folder: Path, marker: dict) -> None:
    atomic_write_json(folder / MARKER, marker, indent=None)


def _members_ok(folder: Path, marker: dict) -> bool:
    """Every member the marker lists is a file of the recorded size."""
    for name, size in marker["members"].items():
        try:
            if (folder / name).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


def _reuse_by_stat(real: Path, root: Path, name: str) -> Extraction | None:
    """An extraction whose marker names this very archive (path, size, mtime): no rehash needed."""
    here = _source_stat(real)
    for marker_path in root.glob(f"*/{MARKER}"):
        folder = marker_path.parent
        marker = _read_marker(folder)
        if marker is None or marker.get("source") != here:
            continue
        if _members_ok(folder, marker):
            log.info("frames of %s already unpacked in %s", name, folder)
            return Extraction(folder, folder / marker.get("frames_subdir", ""), marker["zip_sha256"], 0,
                              len(marker["members"]))
    return None


def _safe_name(name: str, archive: Path) -> str:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or not p.parts or name.endswith(".part") or p.name == MARKER:
        raise InputError(f"unsafe member path {name!r}: not extracted", archive)
    return str(p)


def _extract(archive: Path, real: Path, sha: str, dest: Path,
             progress: Callable[[int, int], None] | None) -> Extraction:
    partial = dest.with_name(dest.name + ".partial")
    try:
        zf = zipfile.ZipFile(real)
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise InputError(f"truncated or corrupt zip archive ({e}); nothing extracted: delete it and download "
                         f"again ({download_command()})", archive) from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        names = [_safe_name(i.filename, archive) for i in infos]
        todo = [(i, n) for i, n in zip(infos, names) if not _complete(partial / n, i.file_size)]
        need = sum(i.file_size for i, _ in todo)
        partial.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(partial).free
        if need > free:
            raise InputError(f"unpacking {archive.name} needs {need / 1e9:.1f} GB, {free / 1e9:.1f} GB free; set "
                             "MVBENCH_CACHE to a larger disk", partial)
        log.info("unpacking %s (%d files, %.1f GB; %d already there from an interrupted run) into %s",
                 archive.name, len(infos), need / 1e9, len(infos) - len(todo), dest)
        step = max(1, len(todo) // 10)
        for k, (info, name) in enumerate(todo, 1):
            _extract_member(zf, info, partial / name, archive, partial)
            if progress is not None:
                progress(k, len(todo))
            if k % step == 0 and k < len(todo):
                log.info("unpacked %d of %d files", k, len(todo))
    tops = {PurePosixPath(n).parts[0] for n in names}
    # Frames are looked up under the archive's one top folder (testdata/ mirrors /root/data/).
    subdir = next(iter(tops)) if len(tops) == 1 and (partial / next(iter(tops))).is_dir() else ""
    members = {n: i.file_size for i, n in zip(infos, names)}
    marker = {"zip_sha256": sha, "zip_size": real.stat().st_size, "source": _source_stat(real),
              "frames_subdir": subdir, "members": members}
    if not _members_ok(partial, marker):
        raise InputError(f"unpacked files of {archive.name} changed while unpacking; rerun", partial)
    _write_marker(partial, marker)
    os.replace(partial, dest)
    log.info("unpacked %d files of %s into %s", len(todo), archive.name, dest)
    return Extraction(dest, dest / subdir, sha, len(todo), len(infos) - len(todo))


def _complete(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, archive: Path,
                    partial: Path) -> None:
    """Write one member as ``target.part`` (its CRC checked by zipfile at the end), then rename it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    try:
        with zf.open(info) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)
    except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as e:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(partial, ignore_errors=True)  # members of a corrupt archive are never used
        raise InputError(f"corrupt zip archive at member {info.filename!r} ({e}); nothing of it is used: "
                         f"delete it and download again ({download_command()})", archive) from None
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {target} ({e.strerror or e}); rerun to resume unpacking", archive) from None
    size = tmp.stat().st_size
    if size != info.file_size:
        tmp.unlink(missing_ok=True)
        raise InputError(f"member {info.filename!r} unpacked to {size} bytes, the archive says "
                         f"{info.file_size}", archive)
    os.replace(tmp, target)
