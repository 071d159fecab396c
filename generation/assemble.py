"""From journalled answers to the generated dataset: pair outcomes, records, rejects, manifest.

Every draft of the dataset ends in one state:

- ``accepted``: both answers are journalled and pass the rule checks, agreement and the optional
  validator: the draft is replaced by a ``*_gpt`` and a ``*_gemini`` record (uid
  ``<data_source>/<qa_type>/<the draft's digest>``, ``generator`` = the writer's model,
  ``validation`` = the scores and ``generated_from``);
- ``rejected``: both answers are there but a check failed: a row of ``rejects.parquet`` with the
  reasons, and no record;
- ``failed``: a call failed after its retries (logged; the next run retries it) and ``pending``:
  not answered yet (budget, interrupted): the draft stays as it was.

Drafts in this run's scope are judged on this run's answers. A draft outside the scope, or one
this run leaves failed or pending, keeps what earlier runs made of it (:class:`~.plan.Previous`:
its generated records or its reject row): a rerun with another scope or other options never
turns accepted records back into drafts. A draft outside the scope that earlier runs left nothing
for, but whose answers are all journalled under this run's call ids (batch jobs of an earlier,
wider run), is judged like one in scope.

Writing is crash-safe and idempotent: the drafts' snapshot (``.generation/templates.parquet``) is
written once, first; then shards under new names (``<split>-NNNNN-<content digest>.parquet``,
atomic each; a shard whose content did not change keeps its name), ``rejects.parquet``, then
``manifest.json``, and only then the shards the new manifest no longer lists are deleted. A crash
at any point leaves the old manifest with all its shards, or the new one with all of its. The
output depends only on the journal, the options and what earlier runs kept, so an interrupted
and resumed run writes exactly what an uninterrupted one does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from mvbench import prompts
from mvbench.builders.annotations import ANNOTATIONS_DIR
from mvbench.builders.manifest import content_hash, count_records, write_manifest
from mvbench.dataset_io import atomic_write_table, write_parquet
from mvbench.records import Record
from mvbench.redact import redact
from mvbench.tasks import qa_type_for

from mvbench.generation.config import GenerateConfig, Writer
from mvbench.generation.journal import Journal
from mvbench.generation.plan import (GENERATED_FROM, REJECTS_FILE, STATE_DIR, TEMPLATES_FILE, Instance, Plan,
                                     Planner)
from mvbench.generation.prompting import CONTEXT_FILE, VALIDATOR_FILE, prompt_file
from mvbench.generation.validate import Checked, agreement, check_answer, parse_validator

FRAMES_DIR = "frames"
REJECTS_SCHEMA = pa.schema([
    ("uid", pa.string()), ("data_source", pa.string()), ("task", pa.string()), ("split", pa.string()),
    ("source_video", pa.string()), ("question", pa.string()), ("gpt_model", pa.string()),
    ("gpt_answer", pa.string()), ("gemini_model", pa.string()), ("gemini_answer", pa.string()),
    ("agreement", pa.float64()), ("reasons", pa.list_(pa.string())), ("scores", pa.string()),
])


@dataclass
class PairOutcome:
    """What became of one draft (see the module docstring)."""

    status: str
    checks: dict[str, Checked] = field(default_factory=dict)
    agreement: float | None = None
    reasons: list[str] = field(default_factory=list)
    validator: dict[str, int] | None = None
    errors: dict[str, str] = field(default_factory=dict)


def validator_call_id(inst: Instance, cfg: GenerateConfig) -> str:
    """The journal key of the validator's verdict on one pair: its model, its prompt file's content
    and the two answers' call ids."""
    spec = prompts.load(VALIDATOR_FILE)
    blob = json.dumps({"validator": cfg.validator_model, "system": spec["system"], "user": spec["user"],
                       "calls": sorted(c.call_id for c in inst.calls.values())}, sort_keys=True, allow_nan=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def rule_outcome(inst: Instance, journal: Journal, cfg: GenerateConfig) -> PairOutcome:
    """The rule checks and agreement of one draft's answers, as far as they are journalled (no validator)."""
    answers = {v: journal.get(c.call_id) for v, c in inst.calls.items()}
    if any(a is None for a in answers.values()):
        errors = {v: journal.failures.entries[c.call_id]["error"] for v, c in inst.calls.items()
                  if answers[v] is None and c.call_id in journal.failures.entries}
        return PairOutcome("failed" if errors else "pending", errors=errors)
    out = PairOutcome("accepted")
    for variant, entry in answers.items():
        c = check_answer(inst.enrichment, inst.template.struc_info, variant, entry["text"], cfg.min_mention_recall,
                         cfg.dvc_min_iou)
        out.checks[variant] = c
        out.reasons += [f"{variant}: {r}" for r in c.reasons]
    out.agreement = round(agreement(out.checks["gpt"], out.checks["gemini"]), 4)
    if out.agreement < cfg.agreement_threshold:
        out.reasons.append(f"agreement: MiniLM cosine {out.agreement:.3f} < {cfg.agreement_threshold}")
    if out.reasons:
        out.status = "rejected"
    return out


def evaluate_pair(inst: Instance, journal: Journal, cfg: GenerateConfig,
                  rules: PairOutcome | None = None) -> PairOutcome:
    """The outcome of one draft: :func:`rule_outcome` (or ``rules``, already computed), then the
    optional validator's verdict on a pair that passed them."""
    out = copy.copy(rules) if rules is not None else rule_outcome(inst, journal, cfg)
    if out.status != "accepted" or not cfg.validator_model:
        return out
    vid = validator_call_id(inst, cfg)
    verdict = journal.get(vid)
    if verdict is None:
        return PairOutcome("failed" if vid in journal.failures.entries else "pending", checks=out.checks,
                           agreement=out.agreement)
    scores = parse_validator(verdict["text"])
    out.reasons = list(out.reasons)
    out.validator = {"gpt": scores.get("A", 0), "gemini": scores.get("B", 0)}
    for variant, score in out.validator.items():
        if score < cfg.validator_min_score:
            out.reasons.append(f"{variant}: validator: score {score} < {cfg.validator_min_score}")
    if out.reasons:
        out.status = "rejected"
    return out


def _uid(template: Record, qa_type: str) -> str:
    parts = template.uid.split("/")
    if len(parts) == 3:
        return f"{parts[0]}/{qa_type}/{parts[2]}"
    return f"{template.uid}#{qa_type}"


def generated_records(inst: Instance, outcome: PairOutcome, writers: list[Writer],
                      versions: dict[str, str]) -> list[Record]:
    """The ``*_gpt`` and ``*_gemini`` records of an accepted pair."""
    t = inst.template
    uids = {w.variant: _uid(t, qa_type_for(t.task, w.model, w.variant)) for w in writers}
    out = []
    for w in writers:
        c = outcome.checks[w.variant]
        other = next(v for v in uids if v != w.variant)
        r = copy.deepcopy(t)
        r.qa_type = qa_type_for(t.task, w.model, w.variant)
        r.uid = uids[w.variant]
        r.generator = w.model
        r.conversations = [dict(t.conversations[0]), {"from": "gpt", "value": c.answer}]
        r.struc_info = c.struc
        r.validation = {GENERATED_FROM: t.uid, "pair": uids[other], "agreement": outcome.agreement,
                        "checks": c.scores,
                        "validator": outcome.validator.get(w.variant) if outcome.validator else None,
                        "prompts": {f: v for f, v in versions.items()
                                    if f in (prompt_file(t.task, w.variant), CONTEXT_FILE)}}
        r.validate()
        out.append(r)
    return out


def reject_row(inst: Instance, outcome: PairOutcome, journal: Journal) -> dict[str, Any]:
    """One row of ``rejects.parquet``."""
    t = inst.template
    text = {v: (journal.get(c.call_id) or {}).get("text") for v, c in inst.calls.items()}
    return {"uid": t.uid, "data_source": t.data_source, "task": t.task, "split": t.split,
            "source_video": t.source_video, "question": t.question,
            "gpt_model": inst.calls["gpt"].writer.model, "gpt_answer": text.get("gpt"),
            "gemini_model": inst.calls["gemini"].writer.model, "gemini_answer": text.get("gemini"),
            "agreement": outcome.agreement, "reasons": [redact(r) for r in outcome.reasons],
            "scores": json.dumps({v: c.scores for v, c in outcome.checks.items()} |
                                 {"validator": outcome.validator}, sort_keys=True, allow_nan=False)}


def _shard_name(split: str, n: int, records: list[Record]) -> str:
    digest = hashlib.sha256("\n".join(json.dumps(r.to_row(), sort_keys=True, default=str, allow_nan=False)
                                      for r in records).encode()).hexdigest()[:12]
    return f"{split}-{n:05d}-{digest}.parquet"


def _write_shards(out_dir: Path, records: list[Record], source_of: dict[str, str], shard_size: int) -> list[str]:
    """Write every shard under a name of its content (see the module docstring); delete nothing."""
    by_group: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        by_group[(source_of.get(r.data_source, r.data_source), r.split or "train")].append(r)
    written: list[str] = []
    for (source, split), recs in sorted(by_group.items()):
        recs.sort(key=lambda r: r.uid)
        for n, start in enumerate(range(0, len(recs), shard_size)):
            part = recs[start:start + shard_size]
            path = out_dir / source / _shard_name(split, n, part)
            if not path.is_file():  # same name, same content: already there
                write_parquet(part, path)
            written.append(path.relative_to(out_dir).as_posix())
    return written


def _drop_stale_shards(out_dir: Path, listed: list[str], old: list[str]) -> None:
    """After the new manifest is written: delete the old manifest's shards it no longer lists, and
    shards a crashed run left unlisted in the same source folders."""
    keep = set(listed)
    folders = {Path(s).parent for s in [*listed, *old]} - {Path(".")}
    candidates = {s for s in old if (out_dir / s).is_file()}
    for folder in folders:
        candidates |= {p.relative_to(out_dir).as_posix() for p in (out_dir / folder).glob("*.parquet")}
    for rel in sorted(candidates - keep):
        (out_dir / rel).unlink(missing_ok=True)


def _link(src: Path, dst: Path) -> None:
    if src.is_dir() and not dst.exists() and src.resolve() != dst.resolve():
        os.symlink(src.resolve(), dst, target_is_directory=True)


def _answered_elsewhere(plan: Plan, journal: Journal) -> set[str]:
    """Drafts outside the scope with an answer of every writer slot in the journal (a batch job of an
    earlier, wider run may have brought them): worth enriching to see whether they are this run's calls."""
    in_scope = {inst.template.uid for inst in plan.instances}
    variants: dict[str, set[str]] = defaultdict(set)
    for e in journal.calls.entries.values():
        if e.get("uid") and e["uid"] not in in_scope:
            variants[e["uid"]].add(e.get("variant"))
    return {uid for uid, v in variants.items() if {"gpt", "gemini"} <= v}


def assemble(plan: Plan, journal: Journal, cfg: GenerateConfig, generation_info: dict[str, Any],
             rules: dict[str, PairOutcome] | None = None,
             planner: Planner | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write the generated dataset (see the module docstring).

    Args:
        plan: the run's plan (with what earlier runs left).
        journal: the answers.
        cfg: the options.
        generation_info: accounting and run facts for the manifest's ``generation`` section.
        rules: :func:`rule_outcome` of drafts already judged in this run (by draft uid), not redone.
        planner: enriches drafts outside the scope that earlier runs left nothing for but whose
            answers are all in the journal under this run's call ids (then judged like drafts in scope).

    Returns:
        ``(manifest, counts)``: the written manifest and ``{source: {task: {status: n}}}``.
    """
    out_dir = cfg.out
    out_dir.mkdir(parents=True, exist_ok=True)
    snapshot = out_dir / STATE_DIR / TEMPLATES_FILE
    if not snapshot.is_file():  # first, so that shards rewritten in place never lose the drafts
        write_parquet(plan.templates, snapshot)
    rules = rules or {}
    in_scope = {inst.template.uid: inst for inst in plan.instances}
    failed_uids = {e["uid"] for k, e in journal.failures.entries.items() if not journal.done(k)}
    records = list(plan.base_records)
    rejects: list[dict[str, Any]] = []
    counts: dict[str, dict[str, dict[str, int]]] = {}
    answered = _answered_elsewhere(plan, journal) if planner is not None else set()
    for template in sorted(plan.templates, key=lambda r: r.uid):
        inst = in_scope.get(template.uid)
        if inst is None and template.uid in answered and template.uid not in plan.previous.generated \
                and template.uid not in plan.previous.rejects:
            inst = planner.instance(template)
        outcome = evaluate_pair(inst, journal, cfg, rules.get(template.uid)) if inst is not None else None
        status = outcome.status if outcome is not None else None
        if status == "accepted":
            records += generated_records(inst, outcome, cfg.writers, plan.prompt_versions)
        elif status == "rejected":
            rejects.append(reject_row(inst, outcome, journal))
        elif template.uid in plan.previous.generated:  # kept from an earlier run (see the module docstring)
            records += plan.previous.generated[template.uid]
            status = "accepted"
        elif template.uid in plan.previous.rejects:
            rejects.append(plan.previous.rejects[template.uid])
            status = "rejected"
        else:
            records.append(template)
            status = status or ("failed" if template.uid in failed_uids else "pending")
        source = plan.source_of.get(template.data_source, template.data_source)
        c = counts.setdefault(source, {}).setdefault(template.task, {"accepted": 0, "rejected": 0,
                                                                     "failed": 0, "pending": 0})
        c[status] += 1
    shard_size = int((plan.manifest.get("config") or {}).get("shard_size") or 1000)
    shards = _write_shards(out_dir, records, plan.source_of, shard_size)
    rejects.sort(key=lambda r: r["uid"])
    atomic_write_table(pa.Table.from_pylist(rejects, schema=REJECTS_SCHEMA), out_dir / REJECTS_FILE)
    if out_dir.resolve() != cfg.dataset.resolve():
        _link(cfg.dataset / FRAMES_DIR, out_dir / FRAMES_DIR)
        _link(cfg.dataset / ANNOTATIONS_DIR, out_dir / ANNOTATIONS_DIR)
    digest, n_records, n_frames = content_hash(records)
    manifest = copy.deepcopy(plan.manifest)
    manifest.update({
        "counts": count_records(records, plan.source_of),
        "records": n_records,
        "shards": sorted(shards),
        "content_hash": digest,
        "generation": {**generation_info, "counts": counts, "rejects": REJECTS_FILE,
                       "rejected": len(rejects)},
    })
    manifest.setdefault("frames", {})["count"] = n_frames
    if out_dir.resolve() != cfg.dataset.resolve():
        manifest["frames"]["frames_from"] = str((cfg.dataset / FRAMES_DIR).resolve())
        manifest["generation"]["input"] = str(cfg.dataset.resolve())
    write_manifest(out_dir, manifest)
    _drop_stale_shards(out_dir, manifest["shards"], plan.previous.shards)
    return manifest, counts
