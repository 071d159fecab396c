"""Built splits (or the official JSON) as training examples with their frames.

Records are loaded and selected exactly as ``mvbench eval`` loads them
(:func:`mvbench.eval.data.load_eval_data`: a built dataset folder with frames relative to it, or
an official JSON with ``frames_root``), and each example's model inputs are those of
``mvbench eval``'s request for the same record (:func:`mvbench.eval.requests.build_request`, then
:mod:`mvbench.qwen_inputs`): zero-shot question, frames, fps, region-captioning box.

A dataset row holds what TRL and the reward functions need and nothing heavy:

- ``prompt``: the chat messages (:func:`mvbench.qwen_inputs.chat_messages`, one video part);
- ``uid``, ``qa_type``, ``data_source``, ``task``: the sample (rewards dispatch on these per sample);
- ``gt``: the ground-truth side of the merged record as JSON (what ``Task.reward`` scores against);
- ``answer``: the reference answer (SFT's target).

Frames are loaded when a batch is built (:class:`SampleInputs`), never stored in the dataset.
"""

from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvbench import qwen_inputs
from mvbench.errors import InputError
from mvbench.eval.data import FrameResolver, load_eval_data
from mvbench.eval.requests import build_request
from mvbench.eval.score import merged_record
from mvbench.inference import GenerationParams
from mvbench.records import Record, canonical_json
from mvbench.tasks import TASKS

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def ground_truth_of(record: Record) -> dict:
    """The ground-truth side of a record's merged form (what ``Task.reward`` scores against)."""
    gt = merged_record(record, "")
    gt.pop("answer")
    gt["uid"] = record.uid
    return gt


def task_contexts(records: list[Record]) -> dict[str, Any]:
    """Per task, ``Task.build_context`` over these records' ground truth (NAP's class lists): what
    the rewards of training and of ``mvbench reward-stats`` are computed with."""
    gts = [ground_truth_of(r) for r in records]
    out = {}
    for name, task in TASKS.items():
        own = [g for g in gts if task.owns(g)]
        if own:
            context = task.build_context(own)
            if context is not None:
                out[name] = context
    return out


@dataclass
class TrainingData:
    """Examples of one stage and where they came from.

    Attributes:
        rows: dataset rows (see the module docstring), one per record.
        records: the selected records, in row order.
        inputs: loads each row's frames and request.
        origin / kind: what was passed and its kind (``built``, ``official``).
        dataset_hash: sha256 over the selected records (official fields), for provenance.
        balanced: how the task-balanced subset was taken (None: all records used).
        counts: records per ``data_source/task``.
    """

    rows: list[dict]
    records: list[Record]
    inputs: "SampleInputs"
    origin: str
    kind: str
    dataset_hash: str
    balanced: dict | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def dataset(self):
        """The rows as a ``datasets.Dataset``."""
        from datasets import Dataset

        return Dataset.from_list(self.rows)

    def contexts(self) -> dict[str, Any]:
        """:func:`task_contexts` of these records."""
        return task_contexts(self.records)

    def provenance(self) -> dict:
        """What the run trained on."""
        return {"origin": self.origin, "kind": self.kind, "sha256": self.dataset_hash, "records": len(self.records),
                "balanced": self.balanced, "counts": self.counts}


class SampleInputs:
    """What the model sees for each sample, loaded on demand: the eval request and its frames.

    Args:
        records: the samples.
        base_dir / frames_root: where their frames are (as ``mvbench eval`` resolves them).
        params: pixel budget and video timing (the official defaults unless configured).
        workers: threads decoding frames.
    """

    def __init__(self, records: list[Record], base_dir: Path, frames_root: Path | None, params: GenerationParams,
                 workers: int = 4):
        self.records = {r.uid: r for r in records}
        self.resolver = FrameResolver(Path(base_dir), Path(frames_root) if frames_root else None)
        self.params = params
        self.workers = workers

    def request(self, uid: str):
        """``mvbench eval``'s request for the sample (zero-shot)."""
        try:
            record = self.records[uid]
        except KeyError:
            raise InputError("sample not in the training data", record=uid) from None
        return build_request(record, self.resolver, self.params)

    def load(self, uid: str) -> "LoadedSample":
        """The sample's frames, resized and RC-boxed as ``mvbench eval`` feeds them, and its own fps
        (the video timing maps it to positions); the request is built once."""
        req = self.request(uid)
        frames = qwen_inputs.load_frames(req.frames, min_pixels=self.params.min_pixels,
                                         max_pixels=self.params.max_pixels, rc_frame=req.rc_frame,
                                         rc_box=req.rc_box, uid=uid)
        return LoadedSample(frames, float(req.fps))

    def load_many(self, uids: list[str]) -> dict[str, "LoadedSample"]:
        """:meth:`load` of several samples (each unique uid decoded once), in parallel threads."""
        unique = list(dict.fromkeys(uids))
        if len(unique) == 1 or self.workers <= 1:
            return {u: self.load(u) for u in unique}
        with ThreadPoolExecutor(max_workers=min(self.workers, len(unique))) as pool:
            return dict(zip(unique, pool.map(self.load, unique)))


@dataclass(frozen=True)
class LoadedSample:
    """A sample's frames (resized, RC-boxed) and its record's fps."""

    frames: list
    fps: float


def example_row(record: Record) -> dict:
    """The dataset row of one record."""
    return {"prompt": qwen_inputs.chat_messages(record.question, frames_as="video"),
            "uid": record.uid, "qa_type": record.qa_type, "data_source": record.data_source, "task": record.task,
            "gt": json.dumps(ground_truth_of(record), ensure_ascii=False, sort_keys=True, allow_nan=False),
            "answer": record.answer or ""}


def load_training_data(data: str | Path, *, stage: str, params: GenerationParams, split: str = "train",
                       frames_root: str | Path | None = None, tasks: list[str] | None = None,
                       sources: list[str] | None = None, limit: int | None = None,
                       balance_cap: int | None = None, seed: int = 0) -> TrainingData:
    """Select a stage's records and make its examples.

    Args:
        data: a built dataset folder or an official JSON file.
        stage: ``sft`` (records with a reference answer) or ``grpo`` (records with ground truth
            of the requested tasks).
        params: the video inputs.
        split / frames_root / tasks / sources / limit: as ``mvbench eval``.
        balance_cap: keep at most this many records per (data_source, task) with ``mvbench
            balance``'s seeded draw, unless ``data`` already is a balanced build.
        seed: seeds the balanced draw.

    Raises:
        InputError: nothing left to train on, or a problem with the data (naming it).
    """
    loaded = load_eval_data(data, frames_root=frames_root, split=split, tasks=tasks, sources=sources, limit=limit)
    records = loaded.records
    if stage == "sft":
        records = [r for r in records if r.answer]
    else:
        records = [r for r in records if r.has_struc_info or r.answer]
    if not records:
        raise InputError(f"no {stage.upper()} examples: the selected records have no answers", path=data)
    balanced = None
    if balance_cap is not None:
        manifest = Path(data) / MANIFEST
        kind = json.loads(manifest.read_text()).get("kind") if manifest.is_file() else None
        if kind == "balance":
            balanced = {"by": "mvbench balance", "manifest": str(manifest)}
        else:
            from mvbench.builders.balance import select_balanced

            by_source: dict[str, list[Record]] = {}
            for r in records:
                by_source.setdefault(r.data_source, []).append(r)
            kept = {r.uid for recs in by_source.values() for r in select_balanced(recs, balance_cap, seed)}
            records = [r for r in records if r.uid in kept]
            balanced = {"by": "training", "cap": balance_cap, "seed": seed}
    counts: dict[str, int] = {}
    for r in records:
        counts[f"{r.data_source}/{r.task}"] = counts.get(f"{r.data_source}/{r.task}", 0) + 1
    digest = hashlib.sha256(canonical_json([r.to_official() for r in records]).encode()).hexdigest()
    inputs = SampleInputs(records, loaded.base_dir, loaded.frames_root, params)
    return TrainingData([example_row(r) for r in records], records, inputs, loaded.origin, loaded.kind, digest,
                        balanced, dict(sorted(counts.items())))
