"""Shared test fixtures: paths to the real data shipped in ``tests/data``, and a guard against empty runs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Real data the tests read, shipped in the repository (licences and attribution beside each set),
# so a fresh clone with nothing next to it passes the suite.
DATA = Path(__file__).resolve().parent / "data"
SAMPLES = DATA / "medvidbench-samples"
NURVID = DATA / "nurvid"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# mvbench's response and judge caches default to ~/.cache/mvbench: the suite keeps its own, so it
# neither reads a user's cached answers nor leaves any behind (tests that need a cache pass one).
_CACHE = tempfile.TemporaryDirectory(prefix="mvbench-test-cache-")
os.environ["MVBENCH_CACHE"] = _CACHE.name


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The real MedVidBench records (tests/data/medvidbench-samples, CC BY-NC-SA 4.0)."""
    if not SAMPLES.is_dir():
        pytest.fail(f"real MedVidBench samples not found at {SAMPLES}: the checkout is incomplete")
    return SAMPLES


@pytest.fixture(scope="session")
def nurvid_dir() -> Path:
    """The real NurViD annotation release (tests/data/nurvid, CC BY 4.0, research use only)."""
    if not NURVID.is_dir():
        pytest.fail(f"real NurViD annotations not found at {NURVID}: the checkout is incomplete")
    return NURVID


def pytest_collection_finish(session: pytest.Session) -> None:
    # An empty selection must never pass silently (pytest would exit 5; make it loud too).
    if not session.items and not session.config.getoption("collectonly"):
        raise pytest.UsageError("no tests were collected: refusing to report success")
