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
    assert '<table id="paper-board"' in to_html(ranked)


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


def _results(folder: Path, value: float = 0.5, model: str | None = "m", sha: str | None = "a" * 64,
             failed: int = 0, empty: int = 0, **dataset: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    fingerprint: dict = {"model": model}
    if sha is not None:
        fingerprint["dataset"] = {"origin": "test.json", "kind": "official", "split": "test", "sha256": sha,
                                  "tasks": None, "sources": None, "limit": None, **dataset}
    (folder / "results.json").write_text(json.dumps({**{k: value for k in KEYS}, "fingerprint": fingerprint,
                                                     "counts": {"samples": 8, "failed": failed,
                                                                "empty_answers": empty}}))
    return folder


def _cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from mvbench.cli import main; main()", "leaderboard",
                           *map(str, args)], capture_output=True, text=True)


def test_load_entry_checks_types_and_names_the_file(tmp_path: Path) -> None:
    import pytest

    from mvbench.errors import InputError

    cases = {"list.json": [1, 2], "str_metric.json": {"cvs_acc": "high"}, "bool_metric.json": {"cvs_acc": True},
             "inf_metric.json": {"cvs_acc": float("inf")}, "fp_str.json": {"cvs_acc": 0.5, "fingerprint": "x"},
             "model_int.json": {"cvs_acc": 0.5, "fingerprint": {"model": 3}},
             "dataset_str.json": {"cvs_acc": 0.5, "fingerprint": {"dataset": "full"}},
             "failed_str.json": {"cvs_acc": 0.5, "counts": {"failed": "3"}}}
    for file, content in cases.items():
        (tmp_path / file).write_text(json.dumps(content))
        with pytest.raises(InputError, match=file.replace(".", r"\.")):
            load_entry(tmp_path / file)
    proc = _cli(tmp_path / "str_metric.json")
    assert proc.returncode == 1 and "str_metric.json: cvs_acc must be a number or null" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_nan_metric_is_missing_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "nan.json").write_text('{"cvs_acc": NaN, "nap_acc": 0.25}')
    entry = load_entry(tmp_path / "nan.json")
    assert entry.metrics["cvs_acc"] is None and entry.metrics["nap_acc"] == 0.25 and entry.name == "nan"
    assert len(entry.notes) == 1 and "cvs_acc is NaN" in entry.notes[0]
    proc = _cli(tmp_path / "nan.json", "--format", "csv")
    assert proc.returncode == 0 and "cvs_acc is NaN" in proc.stderr and proc.stdout.startswith("#,model")


def test_runs_on_different_data_are_refused_unless_allowed(tmp_path: Path) -> None:
    full = _results(tmp_path / "full", model="m1")
    other = _results(tmp_path / "other", model="m2", sha="b" * 64)
    subset = _results(tmp_path / "sub", model="m3", sha="c" * 64, limit=4, tasks=["TAG"])
    proc = _cli(full, other, subset, "--format", "csv")
    assert proc.returncode == 1 and "different data" in proc.stderr
    message = " ".join(proc.stderr.split())
    for folder in ("full", "other", "sub"):
        assert f"{tmp_path / folder / 'results.json'}" in message
    assert "limit=4" in message and "--allow-mixed" in message
    ok = _cli(full, other, subset, "--format", "csv", "--allow-mixed")
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 4
    same = _cli(full, _results(tmp_path / "again", model="m4"), "--format", "csv")
    assert same.returncode == 0 and same.stderr == ""


def test_incomplete_runs_are_refused_unless_allowed(tmp_path: Path) -> None:
    done, partial = _results(tmp_path / "done", model="m1"), _results(tmp_path / "partial", model="m2", failed=3)
    proc = _cli(done, partial)
    assert proc.returncode == 1
    assert f"{partial / 'results.json'} (3 failed, 0 empty)" in " ".join(proc.stderr.split())
    assert "--allow-incomplete" in proc.stderr
    assert _cli(done, partial, "--allow-incomplete", "--format", "md").returncode == 0
    blank = _results(tmp_path / "blank", model="m3", empty=2)  # empty answers are incomplete too
    proc = _cli(done, blank)
    assert proc.returncode == 1 and f"{blank / 'results.json'} (0 failed, 2 empty)" in " ".join(proc.stderr.split())


def test_with_paper_warns_on_one_line(tmp_path: Path) -> None:
    proc = _cli("--with-paper", "--format", "csv")
    assert proc.returncode == 0
    assert proc.stderr.splitlines() == ["warning: the paper rows are official MedVidBench test-set numbers; compare "
                                        "them only with runs on the official test file"]


def test_duplicate_names_get_their_folder(tmp_path: Path) -> None:
    a, b = _results(tmp_path / "run-a", model="qwen"), _results(tmp_path / "run-b", 0.25, model="qwen")
    proc = _cli(a, b, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    names = [line.split(",")[1] for line in proc.stdout.splitlines()[1:]]
    assert names == ["qwen (run-a)", "qwen (run-b)"]
    c = _results(tmp_path / "x" / "run-a", 0.1, model="qwen")  # same folder name: the path tells them apart
    proc = _cli(a, c, "--format", "csv")
    names = [line.split(",")[1] for line in proc.stdout.splitlines()[1:]]
    assert names == [f"qwen ({a / 'results.json'})", f"qwen ({c / 'results.json'})"]


def test_ranking_matches_a_hand_computed_example_with_ties() -> None:
    # cvs, nap, sa, stg, tag@0.3, tag@0.5, dvc_f1, dvc_llm, vs_llm, rc_llm
    a = _entry("A", [.5, .2, .9, .2, .1231, 0.0, .3, 3.0, 4.0, 2.0])
    b = _entry("B", [.5, .4, .1, .2, .1229, 0.0, .2, None, 4.0, 3.0])
    c = _entry("C", [.3, .4, .1, .2, .2, 0.0, .25, 2.5, 4.0, 1.0])
    d = _entry("D", [None, .1, .1, .2, 0.0, None, .4, None, 4.0, 3.0])
    ranked = rank([d, c, b, a])
    # Dense ranks by hand (ties share; a missing value ranks as 0.0, so D's tag@0.5 ties with the zeros;
    # A's 0.1231 and B's 0.1229 both show 0.123 and tie).
    assert [a.ranks[k] for k in KEYS] == [1, 2, 1, 1, 2, 1, 2, 1, 1, 2]
    assert [b.ranks[k] for k in KEYS] == [1, 1, 2, 1, 2, 1, 4, 3, 1, 1]
    assert [c.ranks[k] for k in KEYS] == [2, 1, 2, 1, 1, 1, 3, 2, 1, 3]
    assert [d.ranks[k] for k in KEYS] == [3, 3, 2, 1, 3, 1, 1, 3, 1, 1]
    assert (a.mean_rank, b.mean_rank, c.mean_rank, d.mean_rank) == (1.4, 1.7, 1.7, 1.9)
    # B and C tie on mean rank; B has more first places (6 against 5).
    assert [e.name for e in ranked] == ["A", "B", "C", "D"]
