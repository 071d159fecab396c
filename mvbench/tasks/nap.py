"""NAP, next action prediction (qa_type ``next_action``): which step follows the clip.

Prompt: ``prompts/tasks/nap.toml``. Answer: one label of the offered step list, verbatim
(``tying``). Leaderboard metric: ``nap_acc``. The class lists live in ``data/nap_classes.json``
(verbatim from the leaderboard's eval_next_action.py, typos included, because predictions are
matched against them); EgoSurgery and any other dataset without a list use the sorted set of
ground-truth labels of its records instead.

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

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from mvbench import embedding
from mvbench.tasks.base import MetricSpec, Task, with_answer
from mvbench.tasks.common import group_in_order

_DATA = "data/nap_classes.json"  # package data beside this module


@lru_cache(maxsize=1)
def _table() -> dict:
    return json.loads(resources.files(__package__).joinpath(_DATA).read_text(encoding="utf-8"))


def nurvid_procedures() -> dict[str, list[str]]:
    """NurViD procedure → action list, in the official dict order (49 procedures)."""
    return _table()["NurViD"]


@lru_cache(maxsize=1)
def _nurvid_union() -> tuple[str, ...]:
    return tuple(sorted({a for acts in nurvid_procedures().values() for a in acts}))


def find_procedure(question: str) -> str | None:
    """The first NurViD procedure (dict order) whose name occurs in the question, case-insensitively.

    So "Subcutaneous Injection" shadows "Subcutaneous Injection Insulin".

    >>> find_procedure("This clip is from the Subcutaneous Injection Insulin procedure.")
    'Subcutaneous Injection'
    >>> find_procedure("no procedure here") is None
    True
    """
    low = question.lower()
    for name in nurvid_procedures():
        if name.lower() in low:
            return name
    return None


def classes_for(dataset: str, procedure: str | None = None) -> list[str]:
    """The official class list of a dataset; [] where the scorer derives it from the GT labels.

    Args:
        dataset: the record's dataset name (``get_dataset_name``).
        procedure: the NurViD procedure, or None for the union of all NurViD actions.

    Returns:
        Class names in the official order (used for argmax tie-breaking).
    """
    table = _table()
    if dataset in ("AVOS", "CholecT50", "CoPESD"):
        return list(table[dataset])
    if dataset == "NurViD":
        if procedure and procedure in nurvid_procedures():
            return list(nurvid_procedures()[procedure])
        return list(_nurvid_union())
    return []


def normalize_action(text: str, dataset: str) -> str:
    """Strip the text; for CoPESD map legacy action names to the current ones.

    >>> normalize_action("  hold flap with forceps ", "CoPESD")
    'stabilize flap with forceps'
    """
    text = text.strip()
    if dataset == "CoPESD":
        return _table()["CoPESD_legacy_names"].get(text, text)
    return text


def _from_video_id(video_id: str) -> str:
    vid = video_id.lower()
    if len(vid) == 11 and any(c.isalpha() for c in vid):
        return "AVOS"
    if "_part" in vid and vid.replace("_part", "").split("_")[0].isdigit():
        return "CoPESD"
    if vid.startswith("vid") and any(c.isdigit() for c in vid):
        return "CholecTrack20"
    if vid.startswith("video") and any(c.isdigit() for c in vid):
        return "Cholec80-CVS"
    if "knot_tying" in vid or "needle_passing" in vid or "suturing" in vid:
        return "JIGSAWS"
    if any(k in vid for k in ("nur", "nursing", "medical")):
        return "NurViD"
    return "Unknown"


def _from_question(question: str) -> str:
    q = question.lower()
    for name, keys in (("AVOS", ("avos",)), ("CoPESD", ("copesd",)),
                       ("CholecT50", ("cholect50", "cholec-t50")),
                       ("CholecTrack20", ("cholectrack20", "cholec-track20")),
                       ("Cholec80-CVS", ("cholec80-cvs", "critical view of safety")),
                       ("JIGSAWS", ("jigsaws", "robotic bench-top")),
                       ("NurViD", ("nurvid", "nursing")),
                       ("CholecTrack20", ("laparoscopic cholecystectomy",))):
        if any(k in q for k in keys):
            return name
    if any(a in q for a in ("cutting", "tying", "suturing")) and "open surgery" in q:
        return "AVOS"
    if "forceps" in q and "knife" in q:
        return "CoPESD"
    return "Unknown"


def dataset_name(rec: dict) -> str:
    """``dataset_utils.get_dataset_name`` (MedGRPO-Code@f098b64; the leaderboard copy lacks it).

    ``data_source`` unless it is missing, '' or 'Unknown'; then the question's dataset, else the
    video id's.
    """
    dataset = rec.get("data_source", "Unknown")
    if dataset != "Unknown" and dataset:
        return dataset
    metadata = rec.get("metadata") or {}
    by_question = _from_question(str(rec.get("question", "") or ""))
    if by_question != "Unknown":
        return by_question
    return _from_video_id(str(metadata.get("video_id", "") if isinstance(metadata, dict) else ""))




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


class NAP(Task):
    """Next action prediction: which step follows the clip."""

    name = "NAP"
    title = "Next action prediction"
    qa_types = ("next_action",)
    prompt_file = "tasks/nap"
    metrics = (MetricSpec("nap_acc", "NAP"), MetricSpec("nap_macro_acc", "NAP macro", leaderboard=False))

    def format_answer(self, ground_truth: Any) -> str:
        """``[{"next_action": "tying"}]`` → ``"tying"``."""
        return str(ground_truth[0]["next_action"])

    def parse(self, text: str) -> str:
        return parse(text)

    def build_context(self, records: list[dict]) -> dict:
        return build_context(records)

    def prepare(self, records: list[dict], context: Any = None) -> int:
        """Embed every answer that needs MiniLM in one batch; returns how many records need it."""
        return prefetch(records, context)

    def ground_truth_problem(self, record: dict) -> str | None:
        """An empty ground-truth action (``gnd``). A label outside the class list is not a problem:
        the leaderboard skips such samples, and so does :func:`score_sample`."""
        return None if str(record.get("gnd", "") or "").strip() else "the ground-truth next action (gnd) is empty"

    def score_sample(self, record: dict, context: Any = None) -> dict[str, float | None]:
        return score_sample(record, context)

    def counted(self, scores: dict) -> bool:
        """Counted when the ground truth is in the record's class list."""
        return scores.get("correct") is not None

    def aggregate(self, records: list[dict], samples: list[dict], mode: str = "leaderboard") -> dict[str, float | None]:
        return aggregate(records, samples, mode)

    def sample_reward(self, record: dict, completion: str, context: Any = None) -> float | None:
        """1.0 if the completion maps to the ground-truth class as the leaderboard maps it (exact,
        else nearest by MiniLM), else 0.0; None when the ground truth is not in the class list.

        For a dataset without an official list (EgoSurgery) pass ``context`` =
        :meth:`build_context` over the training records; without it the list is the record's own
        label, so only an exact (stripped) answer earns the reward.

        >>> NAP().reward({"data_source": "AVOS", "gnd": "tying"}, "tying")
        1.0
        """
        scored = with_answer(record, completion)
        if context is None and not classes_for(*group_key(scored)):
            gnd = normalize_action(str(scored.get("gnd", "") or ""), group_key(scored)[0])
            if not gnd:
                return None
            return float(normalize_action(parse(completion), group_key(scored)[0]) == gnd)
        return score_sample(scored, context)["correct"]
