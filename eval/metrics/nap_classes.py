"""Next-action (NAP) class vocabularies and the official dataset / procedure lookup.

The lists live in ``data/nap_classes.json`` (verbatim from the leaderboard's eval_next_action.py,
typos included, because predictions are matched against them). EgoSurgery and any other dataset
without a list use the sorted set of ground-truth labels of its records instead (see ``nap.py``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

_DATA = Path(__file__).resolve().parent / "data" / "nap_classes.json"


@lru_cache(maxsize=1)
def _table() -> dict:
    with open(_DATA, encoding="utf-8") as f:
        return json.load(f)


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
