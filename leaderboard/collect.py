"""Collect evaluation results (``results.json`` or ``mvbench score`` files) into leaderboard entries."""

from __future__ import annotations

from pathlib import Path

from mvbench.dataset_io import load_json
from mvbench.errors import InputError
from mvbench.eval.score import LEADERBOARD_KEYS
from mvbench.leaderboard.ranking import Entry


def load_entry(path: str | Path, name: str | None = None) -> Entry:
    """One entry from a results file, or from an eval output folder holding ``results.json``.

    The name defaults to the model recorded in the file's fingerprint, else the folder name.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    data = load_json(path)
    if not isinstance(data, dict) or not any(k in data for k in LEADERBOARD_KEYS):
        raise InputError("not a results file (no leaderboard metrics)", path)
    metrics = {k: data.get(k) for k in LEADERBOARD_KEYS}
    model = (data.get("fingerprint") or {}).get("model")
    return Entry(name or model or path.parent.name, metrics, source=str(path))
