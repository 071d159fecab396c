"""Next-action prediction (qa_type ``next_action``): accuracy, as the leaderboard scores it.

Official behaviour (evaluation/eval_next_action.py, LB 6a68818, with MedGRPO-Code@f098b64's
``dataset_utils.get_dataset_name``, which the leaderboard copy imports but lacks):

- Dataset = ``data_source`` (or a guess from the question / video id when it is missing or
  'Unknown'). Class list: AVOS, CholecT50 and CoPESD fixed lists; NurViD the actions of the first
  procedure (dict order) named in the question, or the union if none is; every other dataset
  (EgoSurgery, …) the sorted set of the stripped GT labels of its records.
- Answer and GT are stripped (CoPESD legacy names mapped). A GT outside the list skips the
  sample (None). A stripped answer equal to a class (case-sensitive) is that class; otherwise the
  class nearest by all-MiniLM-L6-v2 cosine (first on ties); the model loads only then.
- Pooling: Σ_datasets round(acc·n) / Σ n (micro accuracy).

Only ``mode="leaderboard"`` exists.
"""

from __future__ import annotations

from mvbench.eval.metrics import embedding
from mvbench.eval.metrics.common import group_in_order
from mvbench.eval.metrics.nap_classes import classes_for, dataset_name, find_procedure, normalize_action

import numpy as np


def parse(text: str) -> str:
    """The answer as the scorer compares it: stripped text ('' if not a string).

    >>> parse("  tying\\n")
    'tying'
    """
    return text.strip() if isinstance(text, str) else ""


def group_key(rec: dict) -> tuple[str, str | None]:
    """(dataset, NurViD procedure or None) of a record."""
    dataset = dataset_name(rec)
    procedure = find_procedure(str(rec.get("question", "") or "")) if dataset == "NurViD" else None
    return dataset, procedure


def build_context(recs: list[dict]) -> dict[tuple[str, str | None], list[str]]:
    """Class lists of the groups whose dataset has no official list (GT label sets).

    Args:
        recs: all NAP records being scored together (the official derives these lists per file).

    Returns:
        (dataset, procedure) → sorted unique stripped GT labels.
    """
    labels: dict[tuple[str, str | None], set[str]] = {}
    for rec in recs:
        key = group_key(rec)
        if classes_for(*key):
            continue
        gnd = normalize_action(str(rec.get("gnd", "") or ""), key[0])
        if gnd:
            labels.setdefault(key, set()).add(gnd)
    return {k: sorted(v) for k, v in labels.items()}


def classes_of(rec: dict, context: dict | None = None) -> list[str]:
    """The class list a record is scored against (see module doc)."""
    key = group_key(rec)
    fixed = classes_for(*key)
    if fixed:
        return fixed
    if context is not None and key in context:
        return context[key]
    gnd = normalize_action(str(rec.get("gnd", "") or ""), key[0])
    return [gnd] if gnd else []


def needs_embedding(rec: dict, context: dict | None = None) -> bool:
    """True if scoring this record needs MiniLM (its GT is in its list and its answer is not)."""
    dataset = group_key(rec)[0]
    classes = classes_of(rec, context)
    gnd = normalize_action(str(rec.get("gnd", "") or ""), dataset)
    pred = normalize_action(parse(rec.get("answer", "")), dataset)
    return bool(gnd) and gnd in classes and pred not in classes


def prefetch(recs: list[dict], context: dict | None = None) -> int:
    """Embed, in batches, every answer and class list that scoring ``recs`` will need.

    Returns:
        The number of records that need MiniLM (0 ⇒ the model is not loaded).
    """
    texts: list[str] = []
    for rec in recs:
        if needs_embedding(rec, context):
            dataset = group_key(rec)[0]
            texts.append(normalize_action(parse(rec.get("answer", "")), dataset))
            texts.extend(classes_of(rec, context))
    if texts:
        embedding.encode(list(dict.fromkeys(texts)))
    return sum(1 for rec in recs if needs_embedding(rec, context))


def score_sample(rec: dict, context: dict | None = None) -> dict[str, float | None]:
    """Per-sample correctness (None = skipped: GT not in the class list).

    Args:
        rec: merged record.
        context: ``build_context`` of all records scored together; without it a dataset that has
            no official list is scored against its own GT label only.

    Returns:
        ``{"correct", "exact"}`` (1.0/0.0; ``exact`` = the answer matched a class verbatim).
    """
    dataset = group_key(rec)[0]
    classes = classes_of(rec, context)
    gnd = normalize_action(str(rec.get("gnd", "") or ""), dataset)
    if not gnd or gnd not in classes:
        return {"correct": None, "exact": None}
    class_map = {c: i for i, c in enumerate(classes)}
    pred = normalize_action(parse(rec.get("answer", "")), dataset)
    if pred in class_map:
        return {"correct": float(class_map[pred] == class_map[gnd]), "exact": 1.0}
    return {"correct": float(embedding.nearest(pred, classes) == class_map[gnd]), "exact": 0.0}


def aggregate(recs: list[dict], samples: list[dict], mode: str = "leaderboard") -> dict[str, float | None]:
    """Micro accuracy: Σ round(acc_ds·n_ds) / Σ n_ds over datasets.

    Args:
        recs: the NAP records.
        samples: their ``score_sample`` dicts, aligned.
        mode: only "leaderboard".

    Returns:
        ``{"nap_acc", "nap_macro_acc"}``: None without records; 0.0 if none was counted.
    """
    if not recs:
        return {"nap_acc": None, "nap_macro_acc": None}
    correct = total = 0
    per_ds: list[float] = []
    for idx in group_in_order(dataset_name(r) for r in recs).values():
        vals = [samples[i]["correct"] for i in idx if samples[i]["correct"] is not None]
        if vals:
            acc = float(np.mean(vals))
            per_ds.append(acc)
            correct += round(acc * len(vals))
            total += len(vals)
    return {"nap_acc": correct / total if total else 0.0,
            "nap_macro_acc": float(np.mean(per_ds)) if per_ds else 0.0}
