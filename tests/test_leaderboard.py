"""Ranking as the official leaderboard app: dense ranks on displayed values, mean rank, tie-breakers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mvbench.eval.score import LEADERBOARD_KEYS
from mvbench.leaderboard import Entry, dense_ranks, displayed, load_entry, paper_entries, rank
from mvbench.leaderboard.render import to_csv, to_html, to_markdown

KEYS = LEADERBOARD_KEYS


def _entry(name: str, values: list[float | None]) -> Entry:
    return Entry(name, dict(zip(KEYS, values)))


def test_displayed_value_is_the_apps_double_rounding() -> None:
    assert displayed(0.12356) == 0.124 and displayed(None) is None
    assert displayed(0.12351) == 0.123 and round(0.12351, 3) == 0.124  # rounding twice differs from once
    assert displayed(0.99961) == 1.0 and displayed(0.99941) == 0.999


def test_dense_ranks_share_ties() -> None:
    assert dense_ranks([0.3, 0.1, 0.3, 0.2]) == [1, 3, 1, 2]


def test_ties_after_rounding_share_a_rank() -> None:
    a = _entry("a", [0.1231] * 10)
    b = _entry("b", [0.1229] * 10)  # both display 0.123
    ranked = rank([a, b])
    assert a.ranks == b.ranks and [e.name for e in ranked] == ["a", "b"]  # then by name


def test_missing_metrics_count_as_zero_like_the_app() -> None:
    # The app fills a missing metric with 0.0 before storing, so it ties with a real 0.000.
    e0 = _entry("e0", [0.0, .2, .2, .1, None, .2, .1, 0.0, .2, .3])
    e1 = _entry("e1", [.3, None, .2, .2, None, .2, None, .2, None, .1])
    e2 = _entry("e2", [0.0, 0.0, 0.0, .2, .1, .2, None, .1, .3, .1])
    assert [e.name for e in rank([e0, e1, e2])] == ["e0", "e1", "e2"]


def test_tie_breakers_more_firsts_then_rank_sum_then_normalised_sum() -> None:
    # Same mean rank; x has more first places.
    x = _entry("x", [.9, .9, .1, .1, .5, .5, .5, .5, .5, .5])
    y = _entry("y", [.5, .5, .5, .5, .5, .5, .5, .5, .5, .5])
    z = _entry("z", [.1, .1, .9, .9, .5, .5, .5, .5, .5, .5])
    ranked = rank([y, z, x])
    assert ranked[0].mean_rank == ranked[1].mean_rank == ranked[2].mean_rank
    assert [e.name for e in ranked][-1] == "y"  # no first place in a contested column


def test_paper_rows_and_renderers(tmp_path: Path) -> None:
    rows = paper_entries()
    assert len(rows) == 14 and {len(e.metrics) for e in rows} == {10}
    ranked = rank(rows)
    assert ranked[0].name == "uAI-NEXUS-MedVLM-1.0b-4B-RL"
    md = to_markdown(ranked)
    assert md.splitlines()[2].startswith("| 1 | uAI-NEXUS-MedVLM-1.0b-4B-RL |")
    assert to_csv(ranked).splitlines()[0].startswith("#,model,mean rank,CVS")
    assert "<table>" in to_html(ranked)


def test_results_files_and_cli(tmp_path: Path) -> None:
    for name, v in (("m1", 0.5), ("m2", 0.25)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps({**{k: v for k in KEYS},
                                                                   "fingerprint": {"model": name}}))
    assert load_entry(tmp_path / "m1").name == "m1"
    proc = subprocess.run([sys.executable, "-c", "from mvbench.cli import main; main()", "leaderboard",
                           str(tmp_path / "m2"), str(tmp_path / "m1"), "--format", "md"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.splitlines()[2].startswith("| 1 | m1 |")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    proc = subprocess.run([sys.executable, "-c", "from mvbench.cli import main; main()", "leaderboard", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "not a results file" in proc.stderr
