"""Shared test fixtures: paths to the real data beside the checkout, and a guard against empty runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# shared/ sits beside the checkout (CI clones main with shared/ next to it).
SHARED = Path(os.environ.get("MVBENCH_SHARED", REPO.parent / "shared"))
SAMPLES = SHARED / "data" / "medvidbench-samples"
NURVID = SHARED / "data" / "nurvid"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The real MedVidBench records (shared/data/medvidbench-samples)."""
    if not SAMPLES.is_dir():
        pytest.fail(f"real MedVidBench samples not found at {SAMPLES} (set MVBENCH_SHARED)")
    return SAMPLES


@pytest.fixture(scope="session")
def nurvid_dir() -> Path:
    """The real NurViD annotation release (shared/data/nurvid)."""
    if not NURVID.is_dir():
        pytest.fail(f"real NurViD annotations not found at {NURVID} (set MVBENCH_SHARED)")
    return NURVID


def pytest_collection_finish(session: pytest.Session) -> None:
    # An empty selection must never pass silently (pytest would exit 5; make it loud too).
    if not session.items and not session.config.getoption("collectonly"):
        raise pytest.UsageError("no tests were collected: refusing to report success")
