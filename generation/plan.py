"""What a run has to do: the dataset's caption drafts in scope, their enrichment and their calls.

Templates: the DVC/VS/RC records with ``generator == "template"``. A dataset generated in place
keeps a snapshot of them in ``.generation/templates.parquet`` (its shards then hold the generated
records instead), so a later run, a wider ``--limit`` or a rerun after a crash always starts from
the same drafts. That snapshot is the only copy of the drafts of pairs already generated: a
dataset whose shards hold generated records but whose snapshot is gone is refused, not rewritten.
Generated records carry ``validation.generated_from`` (their draft's uid), so they are told apart
from imported official records, which are kept as they are.

What earlier runs left in the output folder (:class:`Previous`: its generated records and reject
rows, per draft) is kept for every draft this run does not settle: drafts outside its scope, and
drafts whose answers under this run's options are not all there yet (budget, failures).

A call is one writer answering one instance. Its identity (:func:`call_id`) covers the instance
(uid and builder version), the writer (slot, provider, model), the request as rendered (system
and user text, and which frames with which boxes at which size) and that writer's own
output-affecting options (:meth:`~.config.GenerateConfig.writer_params`), but not the endpoint;
it keys the journal and the batch ``custom_id``. Editing a prompt file or the enrichment changes
it, whatever the file's declared ``version``.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from mvbench.builders.annotations import load_annotation
from mvbench.builders.base import VideoAnnotation
from mvbench.builders.manifest import MANIFEST_NAME
from mvbench.dataset_io import load_json, read_parquet
from mvbench.errors import InputError
from mvbench.records import Record

from mvbench.generation.config import CAPTION_TASKS, GenerateConfig, Writer
from mvbench.generation.enrich import Enrichment, enrich, gemini_image_tokens, openai_image_tokens
from mvbench.generation.prompting import (expected_output_tokens, prompt_files, prompt_versions,
                                          render)

STATE_DIR = ".generation"
TEMPLATES_FILE = "templates.parquet"
REJECTS_FILE = "rejects.parquet"
GENERATED_FROM = "generated_from"
CALL_SCHEMA = 2


def text_tokens(text: str) -> int:
    """An estimate of a text's tokens: one per 4 characters (no tokenizer is loaded for estimates)."""
    return (len(text) + 3) // 4


@dataclass
class Call:
    """One writer answering one instance, with its estimated size."""

    call_id: str
    uid: str
    writer: Writer
    images: int
    est_input_tokens: int
    est_output_tokens: int


@dataclass
class Instance:
    """One caption draft in scope: its record, source, enrichment and the two calls."""

    template: Record
    source: str
    enrichment: Enrichment
    calls: dict[str, Call] = field(default_factory=dict)  # variant -> call


@dataclass
class Previous:
    """What earlier runs left in the output folder, per draft uid.

    Args:
        generated: the ``*_gpt`` / ``*_gemini`` records made from each draft.
        rejects: the ``rejects.parquet`` row of each rejected draft.
        shards: the shards the output folder's manifest lists (replaced by the next assemble).
    """

    generated: dict[str, list[Record]] = field(default_factory=dict)
    rejects: dict[str, dict[str, Any]] = field(default_factory=dict)
    shards: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """Everything in scope, plus the dataset it came from and what earlier runs left."""

    dataset: Path
    manifest: dict[str, Any]
    base_records: list[Record]
    templates: list[Record]
    instances: list[Instance]
    prompt_versions: dict[str, str]
    source_of: dict[str, str]
    previous: Previous = field(default_factory=Previous)

    @property
    def calls(self) -> list[Call]:
        return [c for inst in self.instances for c in inst.calls.values()]


def request_digest(system: str, user: str, enr: Enrichment) -> str:
    """sha256 of a request as rendered: its text and its frames (which ones, boxes drawn, size sent)."""
    frames = [[f.position, f.t_rel, list(f.size), [[b.label, list(b.box), b.target] for b in f.boxes]]
              for f in enr.frames]
    blob = json.dumps({"system": system, "user": user, "frames": frames, "source_size": enr.source_size},
                      sort_keys=True, allow_nan=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def call_id(template: Record, writer: Writer, request: str, params: dict) -> str:
    """The identity of one call (see the module docstring): 64 hex digits, a valid batch ``custom_id``.

    Args:
        template: the draft.
        writer: the writer slot.
        request: :func:`request_digest` of the rendered request.
        params: the writer's output-affecting options (``cfg.writer_params(writer.provider)``).
    """
    blob = json.dumps({"schema": CALL_SCHEMA, "uid": template.uid, "builder": template.builder_version,
                       "variant": writer.variant, "provider": writer.provider, "model": writer.model,
                       "request": request, "params": params}, sort_keys=True, allow_nan=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def is_generated(record: Record) -> bool:
    """Whether ``mvbench generate`` wrote this record (it names its draft in ``validation``)."""
    return isinstance(record.validation, dict) and GENERATED_FROM in record.validation


def read_dataset(dataset: Path) -> tuple[dict[str, Any], list[Record], list[Record], list[Record]]:
    """``(manifest, records kept as they are, caption drafts, generated records)`` of a built dataset.

    Raises:
        InputError: not a built dataset (no manifest or no shards); generated records without the
            drafts snapshot they were made from.
    """
    if not (dataset / MANIFEST_NAME).is_file():
        raise InputError("not a built dataset (no manifest.json): run mvbench build first", dataset)
    manifest = load_json(dataset / MANIFEST_NAME)
    shards = [dataset / s for s in manifest.get("shards") or []]
    if not shards:
        raise InputError("the manifest lists no shards", dataset / MANIFEST_NAME)
    records: list[Record] = []
    for shard in shards:
        records += read_parquet(shard)
    generated = [r for r in records if r.task in CAPTION_TASKS and is_generated(r)]
    snapshot = dataset / STATE_DIR / TEMPLATES_FILE
    if snapshot.is_file():
        templates = read_parquet(snapshot)
    elif generated:
        raise InputError(f"this dataset holds {len(generated)} generated records but not the drafts snapshot "
                         f"{STATE_DIR}/{TEMPLATES_FILE} they were made from (the only copy of those drafts): "
                         f"restore that file (or the whole {STATE_DIR} folder) from a copy, or generate from the "
                         "built dataset instead; nothing was changed", snapshot)
    else:
        templates = [r for r in records if r.task in CAPTION_TASKS and r.generator == "template"]
    base = [r for r in records if not (r.task in CAPTION_TASKS and (r.generator == "template" or is_generated(r)))]
    return manifest, base, templates, generated


def read_previous(cfg: GenerateConfig, dataset_generated: list[Record]) -> Previous:
    """What earlier runs into ``cfg.out`` left there (see :class:`Previous`).

    Args:
        cfg: the run's options.
        dataset_generated: generated records of the input dataset (those of ``cfg.out`` when the
            run is in place).
    """
    out = cfg.out
    prev = Previous()
    in_place = out.resolve() == cfg.dataset.resolve()
    if in_place:
        generated = dataset_generated
        prev.shards = list(load_json(out / MANIFEST_NAME).get("shards") or [])
    elif (out / MANIFEST_NAME).is_file():
        prev.shards = list(load_json(out / MANIFEST_NAME).get("shards") or [])
        generated = [r for s in prev.shards if (out / s).is_file() for r in read_parquet(out / s) if is_generated(r)]
    else:
        generated = []
    for r in generated:
        prev.generated.setdefault(r.validation[GENERATED_FROM], []).append(r)
    rejects = out / REJECTS_FILE
    if rejects.is_file():
        for row in pq.read_table(rejects).to_pylist():
            prev.rejects[row["uid"]] = row
    return prev


def _select(templates: list[Record], source_of: dict[str, str], cfg: GenerateConfig) -> list[tuple[Record, str]]:
    wanted_sources = None
    if cfg.sources:
        wanted_sources = {s.lower() for s in cfg.sources}
    chosen: list[tuple[Record, str]] = []
    per_group: dict[tuple[str, str], int] = defaultdict(int)
    for r in sorted(templates, key=lambda r: (r.data_source, r.task, r.uid)):
        source = source_of.get(r.data_source, r.data_source)
        if wanted_sources is not None and source.lower() not in wanted_sources \
                and r.data_source.lower() not in wanted_sources:
            continue
        if cfg.tasks is not None and r.task not in cfg.tasks:
            continue
        group = (source, r.task)
        if cfg.limit is not None and per_group[group] >= cfg.limit:
            continue
        per_group[group] += 1
        chosen.append((r, source))
    return chosen


class Planner:
    """Turns drafts into :class:`Instance` objects (annotations read once per video).

    Args:
        cfg: the run's options.
        manifest: the dataset's manifest (sources, roots, builder options, seed).
    """

    def __init__(self, cfg: GenerateConfig, manifest: dict[str, Any]):
        self.cfg = cfg
        self.manifest = manifest
        self.sources_info = manifest.get("sources") or {}
        self.source_of = {info.get("data_source", name): name for name, info in self.sources_info.items()}
        self.versions = prompt_versions(prompt_files(list(CAPTION_TASKS), [w.variant for w in cfg.writers]))
        self.params = {w.variant: cfg.writer_params(w.provider) for w in cfg.writers}
        self._annotations: dict[tuple[str, str], VideoAnnotation] = {}

    def source(self, record: Record) -> str:
        """The builder name of a record's source."""
        return self.source_of.get(record.data_source, record.data_source)

    def annotation(self, source: str, video_id: str) -> VideoAnnotation:
        key = (source, video_id)
        if key not in self._annotations:
            info = self.sources_info.get(source, {})
            root = self.cfg.raw_roots.get(source) or info.get("root")
            self._annotations[key] = load_annotation(
                self.cfg.dataset, source, video_id, root=root, builder_options=info.get("builder_options") or {},
                seed=int((self.manifest.get("config") or {}).get("seed") or 0))
        return self._annotations[key]

    def instance(self, record: Record) -> Instance:
        """The enriched instance of one draft, with its two calls sized."""
        cfg = self.cfg
        source = self.source(record)
        enr = enrich(record, self.annotation(source, record.source_video or ""), cfg.dataset,
                     cfg.frames_per_call, cfg.max_side)
        inst = Instance(record, source, enr)
        for writer in cfg.writers:
            system, user = render(enr, writer.variant)
            cid = call_id(record, writer, request_digest(system, user, enr), self.params[writer.variant])
            if writer.provider == "openai":
                img = sum(openai_image_tokens(*f.size, cfg.image_detail) for f in enr.frames)
            else:
                img = sum(gemini_image_tokens(*f.size) for f in enr.frames)
            est_in = text_tokens(system) + text_tokens(user) + 8 * len(enr.frames) + img
            inst.calls[writer.variant] = Call(cid, record.uid, writer, len(enr.frames), est_in,
                                              expected_output_tokens(enr, writer.variant))
        return inst


def make_plan(cfg: GenerateConfig) -> tuple[Plan, Planner]:
    """Read the dataset, pick the drafts in scope, enrich them and size their calls.

    Raises:
        InputError: not a built dataset, an unknown ``--sources`` name, a missing annotation.
    """
    manifest, base, templates, generated = read_dataset(cfg.dataset)
    planner = Planner(cfg, manifest)
    source_of = planner.source_of
    if cfg.sources:
        known = {s.lower() for s in source_of} | {s.lower() for s in source_of.values()}
        unknown = [s for s in cfg.sources if s.lower() not in known]
        if unknown:
            raise InputError(f"--sources {unknown} not in this dataset (it holds {sorted(source_of.values())})",
                             cfg.dataset)
    instances = [planner.instance(record) for record, _ in _select(templates, source_of, cfg)]
    drafts = {t.uid for t in templates}
    base += [r for r in generated if r.validation[GENERATED_FROM] not in drafts]  # not ours to replace
    plan = Plan(cfg.dataset, manifest, base, templates, instances, planner.versions, source_of,
                read_previous(cfg, generated))
    return plan, planner
