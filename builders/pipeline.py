"""The build pipeline: raw source tree → planned instances → frames → records → shards → manifest.

Per video (in a worker process, or a Ray task): read the canonical annotations, plan every
instance (:func:`mvbench.builders.generators.plan_video`), decode the video once and write only the
frames some instance needs (``OUT/frames/<source>/<video_id>/<index:06d>.jpg``, shared by all
instances), then persist the video's records (``OUT/.work/<source>/<video>.jsonl``: Arrow rows as JSON lines, so that a
recursive ``*.parquet`` glob of ``OUT`` finds only the shards) and last a
done-marker (``<video>.done.json``), both atomically. A rerun skips every video whose marker
matches the build's fingerprint (same seed, tasks, generator options and code versions), so an
interrupted build resumes where it stopped.

Splits are assigned after every video is read (official splits are only known then; see
:mod:`mvbench.builders.splits`), records are validated, sorted by uid and written as
``OUT/<source>/<split>-NNNNN.parquet`` shards (atomic; stale shards removed), and
``OUT/manifest.json`` is written last. Videos with caption instances (DVC, VS, RC) also get their
annotations written to ``OUT/annotations/<source>/<video>.json`` (:mod:`mvbench.builders.annotations`),
for the enrichment step of ``mvbench generate``.

Adding sources one at a time: each source's run (root, tasks, options, listed videos) is kept in
``OUT/.work/<source>/source.json``. A build into an ``OUT`` that already holds other sources
carries them: their records come from their done-markers (rebuilt from their raw root only when
this build's options make them stale), splits are unified across every source in ``OUT`` (so a
Cholec80 surgery gets one split whichever source brought it in first; the shards of a source
whose videos moved are rewritten) and the manifest lists them all. The result is the build of
all those sources at once: the same content hash.

``plan_only`` writes the records without decoding anything: frame paths are deterministic, so a
later full build reuses the same records and only adds the frames. Builders are told
(``SourceBuilder.plan_only``), so a reader may plan a video whose media is absent from its
annotations alone.

Validation beyond the record schema, all reported in the manifest: the gold check
(:mod:`mvbench.builders.gold`: every gold answer at its own metric's maximum), the plan report
per source (lowered / raised sampling rates, skipped instances, dropped DVC segments:
:class:`mvbench.builders.generators.PlanReport`), each video's label-key spacing, and
``empty_tasks``: a task a source declares but no video yields, with the reason and the option
that would change it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvbench import __version__, prompts
from mvbench.builders import builder_names, get_builder
from mvbench.builders.annotations import CAPTION_TASKS, write_annotation
from mvbench.builders.base import SourceBuilder, VideoMeta
from mvbench.builders.fixtures import is_fixture_root
from mvbench.builders.generators import (EMPTY_REASONS, GENERATORS_VERSION, GenConfig, eligible_segments,
                                         plan_video_report)
from mvbench.builders.gold import gold_check
from mvbench.builders.instances import to_record
from mvbench.builders.manifest import base_manifest, content_hash, count_records, write_manifest
from mvbench.builders.splits import assign_splits, load_split_file, unify_groups
from mvbench.dataset_io import atomic_write_bytes, atomic_write_json, load_json, write_parquet
from mvbench.errors import InputError, MvbenchError, VideoError
from mvbench.records import Record
from mvbench.tasks import TASKS
from mvbench.video.frames import extract_frames, write_jpeg_atomic
from mvbench.video.readers import ImageSequence

log = logging.getLogger(__name__)

WORK_DIR = ".work"
FRAMES_DIR = "frames"
EXECUTORS = ("local", "ray")


@dataclass
class BuildOptions:
    """Options of one build (the ``mvbench build`` flags).

    Args:
        out: output folder.
        tasks: restrict to these tasks (default: every task each source supports).
        workers: parallel videos (default: all cores).
        plan_only: write records without decoding any video.
        keep_going: skip a failing video, record the failure, carry on.
        seed: seeds splits, windows, rates and phrasings.
        executor: ``local`` (process pool) or ``ray``.
        split_file: JSON/CSV override of splits by video id.
        keep_val: keep official ``val`` videos as ``val`` (default: they count as train).
        shard_size: records per Parquet shard at most.
        gen: generator options (frame cap, window lengths, per-video caps).
        jpeg_quality / max_side: frame encoding (``max_side`` shrinks large frames).
        builder_overrides: per source name, config fields to override (``--option k=v``).
    """

    out: Path
    tasks: Sequence[str] | None = None
    workers: int | None = None
    plan_only: bool = False
    keep_going: bool = False
    seed: int = 0
    executor: str = "local"
    split_file: Path | None = None
    keep_val: bool = False
    shard_size: int = 1000
    gen: GenConfig = field(default_factory=GenConfig)
    jpeg_quality: int = 90
    max_side: int | None = None
    builder_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, not {self.executor!r}")
        if self.shard_size < 1:
            raise ValueError("shard_size must be >= 1")
        if self.workers is not None and self.workers < 1:
            raise ValueError("workers must be >= 1")
        if self.tasks is not None:
            for t in self.tasks:
                TASKS.get(t)  # KeyError listing the known tasks
        if self.gen.seed != self.seed:
            self.gen = dataclasses.replace(self.gen, seed=self.seed)


@dataclass(frozen=True)
class VideoJob:
    """Everything a worker needs for one video (picklable: the builder class goes by reference)."""

    builder_cls: type[SourceBuilder]
    root: str
    seed: int
    video_id: str
    tasks: tuple[str, ...]
    gen: GenConfig
    out: str
    plan_only: bool
    fingerprint: str
    builder_version: str
    jpeg_quality: int = 90
    max_side: int | None = None
    overrides: tuple[tuple[str, Any], ...] = ()


# The option that changes an empty task, by reason code (a builder's ``empty_task_options`` wins).
EMPTY_TASK_OPTIONS: dict[str, str] = {
    "single_box_tracks": "--stg-keyframes (STG asks for the box at each labelled frame)",
    "sparse_store": "none lowers the rate below 0.1 fps: add the missing frames to the frame store",
    "no_tracks": "none: the annotations hold no boxes",
    "no_events": "none: the annotations hold no timed events",
    "no_scores": "none: the annotations hold no score windows",
    "one_step": "none: a video needs two steps for NAP",
    "too_short": "--max-frames or the generator window options (see the anomalies of the videos)",
}


def builder_version(cls: type[SourceBuilder]) -> str:
    """The ``builder_version`` of records: package + builder + generators + prompt-file hash.

    The generation prompts (``prompts/generation/``) are left out: the build never reads them, and
    ``mvbench generate`` records their versions in its own manifest section and cache keys.
    """
    names = prompts.prompt_names(exclude=("generation/",))
    return f"{__version__}+{cls.name}.v{cls.version}+g{GENERATORS_VERSION}+p{prompts.prompt_hash(*names)}"


def fingerprint(cls: type[SourceBuilder], root: Path, tasks: Sequence[str], gen: GenConfig,
                overrides: Sequence[tuple[str, Any]] = ()) -> str:
    """What a per-video done-marker must match to be reused (not: workers, plan_only, out)."""
    blob = json.dumps({"builder": cls.name, "version": builder_version(cls), "root": str(root.resolve()),
                       "tasks": list(tasks), "gen": dataclasses.asdict(gen),
                       "overrides": [list(kv) for kv in overrides]}, sort_keys=True, default=str, allow_nan=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def safe_name(video_id: str) -> str:
    """A file-name-safe stem for a video id (unchanged when already safe)."""
    if re.fullmatch(r"[A-Za-z0-9._-]+", video_id) and not video_id.startswith("."):
        return video_id
    digest = hashlib.sha1(video_id.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', video_id).lstrip('.')}-{digest}"


def work_paths(out: Path, source: str, video_id: str) -> tuple[Path, Path]:
    """(records file, done-marker) of one video."""
    base = out / WORK_DIR / source / safe_name(video_id)
    return base.with_name(base.name + ".jsonl"), base.with_name(base.name + ".done.json")


def write_work_records(records: Sequence[Record], path: Path) -> None:
    """Persist one video's records atomically (one JSON row per line)."""
    text = "".join(json.dumps(r.to_row(), ensure_ascii=False, allow_nan=False) + "\n" for r in records)
    atomic_write_bytes(path, text.encode("utf-8"))


def read_work_records(path: Path) -> list[Record]:
    """Read records written by :func:`write_work_records`."""
    try:
        return [Record.from_row(json.loads(line))
                for line in path.read_text(encoding="utf-8").splitlines() if line]
    except (OSError, json.JSONDecodeError, KeyError) as e:
        raise InputError(f"unreadable work file (delete it to rebuild the video): {e}", path) from None


# ----- per-video work (runs in workers) -------------------------------------------------------
_BUILDERS: dict[tuple, SourceBuilder] = {}


def _builder(cls: type[SourceBuilder], root: str, seed: int,
             overrides: tuple[tuple[str, Any], ...] = (), plan_only: bool = False) -> SourceBuilder:
    """One builder object per (class, root, seed, overrides, plan_only) per process (builders may index files)."""
    key = (cls, root, seed, overrides, plan_only)
    if key not in _BUILDERS:
        _BUILDERS[key] = cls(root, seed=seed, plan_only=plan_only, **dict(overrides))
    return _BUILDERS[key]


def write_video_frames(meta: VideoMeta, indices: Sequence[int], out_dir: Path, *, quality: int = 90,
                       max_side: int | None = None) -> int:
    """Write the given native frames of one video (decoded once); return how many are wanted.

    Video files go through :func:`mvbench.video.extract_frames`; frame folders read only the
    images needed (``meta.frame_files``). Existing frames are not written again.

    Raises:
        VideoError: the video (or a frame image) is missing or cannot be decoded, naming the file.
    """
    wanted = sorted(set(int(i) for i in indices))
    if not wanted:
        return 0
    if meta.path is not None and not meta.path.is_file():
        raise VideoError(f"video file of {meta.video_id} not found; --plan-only plans it from its annotations "
                         f"alone (no frames), --keep-going skips it", path=meta.path)
    if meta.path is not None:
        decode_fps = meta.attrs.get("decode_fps")
        if decode_fps and abs(float(decode_fps) - meta.native_fps) > 1e-6:
            _extract_resampled(meta, wanted, out_dir, float(decode_fps), quality, max_side)
        else:
            extract_frames(meta.path, wanted, out_dir, quality=quality, max_side=max_side)
        return len(wanted)
    assert meta.frame_files is not None
    todo = [i for i in wanted if not _present(out_dir / f"{i:06d}.jpg")]
    if not todo:
        return len(wanted)
    missing = [i for i in todo if i not in meta.frame_files]
    if missing:
        raise VideoError(f"frame {missing[0]} is not in the frame store of video {meta.video_id}")
    out_dir.mkdir(parents=True, exist_ok=True)
    from mvbench.video.frames import resize_max_side  # one resize rule for files and folders

    with ImageSequence([meta.frame_files[i] for i in todo], fps=meta.native_fps) as reader:
        for pos, frame in reader.iter_frames(range(len(todo))):
            write_jpeg_atomic(resize_max_side(frame, max_side), out_dir / f"{todo[pos]:06d}.jpg", quality)
    return len(wanted)


def _extract_resampled(meta: VideoMeta, wanted: Sequence[int], out_dir: Path, decode_fps: float,
                       quality: int, max_side: int | None) -> None:
    """Write native frames of a file whose own frame rate differs (``VideoMeta.attrs["decode_fps"]``).

    Native frame ``n`` is file frame ``round(n / native_fps * decode_fps)``; files keep native names.
    """
    from mvbench.video.frames import resize_max_side
    from mvbench.video.readers import open_video
    from mvbench.video.sampling import time_to_index

    todo = [i for i in wanted if not _present(out_dir / f"{i:06d}.jpg")]
    if not todo:
        return
    assert meta.path is not None
    with open_video(meta.path) as reader:
        n_file = int(meta.attrs.get("decode_num_frames") or reader.info.num_frames)
        by_file: dict[int, list[int]] = {}
        for i in todo:
            by_file.setdefault(time_to_index(i / meta.native_fps, decode_fps, n_file), []).append(i)
        out_dir.mkdir(parents=True, exist_ok=True)
        for file_index, frame in reader.iter_frames(sorted(by_file)):
            for native in by_file[file_index]:
                write_jpeg_atomic(resize_max_side(frame, max_side), out_dir / f"{native:06d}.jpg", quality)


def _present(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def process_video(job: VideoJob) -> dict[str, Any]:
    """Read, plan, extract frames and persist records for one video; return its summary.

    Known errors (:class:`MvbenchError`) come back as ``{"video_id", "error", "error_type"}``
    instead of raising, so that one message crosses process boundaries intact.
    """
    try:
        return _process_video(job)
    except MvbenchError as e:
        return {"video_id": job.video_id, "error": str(e), "error_type": type(e).__name__}


def _process_video(job: VideoJob) -> dict[str, Any]:
    cls = job.builder_cls
    builder = _builder(cls, job.root, job.seed, job.overrides, job.plan_only)
    ann = builder.read_video(job.video_id)
    meta = ann.video
    instances, report = plan_video_report(ann, cls, job.tasks, job.gen)
    out = Path(job.out)
    frames_needed = sorted({i for inst in instances for i in inst.frame_indices})
    if not job.plan_only and frames_needed:
        write_video_frames(meta, frames_needed, out / FRAMES_DIR / cls.name / meta.video_id,
                           quality=job.jpeg_quality, max_side=job.max_side)
    records = [to_record(inst, cls, meta, None, job.builder_version) for inst in instances]
    for r in records:
        r.validate()
    if any(inst.task in CAPTION_TASKS for inst in instances):
        write_annotation(out, ann)  # what `mvbench generate` enriches the caption prompts with
    per_task: dict[str, int] = {}
    covered: dict[str, set[int]] = {"TAG": set(), "DVC": set()}
    for inst in instances:
        per_task[inst.task] = per_task.get(inst.task, 0) + 1
        if inst.task in covered:
            covered[inst.task].update(inst.covers)
    issues = list(ann.issues)
    eligible = eligible_segments(ann, cls)
    for task in ("TAG", "DVC"):
        if task in job.tasks and len(covered[task]) < eligible[task]:
            issues.append(f"{task}: {eligible[task] - len(covered[task])} of {eligible[task]} "
                          f"segments not used by any instance")
    summary = {
        "video_id": meta.video_id, "official_split": meta.split,
        "split_group": meta.attrs.get("split_group"), "instances": per_task,
        "segments": len(ann.events),
        "segments_eligible": {t: n for t, n in eligible.items() if t in job.tasks},
        "covered": {t: len(v) for t, v in covered.items() if t in job.tasks},
        "frames": len(frames_needed), "frames_written": not job.plan_only,
        "issues": issues, "plan": report.as_dict(), "label_keys": meta.attrs.get("label_keys"),
        "media": meta.attrs.get("media", "present"), "fingerprint": job.fingerprint,
    }
    records_path, marker = work_paths(out, cls.name, meta.video_id)
    write_work_records(records, records_path)
    atomic_write_json(marker, summary)  # last: the video is done only once this exists
    return summary


# ----- orchestration --------------------------------------------------------------------------
@dataclass
class SourceRun:
    """One source of a build: its builder, raw root and per-video results.

    ``carried``: a source already in ``OUT`` that this build did not name (see the module docstring).
    """

    builder_cls: type[SourceBuilder]
    root: Path
    tasks: tuple[str, ...]
    videos: list[str] = field(default_factory=list)
    summaries: dict[str, dict] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    overrides: tuple[tuple[str, Any], ...] = ()
    carried: bool = False


OnVideoDone = Callable[[str, str, dict], None]
SOURCE_FILE = "source.json"


def build(sources: Sequence[tuple[str, Path]], options: BuildOptions,
          on_video_done: OnVideoDone | None = None) -> dict[str, Any]:
    """Build one dataset from one or more sources into ``options.out``.

    Sources already built into ``options.out`` and not named here are carried along (see the
    module docstring), so sources can be added one at a time.

    Args:
        sources: ``(builder name, raw root)`` pairs; a root may also be the folder that holds the
            source's tree (``mvbench fixtures make`` output, a download folder): see :func:`resolve_root`.
        options: the build options.
        on_video_done: called in the main process as ``f(source, video_id, summary)`` after each
            video finishes (progress display; tests use it to interrupt a build).

    Returns:
        The manifest (also written to ``OUT/manifest.json``).

    Raises:
        InputError / VideoError: a video failed and ``keep_going`` is off (the one-line error), or
            a source in ``OUT`` cannot be carried.
    """
    out = options.out
    names = [name for name, _ in sources]
    if len(set(names)) != len(names):
        raise InputError(f"a source is named twice: {names}")
    carried = carried_runs(out, names, options)
    out.mkdir(parents=True, exist_ok=True)
    runs: list[SourceRun] = []
    for name, root in sources:
        cls = get_builder(name)
        root = resolve_root(cls, Path(root))
        tasks = tuple(t for t in cls.tasks if options.tasks is None or t in options.tasks)
        overrides = tuple(sorted(options.builder_overrides.get(name, {}).items()))
        builder = cls(root, seed=options.seed, plan_only=options.plan_only, **dict(overrides))
        run = SourceRun(cls, root, tasks, videos=list(builder.list_videos()), overrides=overrides)
        _save_run(out, run)
        runs.append(run)
    order = {n: i for i, n in enumerate(builder_names())}
    runs = sorted(runs + carried, key=lambda r: (order.get(r.builder_cls.name, len(order)), r.builder_cls.name))
    _run_videos(runs, options, on_video_done)
    return _assemble(runs, options)


def resolve_root(cls: type[SourceBuilder], root: Path) -> Path:
    """The folder holding ``cls``'s raw tree: ``root`` itself, or the one folder one or two levels down.

    ``mvbench fixtures make --source cholect50 DIR`` writes ``DIR/CholecT50`` (as the downloads
    unpack); ``--source all`` writes ``DIR/cholect50/CholecT50``. Both ``DIR`` and the tree itself
    are accepted. A root no level of which the builder detects is returned unchanged (the
    builder then names what it misses).

    Raises:
        InputError: several trees of the source at the same depth (naming them).
    """
    if not root.is_dir() or cls.detect(root):
        return root
    level = [root]
    for _ in range(2):
        level = sorted(c for p in level for c in p.iterdir() if c.is_dir() and not c.name.startswith("."))
        hits = [c for c in level if cls.detect(c)]
        if len(hits) == 1:
            log.info("%s: using the raw tree %s under %s", cls.name, hits[0], root)
            return hits[0]
        if hits:
            raise InputError(f"several {cls.data_source} trees under this folder: "
                             f"{', '.join(str(h.relative_to(root)) for h in hits)}; pass one as --root", root)
    return root


def _save_run(out: Path, run: SourceRun) -> None:
    """Keep a source's run in ``OUT/.work/<source>/source.json`` (what a later build needs to carry it)."""
    atomic_write_json(out / WORK_DIR / run.builder_cls.name / SOURCE_FILE,
                      {"source": run.builder_cls.name, "root": str(run.root.resolve()), "tasks": list(run.tasks),
                       "overrides": [[k, v] for k, v in run.overrides], "videos": run.videos,
                       "builder_version": builder_version(run.builder_cls)})


def _frozen(value: Any) -> Any:
    """JSON lists back to tuples (option values must be hashable, as the CLI makes them)."""
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def carried_runs(out: Path, names: Sequence[str], options: BuildOptions) -> list[SourceRun]:
    """The sources in ``OUT`` that this build does not name, to be carried along.

    Raises:
        InputError: ``OUT`` lists a source without its kept run (a build from before sources
            could be added one at a time), or one whose records this build's options make stale
            while its raw root is gone.
    """
    path = out / "manifest.json"
    if not path.is_file():
        return []
    try:
        previous = load_json(path)
    except InputError:
        return []  # an unreadable manifest is rewritten by the build
    others = sorted(set(previous.get("sources") or {}) - set(names)) if isinstance(previous, dict) else []
    runs = []
    for name in others:
        saved_path = out / WORK_DIR / name / SOURCE_FILE
        if not saved_path.is_file():
            raise InputError(f"this folder holds a build of source {name!r} without its {WORK_DIR}/{name}/"
                             f"{SOURCE_FILE}; it cannot be carried into this build ({sorted(names)}). Build the "
                             f"sources together (--source all, or list every source) or use another --out", out)
        saved = load_json(saved_path)
        cls = get_builder(name)
        run = SourceRun(cls, Path(saved["root"]), tuple(saved["tasks"]), videos=list(saved["videos"]),
                        overrides=tuple((k, _frozen(v)) for k, v in saved["overrides"]), carried=True)
        stale = [job.video_id for job in _jobs(run, options)]
        run.summaries.clear()
        if stale and not run.root.is_dir():
            raise InputError(f"source {name!r} in this folder has {len(stale)} video(s) without records for this "
                             f"build's options (another seed, generator options or code version, or a video that "
                             f"failed) and its raw root {run.root} is gone, so they cannot be built. Name it with "
                             f"its root in this build, or use another --out", out)
        runs.append(run)
    return runs


def _jobs(run: SourceRun, options: BuildOptions) -> list[VideoJob]:
    fp = fingerprint(run.builder_cls, run.root, run.tasks, options.gen, run.overrides)
    version = builder_version(run.builder_cls)
    jobs = []
    for vid in run.videos:
        _, marker = work_paths(options.out, run.builder_cls.name, vid)
        if marker.is_file():
            try:
                done = json.loads(marker.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, OSError):
                done = {}
            records_path, _ = work_paths(options.out, run.builder_cls.name, vid)
            if (done.get("fingerprint") == fp and records_path.is_file()
                    and (options.plan_only or done.get("frames_written"))):
                run.summaries[vid] = done
                continue
        jobs.append(VideoJob(run.builder_cls, str(run.root), options.seed, vid, run.tasks,
                             options.gen, str(options.out), options.plan_only, fp, version,
                             options.jpeg_quality, options.max_side, run.overrides))
    return jobs


def _handle(run: SourceRun, job: VideoJob, result: dict, options: BuildOptions,
            on_video_done: OnVideoDone | None) -> None:
    if "error" in result:
        failure = {"source": run.builder_cls.name, "video_id": job.video_id,
                   "error": result["error"], "error_type": result.get("error_type", "Error")}
        run.failures.append(failure)
        if not options.keep_going:
            raise (VideoError if failure["error_type"] == "VideoError" else InputError)(result["error"])
        log.warning("skipping %s/%s: %s", run.builder_cls.name, job.video_id, result["error"])
        return
    run.summaries[job.video_id] = result
    if on_video_done is not None:
        on_video_done(run.builder_cls.name, job.video_id, result)


def _unexpected(run: SourceRun, job: VideoJob, exc: BaseException, options: BuildOptions) -> None:
    """A bug or foreign exception in one video: fatal unless keep_going."""
    if not options.keep_going or not isinstance(exc, Exception):
        raise exc
    msg = f"{run.builder_cls.name}:{job.video_id}: {type(exc).__name__}: {exc}"
    log.warning("skipping %s\n%s", msg, "".join(traceback.format_exception(exc)[-3:]))
    run.failures.append({"source": run.builder_cls.name, "video_id": job.video_id, "error": msg,
                         "error_type": type(exc).__name__})


def _run_videos(runs: list[SourceRun], options: BuildOptions,
                on_video_done: OnVideoDone | None) -> None:
    """Run every unfinished video of every source in one pool (or one Ray job list)."""
    work = [(run, job) for run in runs for job in _jobs(run, options)]
    if not work:
        return
    workers = min(options.workers or os.cpu_count() or 1, len(work))
    if options.executor == "ray":
        _run_ray(work, options, workers, on_video_done)
    elif workers == 1:
        for run, job in work:
            try:
                result = process_video(job)
            except Exception as e:  # noqa: BLE001 - re-raised unless keep_going
                _unexpected(run, job, e, options)
                continue
            _handle(run, job, result, options, on_video_done)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(process_video, job): (run, job) for run, job in work}
            pending = set(futures)
            try:
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in sorted(done, key=lambda f: futures[f][1].video_id):
                        run, job = futures[fut]
                        try:
                            result = fut.result()
                        except Exception as e:  # noqa: BLE001
                            _unexpected(run, job, e, options)
                            continue
                        _handle(run, job, result, options, on_video_done)
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise


def _run_ray(work: list[tuple[SourceRun, VideoJob]], options: BuildOptions, workers: int,
             on_video_done: OnVideoDone | None) -> None:
    try:
        import ray
    except ImportError:
        raise MvbenchError("--executor ray needs Ray: pip install 'mvbench[ray]'") from None
    if not ray.is_initialized():
        ray.init(num_cpus=workers, include_dashboard=False, ignore_reinit_error=True,
                 log_to_driver=False)
    remote = ray.remote(process_video)
    refs = {remote.remote(job): (run, job) for run, job in work}
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                run, job = refs[ref]
                try:
                    result = ray.get(ref)
                except Exception as e:  # noqa: BLE001 - RayTaskError wraps the worker's exception
                    cause = getattr(e, "cause", None) or e
                    _unexpected(run, job, cause if isinstance(cause, Exception) else e, options)
                    continue
                _handle(run, job, result, options, on_video_done)
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise


def _assemble(runs: list[SourceRun], options: BuildOptions) -> dict[str, Any]:
    """Splits, validation, shards, manifest (see the module docstring)."""
    out = options.out
    all_records: list[Record] = []
    shards: list[str] = []
    sources_info: dict[str, Any] = {}
    coverage: dict[str, Any] = {}
    anomalies: dict[str, dict[str, list[str]]] = {}
    label_keys: dict[str, dict[str, dict]] = {}
    planning: dict[str, dict] = {}
    empty_tasks: dict[str, dict] = {}
    failures: list[dict] = []
    split_of, split_moves = _splits(runs, options)
    for run in runs:
        name = run.builder_cls.name
        splits = split_of[name]
        records: list[Record] = []
        for vid in sorted(run.summaries):
            split = splits[vid]
            for r in read_work_records(work_paths(out, name, vid)[0]):
                # Validated in the worker; only the split fields change here.
                r.split, r.train = split, split != "test"
                records.append(r)
        shards += _write_shards(out, name, records, options.shard_size)
        all_records += records
        built = sorted(run.summaries)
        sources_info[name] = {
            "data_source": run.builder_cls.data_source, "root": str(run.root), "tasks": list(run.tasks),
            "builder_version": builder_version(run.builder_cls), "videos_listed": len(run.videos),
            "builder_options": {k: v for k, v in run.overrides},
            "videos_built": len(built),
            "videos_per_split": _tally(splits[v] for v in built),
            "fixture": is_fixture_root(run.root),
        }
        inst: dict[str, int] = {}
        for s in run.summaries.values():
            for t, n in s.get("instances", {}).items():
                inst[t] = inst.get(t, 0) + n
        coverage[name] = {
            "instances": dict(sorted(inst.items())),
            "segments": sum(s.get("segments", 0) for s in run.summaries.values()),
            "segments_eligible": {t: sum(s.get("segments_eligible", {}).get(t, 0)
                                         for s in run.summaries.values())
                                  for t in ("TAG", "DVC") if t in run.tasks},
            "segments_covered": {t: sum(s.get("covered", {}).get(t, 0) for s in run.summaries.values())
                                 for t in ("TAG", "DVC") if t in run.tasks},
        }
        issues = {v: run.summaries[v]["issues"] for v in built if run.summaries[v].get("issues")}
        if issues:
            anomalies[name] = issues
        keys = {v: run.summaries[v]["label_keys"] for v in built if run.summaries[v].get("label_keys")}
        if keys:
            label_keys[name] = keys
        plan = _sum_plans(run.summaries[v].get("plan", {}) for v in built)
        without_media = [v for v in built if run.summaries[v].get("media") == "absent"]
        if without_media:
            plan["planned_without_media"] = without_media
        if plan:
            planning[name] = plan
        empty = _empty_tasks(run, inst)
        if empty:
            empty_tasks[name] = empty
        failures += run.failures
    source_of = {r.builder_cls.data_source: r.builder_cls.name for r in runs}
    gold = gold_check(all_records, source_of)
    digest, n_records, n_frames = content_hash(all_records)
    config = {"sources": [r.builder_cls.name for r in runs], "tasks": list(options.tasks or []),
              "seed": options.seed, "plan_only": options.plan_only, "keep_going": options.keep_going,
              "executor": options.executor, "workers": options.workers,
              "split_file": str(options.split_file) if options.split_file else None,
              "keep_val": options.keep_val, "shard_size": options.shard_size,
              "generators": dataclasses.asdict(options.gen), "jpeg_quality": options.jpeg_quality,
              "max_side": options.max_side}
    manifest = base_manifest("build", config)
    manifest.update({
        "sources": sources_info,
        "counts": count_records(all_records, source_of),
        "records": n_records,
        "coverage": coverage,
        "frames": {"count": n_frames, "root": FRAMES_DIR, "written": not options.plan_only},
        "shards": sorted(shards),
        "anomalies": anomalies,
        "gold_check": gold,
        "empty_tasks": empty_tasks,
        "planning": planning,
        "label_keys": label_keys,
        "failures": failures,
        "split_group_moves": split_moves,
        "content_hash": digest,
        # generated fixture trees, not real data: evaluations of it say nothing about a model
        "fixture": any(info["fixture"] for info in sources_info.values()),
    })
    write_manifest(out, manifest)
    return manifest


def _sum_plans(plans) -> dict[str, Any]:
    """Per-source totals of the per-video plan reports (``PlanReport.as_dict``)."""
    out: dict[str, Any] = {}
    for plan in plans:
        for part, counts in plan.items():
            if part == "empty":
                continue
            bucket = out.setdefault(part, {})
            for key, n in counts.items():
                bucket[key] = bucket.get(key, 0) + n
    return {part: dict(sorted(counts.items())) for part, counts in sorted(out.items())}


def _empty_tasks(run: SourceRun, instances: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Tasks the source declares (and this build asked for) that no video yielded, with reason and option."""
    out: dict[str, dict[str, Any]] = {}
    if not run.summaries:
        return out
    for task in run.tasks:
        if instances.get(task):
            continue
        reasons: dict[str, int] = {}
        for summary in run.summaries.values():
            code = summary.get("plan", {}).get("empty", {}).get(task, "too_short")
            reasons[code] = reasons.get(code, 0) + 1
        code = max(reasons, key=lambda c: (reasons[c], c))
        options = {**EMPTY_TASK_OPTIONS, **run.builder_cls.empty_task_options}
        out[task] = {"reason": code, "explanation": EMPTY_REASONS.get(code, code),
                     "videos_by_reason": dict(sorted(reasons.items())),
                     "option": options.get(f"{task}:{code}") or options.get(code, "")}
        log.warning("%s: no %s instance: %s; option: %s", run.builder_cls.name, task, out[task]["explanation"],
                    out[task]["option"])
    return out


def _splits(runs: list[SourceRun], options: BuildOptions
            ) -> tuple[dict[str, dict[str, str]], list[dict[str, str]]]:
    """Per-source splits (:func:`assign_splits`), then one split per cross-source group.

    Returns:
        ``{source: {video_id: split}}`` and the videos moved to match their group.
    """
    from mvbench.builders import builder_names

    flat: dict[tuple[str, str], str] = {}
    groups: dict[tuple[str, str], str | None] = {}
    fixed: set[tuple[str, str]] = set()
    for run in runs:
        name = run.builder_cls.name
        overrides = load_split_file(options.split_file, name) if options.split_file else {}
        official = {v: s.get("official_split") for v, s in run.summaries.items()}
        splits = assign_splits(run.videos, name, options.seed, official=official,
                               overrides=overrides, keep_val=options.keep_val)
        for vid, split in splits.items():
            flat[(name, vid)] = split
            groups[(name, vid)] = run.summaries.get(vid, {}).get("split_group")
            if vid in overrides:
                fixed.add((name, vid))
    known = set().union(*(get_builder(n).known_test_groups() for n in builder_names()))
    flat, moves = unify_groups(flat, groups, known, fixed)
    out: dict[str, dict[str, str]] = {run.builder_cls.name: {} for run in runs}
    for (name, vid), split in flat.items():
        out[name][vid] = split
    return out, moves


def _tally(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def _write_shards(out: Path, source: str, records: list[Record], shard_size: int) -> list[str]:
    """Write ``OUT/<source>/<split>-NNNNN.parquet`` (records sorted by uid); drop stale shards."""
    folder = out / source
    written: list[str] = []
    by_split: dict[str, list[Record]] = {}
    for r in records:
        by_split.setdefault(r.split or "train", []).append(r)
    for split, recs in sorted(by_split.items()):
        recs.sort(key=lambda r: r.uid)
        for n, start in enumerate(range(0, len(recs), shard_size)):
            path = folder / f"{split}-{n:05d}.parquet"
            write_parquet(recs[start:start + shard_size], path)
            written.append(path.relative_to(out).as_posix())
    if folder.is_dir():
        for stale in folder.glob("*.parquet"):
            if stale.relative_to(out).as_posix() not in written:
                stale.unlink()
    return written


def detect_sources(root: Path) -> list[tuple[str, Path]]:
    """For ``--source all``: subfolders of ``root`` named after a source whose builder detects them.

    A subfolder matches a source by its builder name or data_source (case-insensitive); when
    ``detect`` rejects it, its own subfolders are tried (the fixture trees of
    :mod:`mvbench.builders.fixtures` and some downloads put the tree one level down, e.g.
    ``cholect50/CholecT50``).
    """
    from mvbench.builders import builder_names

    if not root.is_dir():
        raise InputError("raw root not found (expected a folder)", root)
    found = []
    subdirs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    for name in builder_names():
        cls = get_builder(name)
        for alias in (name.lower(), cls.data_source.lower()):
            sub = subdirs.get(alias)
            if sub is None:
                continue
            candidates = [sub, *sorted(p for p in sub.iterdir() if p.is_dir())]
            hit = next((c for c in candidates if cls.detect(c)), None)
            if hit is not None:
                found.append((name, hit))
                break
    return found
