"""Where the tests find the real NurViD annotation release.

The release is being copied into the repository (``tests/data/nurvid``, CC BY 4.0); until that
lands, the conftest's ``nurvid_dir`` fixture (the shared data beside the checkout) is the
fallback. Import the fixture into a test module: ``from real_nurvid import real_nurvid_dir``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

IN_REPO = Path(__file__).resolve().parent / "data" / "nurvid"


@pytest.fixture(scope="session")
def real_nurvid_dir(request: pytest.FixtureRequest) -> Path:
    """The real NurViD release: ``tests/data/nurvid`` when present, else the ``nurvid_dir`` fixture."""
    if (IN_REPO / "NurViD_annotations.json").is_file():
        return IN_REPO
    return request.getfixturevalue("nurvid_dir")
