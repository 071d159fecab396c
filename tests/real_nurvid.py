"""Where the tests find the real NurViD annotation release: ``tests/data/nurvid`` (CC BY 4.0, see its README).

Import the fixture into a test module: ``from real_nurvid import real_nurvid_dir``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

IN_REPO = Path(__file__).resolve().parent / "data" / "nurvid"


@pytest.fixture(scope="session")
def real_nurvid_dir() -> Path:
    """The real NurViD release shipped with the tests."""
    assert (IN_REPO / "NurViD_annotations.json").is_file(), f"missing {IN_REPO}"
    return IN_REPO
