"""``mvbench score``: leaderboard-identical scoring of a merged predictions file.

``score_records`` routes each merged record by qa_type to its task (``mvbench.tasks``), optionally
runs the caption judge on the pairs each task asks for and the MiniLM similarity, and pools with
each task's own rules, as the official leaderboard evaluator (``evaluate_predictions.py
--grouping overall``). Nothing here knows a task by name: keys, order and rules come from the
registry. ``load_score_input`` reads either a merged file (the official evaluator's dict
``{"0": record, …}``) or a submission list ``[{id, qa_type, prediction}]`` merged with a
ground-truth file by position, as the site does.

Records that cannot be scored are an error naming the record: no usable ``qa_type``, or ground
truth a task cannot use (:meth:`mvbench.tasks.base.Task.ground_truth_problem`: no spans, no boxes,
no segments, no skill level, ...). With ``skip_invalid`` they are left out instead, counted, listed
under ``invalid`` in the summary and warned about; they are never scored as zeros silently.

Non-finite values (a ``nan`` box coordinate makes an STG sample's IoU NaN, and so ``stg_miou``)
are not JSON: every NaN or infinite score and metric is reported as null, and ``non_finite`` in
the summary names each affected metric, the reason and the records that caused it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvbench import embedding
from mvbench.dataset_io import atomic_write_bytes
from mvbench.errors import InputError
from mvbench.eval.bootstrap import pooling_fields
from mvbench.strict_json import dumps, finite_or_none, non_finite_paths
from mvbench.eval.judge import Judge
from mvbench.records import Record
from mvbench.tasks import LEADERBOARD_KEYS, OFFICIAL_QA_TYPES, SCORING_MODES, TASKS, Task, leaderboard_metrics
from mvbench.tasks.base import owner_of

log = logging.getLogger(__name__)


@dataclass
class ScoreResult:
    """What ``score_records`` returns.

    Attributes:
        summary: the score file: the ten leaderboard keys at top level (float or None, full
            precision), then ``mode``, ``judge``, ``semantic_similarity``, ``by_task``,
            ``by_source`` and ``counts``.
        samples: one dict per input record (index, task, qa_type, data_source, the fields its
            task's pooling reads and its scores).
    """

    summary: dict[str, Any]
    samples: list[dict] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, float | None]:
        """Just the ten leaderboard metrics."""
        return {k: self.summary[k] for k in LEADERBOARD_KEYS}


def _where(rec: dict, index: int) -> str:
    return f"record {index} ({rec.get('qa_type')})"


def _guarded(task: Task, rec: dict, index: int, call):
    """Run ``call()``; a malformed ground truth becomes an InputError naming the record."""
    try:
        return call()
    except InputError as e:
        raise InputError(e.reason, path=e.path, record=_where(rec, index)) from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise InputError(f"malformed ground truth for {task.key}: {type(e).__name__}: {e}",
                         record=_where(rec, index)) from None


def _null_non_finite(recs: list[dict], by_task: dict[str, list[int]], samples: list[dict],
                     summary: dict[str, Any]) -> list[dict]:
    """Replace every NaN/infinite score and metric by None; return what was replaced and why.

    A sample keeps ``non_finite``: its score keys whose values were replaced (``"nan"``/``"inf"``).
    Each returned item names a task's metrics that were not finite, where in the summary, the
    reason and the records (index, qa_type, data_source, video id, scores) behind it.
    """
    bad_samples: dict[int, dict[str, str]] = {}
    for i, sample in enumerate(samples):
        scores = sample.get("scores") or {}
        bad = {k: repr(v) for k, v in scores.items() if finite_or_none(v) is None and v is not None}
        if bad:
            bad_samples[i] = bad
            sample["scores"] = {k: finite_or_none(v) for k, v in scores.items()}
            sample["non_finite"] = bad
    report: list[dict] = []
    for name, task in TASKS.items():
        where = [spec.key for spec in task.metrics if finite_or_none(summary.get(spec.key)) is None
                 and summary.get(spec.key) is not None]
        where += [f"by_task.{task.key}.{p[2:]}" for p in non_finite_paths(summary["by_task"][task.key])]
        where += [f"by_source.{task.key}.{p[2:]}" for p in non_finite_paths(summary["by_source"][task.key])]
        metrics = sorted({p.rsplit(".", 1)[-1] for p in where})
        if not where:
            continue
        records = [{"index": i, "qa_type": recs[i].get("qa_type"), "data_source": recs[i].get("data_source"),
                    "video_id": (recs[i].get("metadata") or {}).get("video_id")
                    if isinstance(recs[i].get("metadata"), dict) else None, "scores": bad_samples[i]}
                   for i in by_task[name] if i in bad_samples]
        reason = (f"{len(records)} record(s) have non-finite per-sample scores (e.g. an answer with a 'nan' or "
                  "'inf' coordinate, or a number too large for a float)" if records else
                  "the pooled value overflowed (per-sample scores are finite but too large)")
        report.append({"task": task.key, "metrics": metrics, "where": where, "reason": reason, "records": records})
        log.warning("%s not finite: reported as null; %s: records %s", ", ".join(metrics), reason,
                    ", ".join(str(r["index"]) for r in records[:10]) + (" ..." if len(records) > 10 else ""))

    def scrub(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: scrub(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [scrub(v) for v in obj]
        return finite_or_none(obj)

    for key in list(summary):
        summary[key] = scrub(summary[key])
    return report


def _run_judge(judge: Judge, recs: list[dict], by_task: dict[str, list[int]], samples: list[dict]) -> None:
    items: list[tuple[str, str, str]] = []
    owners: list[tuple[int, Task, object]] = []
    for name, task in TASKS.items():
        for i in by_task[name]:
            for tag, prediction, reference in _guarded(task, recs[i], i, lambda: task.judge_items(recs[i])):
                items.append((prediction, reference, task.key))
                owners.append((i, task, tag))
            task.init_judge_scores(samples[i]["scores"])
    for (i, task, tag), result in zip(owners, judge.judge_many(items)):
        task.add_judge_result(samples[i]["scores"], tag, result)


def _run_semantic(recs: list[dict], by_task: dict[str, list[int]], samples: list[dict]) -> int:
    owners = [(i, task.similarity_pair(recs[i])) for _, task in TASKS.items() for i in by_task[task.name]]
    owners = [(i, p) for i, p in owners if p]
    if owners:
        embedding.encode(list(dict.fromkeys(t for _, p in owners for t in p)))
    for i, (prediction, reference) in owners:
        samples[i]["scores"]["semantic_sim"] = embedding.cosine(prediction, reference)
    return len(owners)


def _invalid_records(recs: list[dict]) -> list[dict]:
    """The records that cannot be scored, each ``{index, qa_type, data_source, reason}``."""
    invalid = []
    for i, rec in enumerate(recs):
        name = owner_of(rec.get("qa_type"))
        if name is None:
            reason = (f"no usable qa_type ({rec.get('qa_type')!r}); known: "
                      f"{', '.join(OFFICIAL_QA_TYPES)}")
        else:
            task = TASKS.get(name)
            reason = _guarded(task, rec, i, lambda: task.ground_truth_problem(rec))
        if reason is not None:
            invalid.append({"index": i, "qa_type": rec.get("qa_type"), "data_source": rec.get("data_source"),
                            "reason": reason})
    return invalid


def score_records(recs: list[dict], judge: Judge | None = None, mode: str = "leaderboard",
                  semantic: bool | None = None, skip_invalid: bool = False) -> ScoreResult:
    """Score merged records as the official leaderboard evaluator does.

    Args:
        recs: merged records, in file order.
        judge: the caption judge; None skips it (``dvc_llm``, ``vs_llm``, ``rc_llm`` are None and
            ``summary["judge"]`` is None).
        mode: "leaderboard" (the only mode).
        semantic: also report MiniLM answer–reference similarity for DVC/VS/RC (loads the
            model); default: only when a judge is given.
        skip_invalid: leave out records without a usable qa_type or ground truth (counted,
            listed under ``invalid`` and warned about) instead of raising.

    Returns:
        A ``ScoreResult``.

    Raises:
        InputError: an unknown mode, or (unless ``skip_invalid``) a record without a usable
            qa_type or ground truth, naming the first and counting all.
    """
    if mode not in SCORING_MODES:
        raise InputError(f"unknown scoring mode {mode!r}; known: {', '.join(SCORING_MODES)}")
    if semantic is None:
        semantic = judge is not None
    invalid = _invalid_records(recs)
    if invalid and not skip_invalid:
        first = invalid[0]
        raise InputError(f"{first['reason']}; {len(invalid)} of {len(recs)} records cannot be scored; fix them, "
                         "or pass --skip-invalid to score the rest (they are then listed in the score file)",
                         record=_where(recs[first["index"]], first["index"]))
    if invalid:
        by_reason: dict[str, int] = {}
        for item in invalid:
            by_reason[item["reason"]] = by_reason.get(item["reason"], 0) + 1
        log.warning("skipped %d of %d records that cannot be scored (listed under 'invalid'): %s", len(invalid),
                    len(recs), "; ".join(f"{n} x {reason}" for reason, n in by_reason.items()))
    skipped = {item["index"]: item["reason"] for item in invalid}
    by_task: dict[str, list[int]] = {name: [] for name in TASKS}
    routed: list[str | None] = []
    for i, rec in enumerate(recs):
        name = owner_of(rec.get("qa_type"))
        routed.append(None if i in skipped else name)
        if name is not None and i not in skipped:
            by_task[name].append(i)
    contexts: dict[str, object] = {}
    prepared: dict[str, int] = {}
    for name, task in TASKS.items():
        task_recs = [recs[i] for i in by_task[name]]
        contexts[name] = task.build_context(task_recs)
        prepared[name] = task.prepare(task_recs, contexts[name])

    samples: list[dict] = []
    for i, rec in enumerate(recs):
        name = routed[i]
        entry = {"index": i, "task": name.lower() if name else None, "qa_type": rec.get("qa_type"),
                 "data_source": rec.get("data_source"), "pooling": pooling_fields(rec)}
        if i in skipped:
            entry["scores"] = {}
            entry["invalid"] = skipped[i]
        elif name is None:
            entry["scores"] = {}
        else:
            task = TASKS.get(name)
            entry["scores"] = _guarded(task, rec, i, lambda: task.score_sample(rec, contexts[name]))
        samples.append(entry)

    if judge is not None:
        _run_judge(judge, recs, by_task, samples)
    n_semantic = _run_semantic(recs, by_task, samples) if semantic else 0

    by_task_out: dict[str, dict] = {}
    by_source: dict[str, dict] = {}
    counts: dict[str, Any] = {"records": len(recs), "unrouted": sum(1 for r in recs if owner_of(r.get("qa_type")) is None),
                              "prepared": {TASKS.get(n).key: k for n, k in prepared.items() if k}}
    if invalid:
        counts["invalid"] = len(invalid)
    for name, task in TASKS.items():
        idx = by_task[name]
        task_recs = [recs[i] for i in idx]
        task_samples = [samples[i]["scores"] for i in idx]
        by_task_out[task.key] = task.aggregate(task_recs, task_samples, mode=mode)
        counts[task.key] = {"records": len(idx), "scored": sum(1 for s in task_samples if task.counted(s))}
        sources: dict[str, list[int]] = {}
        for j, rec in enumerate(task_recs):
            sources.setdefault(str(rec.get("data_source") or "Unknown"), []).append(j)
        by_source[task.key] = {src: task.aggregate([task_recs[j] for j in js], [task_samples[j] for j in js],
                                                   mode=mode) for src, js in sources.items()}

    summary: dict[str, Any] = {
        spec.key: None if spec.judge and judge is None else by_task_out[task.key][spec.key]
        for task, spec in leaderboard_metrics()}
    summary["mode"] = mode
    summary["judge"] = judge.info() if judge is not None else None
    summary["semantic_similarity"] = ({"model": "all-MiniLM-L6-v2", "pairs": n_semantic,
                                       **{task.key: by_task_out[task.key].get(f"{task.key}_semantic_sim")
                                          for _, task in TASKS.items() if task.free_text}}
                                      if semantic else None)
    summary["by_task"] = by_task_out
    summary["by_source"] = by_source
    summary["counts"] = counts
    non_finite = _null_non_finite(recs, by_task, samples, summary)
    if non_finite:  # (only then: the summary of a clean run keeps its exact layout)
        summary["non_finite"] = non_finite
    if invalid:
        summary["invalid"] = invalid
    return ScoreResult(summary=summary, samples=samples)


def merged_record(record: Record, prediction: str) -> dict:
    """The official evaluator's merged form of one answered sample (:meth:`Record.merged`)."""
    return record.merged(prediction)


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputError("file not found", path=path) from None
    except IsADirectoryError:
        raise InputError("is a folder; expected a JSON file", path=path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"not valid JSON: {e}", path=path) from None


def _is_merged(rec: object) -> bool:
    return isinstance(rec, dict) and "question" in rec and "gnd" in rec and "struc_info" in rec


def ground_truth_ids(ref: dict) -> set[str]:
    """The ids a submission may give a ground-truth record: its ``id`` and both official styles.

    >>> sorted(ground_truth_ids({"metadata": {"video_id": "v", "fps": "1.0", "input_video_start_frame": "0",
    ...                                       "input_video_end_frame": "10"}}))
    ['1.0$v$0$10', 'v&&0&&10&&1.0']
    """
    ids = {str(ref["id"])} if ref.get("id") is not None else set()
    meta = ref.get("metadata")
    if isinstance(meta, dict):
        parts = [meta.get(k) for k in ("video_id", "input_video_start_frame", "input_video_end_frame", "fps")]
        if all(p is not None for p in parts):
            video, start, end, fps = (str(p) for p in parts)
            ids |= {f"{video}&&{start}&&{end}&&{fps}", f"{fps}${video}${start}${end}"}
    return ids


def _check_ids(predictions: list, gt: list, pred_path: Path, gt_path: Path, strict: bool) -> None:
    """Warn (or raise, if ``strict``) when submission ids differ from the ground truth's, position by position."""
    mismatched: list[tuple[int, object, str]] = []
    for i, (pred, ref) in enumerate(zip(predictions, gt)):
        expected = ground_truth_ids(ref)
        if expected and str(pred.get("id")) not in expected:
            mismatched.append((i, pred.get("id"), str(ref["id"]) if ref.get("id") is not None else min(expected)))
    if not mismatched:
        return
    i, got, want = mismatched[0]
    message = (f"{len(mismatched)} of {len(predictions)} submission ids differ from the ground truth's ids in "
               f"{gt_path} (first: record {i} has id {got!r}, ground truth {want!r})")
    if strict:
        raise InputError(f"{message}; the submission must follow test-file order", path=pred_path)
    log.warning("%s: %s; scored by position, as the leaderboard does (--strict-ids makes this an error)",
                pred_path, message)


def _merge(predictions: list, gt: list, pred_path: Path, gt_path: Path, strict_ids: bool = False) -> list[dict]:
    if len(predictions) != len(gt):
        raise InputError(f"length mismatch: {len(predictions)} predictions but {len(gt)} ground-truth records "
                         f"in {gt_path}; predictions must be in test-file order", path=pred_path)
    merged: list[dict] = []
    mismatched = 0
    for i, (pred, ref) in enumerate(zip(predictions, gt)):
        if not isinstance(pred, dict) or "prediction" not in pred:
            raise InputError("missing 'prediction' field", path=pred_path, record=i)
        if not isinstance(ref, dict):
            raise InputError("ground-truth record is not an object", path=gt_path, record=i)
    _check_ids(predictions, gt, pred_path, gt_path, strict_ids)
    for i, (pred, ref) in enumerate(zip(predictions, gt)):
        if "qa_type" in pred and pred["qa_type"] != ref.get("qa_type"):
            mismatched += 1
        question = gnd = ""
        turns = ref.get("conversations") or []
        if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
            raise InputError("conversations must be a list of {from, value} objects", path=gt_path, record=i)
        for turn in turns:
            if turn.get("from") in ("human", "user"):
                question = str(turn.get("value", "")).replace("<video>\n", "").replace("<video>", "")
            elif turn.get("from") in ("gpt", "assistant"):
                gnd = turn.get("value", "")
        source = ref.get("data_source", "Unknown")
        if source == "Unknown" or not source:
            source = ref.get("dataset_name", "Unknown")
        merged.append({"metadata": ref.get("metadata", {}), "qa_type": ref.get("qa_type", ""),
                       "struc_info": ref.get("struc_info", []), "question": question, "gnd": gnd,
                       "answer": pred.get("prediction", ""), "data_source": source})
    if mismatched:
        log.warning("%s: %d predictions have a qa_type that differs from the ground truth "
                    "(scored by the ground truth's qa_type, as the leaderboard does)", pred_path, mismatched)
    if not any(r["gnd"] or r["struc_info"] for r in merged):
        raise InputError("ground truth has no answers (no gpt turn, no struc_info): the public test file "
                         "cannot be scored", path=gt_path)
    return merged


def load_score_input(path: str | Path, ground_truth: str | Path | None = None,
                     strict_ids: bool = False) -> list[dict]:
    """Read scorer input as merged records, in order.

    Args:
        path: a merged file (dict ``{"0": record, …}`` or list of merged records), or a submission
            list ``[{id, qa_type, prediction}]``.
        ground_truth: the official test-format JSON list with gpt turns and ``struc_info``;
            required for a submission list.
        strict_ids: a submission whose ids differ from the ground truth's (position by
            position; either official id style matches) is an error instead of a warning. The
            leaderboard merges by position and ignores ids, so by default this only warns.

    Returns:
        Merged records ``{metadata, qa_type, struc_info, question, gnd, answer, data_source}``.

    Raises:
        InputError: unreadable files, an unknown layout, a missing ground truth, a length
            mismatch, a prediction without ``prediction``, or (``strict_ids``) differing ids.
    """
    path = Path(path)
    data = _read_json(path)
    if isinstance(data, dict):
        records = list(data.values())
        if not records:
            raise InputError("no records", path=path)
        for key, rec in data.items():
            if not isinstance(rec, dict):
                raise InputError("record is not an object", path=path, record=key)
        return records
    if not isinstance(data, list):
        raise InputError("expected a JSON object of merged records or a list of predictions", path=path)
    if not data:
        raise InputError("no records", path=path)
    if all(_is_merged(r) for r in data):
        return data
    if ground_truth is None:
        raise InputError("a submission list needs --ground-truth (the test file with answers)", path=path)
    gt_path = Path(ground_truth)
    gt = _read_json(gt_path)
    if isinstance(gt, dict):
        gt = list(gt.values())
    if not isinstance(gt, list):
        raise InputError("expected a JSON list of test records", path=gt_path)
    return _merge(data, gt, path, gt_path, strict_ids)


def write_outputs(result: ScoreResult, output: str | Path) -> Path:
    """Write the score file and ``<stem>.samples.jsonl`` next to it (strict JSON, atomic writes).

    Returns:
        The path of the samples file.
    """
    output = Path(output)
    samples_path = output.with_name(f"{output.stem}.samples.jsonl")
    atomic_write_bytes(samples_path, "".join(dumps(s) + "\n" for s in result.samples).encode("utf-8"))
    atomic_write_bytes(output, (dumps(result.summary, indent=2, ensure_ascii=True) + "\n").encode("utf-8"))
    return samples_path
