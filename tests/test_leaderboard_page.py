"""The leaderboard from real eval runs: intervals, caveats in every format, paired differences, the
self-contained page, and the page in a real headless Chromium (sorting, charts, flags, screenshot).

Runs: a fixture build of every source, evaluated by the rule baseline, by a partial oracle served
from a local OpenAI-protocol server (right on half of the videos), and by the oracle on a
``--limit`` subset.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
# BUILTIN_SOURCES, not fixture_sources(): other test modules register test sources in the same process
from mvbench.builders import BUILTIN_SOURCES
from mvbench.builders.fixtures import make_fixture
from mvbench.builders.pipeline import BuildOptions, build
from mvbench.eval.harness import EvalConfig, run_eval
from mvbench.leaderboard import build_board, load_entry
from mvbench.leaderboard.render import csv_header, to_csv, to_html, to_json, to_markdown

from mvbench.dataset_io import read_parquet
from mvbench.tasks import LEADERBOARD_KEYS
from tests.servers.fake_openai import FakeOpenAIServer, last_user_text

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def _partial_oracle(dataset: Path):
    """Ground truth for videos whose id hashes even, a useless answer for the others."""
    answers = {}
    for r in read_parquet(dataset):
        if r.split == "test" and r.answer is not None:
            good = zlib.crc32(str(r.metadata.get("video_id")).encode()) % 2 == 0
            answers[r.question] = r.answer if good else "I cannot tell."
    return lambda body: answers.get(last_user_text(body), "I cannot tell.")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("board")
    roots = [(name, make_fixture(name, root / "raw" / name)) for name in BUILTIN_SOURCES]
    build(roots, BuildOptions(out=root / "dataset", workers=1))
    out = {}
    run_eval(EvalConfig(data=str(root / "dataset"), model="baseline:prior", out_dir=root / "baseline",
                        no_judge=True, cache_dir=None))
    out["baseline"] = root / "baseline"
    with FakeOpenAIServer(respond=_partial_oracle(root / "dataset")) as srv:
        for name, limit in (("oracle", None), ("oracle-limit", 3)):
            run_eval(EvalConfig(data=str(root / "dataset"), model="openai:fake-model", out_dir=root / name,
                                base_url=srv.base_url, no_judge=True, cache_dir=None, limit=limit, concurrency=4))
            out[name] = root / name
    return out


def _cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from mvbench.cli import main; main()", "leaderboard",
                           *map(str, args)], capture_output=True, text=True)


@pytest.mark.slow
def test_runs_carry_intervals_counts_and_caveats(runs: dict[str, Path]) -> None:
    oracle = load_entry(runs["oracle"], "z-oracle")
    results = json.loads((runs["oracle"] / "results.json").read_text())
    assert oracle.interval_info["resamples"] == 1000 and oracle.interval_info["unit"] == "video"
    tag = oracle.intervals["tag_miou_0.3"]
    assert tag["low"] <= results["tag_miou_0.3"] <= tag["high"] and tag["low"] < tag["high"]
    assert oracle.counts["tag"]["records"] == results["counts"]["by_task"]["tag"]["records"] > 0
    assert {c for c, _ in oracle.flags} == {"fixture", "judge"}
    assert oracle.fingerprint["judge"] == "skipped (--no-judge)" and oracle.fingerprint["prompt"] == "zeroshot"
    limited = load_entry(runs["oracle-limit"])
    assert {c for c, _ in limited.flags} == {"fixture", "judge", "subset"}


@pytest.mark.slow
def test_every_format_keeps_the_caveats_and_csv_leaves_missing_values_empty(runs: dict[str, Path]) -> None:
    entries = [load_entry(runs["baseline"], "a-baseline"), load_entry(runs["oracle"], "z-oracle"),
               load_entry(runs["oracle-limit"], "z-oracle-limit")]
    board = build_board(entries, with_paper=True, allow_mixed=True)
    md = to_markdown(board)
    for phrase in ("Fixture data", "Judge skipped", "Subset", "Different datasets", "reported, not reproduced",
                   "Intervals: 95% percentile bootstrap (1000 draws, seed 0, whole videos)"):
        assert phrase.lower() in md.lower(), phrase
    rows = list(csv.reader(io.StringIO(to_csv(board))))
    assert rows[0] == csv_header()
    col = {h: i for i, h in enumerate(rows[0])}
    runs_rows = [r for r in rows[1:] if r[col["group"]] == "run"]
    paper_rows = [r for r in rows[1:] if r[col["group"]] == "paper"]
    assert len(runs_rows) == 3 and len(paper_rows) == 14 and paper_rows[0][0] == "1"
    for r in runs_rows:
        assert r[col["DVC llm"]] == "" and r[col["VS llm"]] == "" and r[col["DVC llm low"]] == ""
        assert "fixture data" in r[col["caveats"]] and "judge skipped" in r[col["caveats"]]
        assert "different data" in r[col["caveats"]]
    assert all("reported, not reproduced" in r[col["caveats"]] for r in paper_rows)
    assert float(runs_rows[1][col["TAG@0.3 low"]]) <= float(runs_rows[1][col["TAG@0.3"]])
    data = json.loads(to_json(board))
    assert {c["code"] for c in data["caveats"]} == {"fixture", "judge", "subset", "mixed", "paper"}
    assert data["runs"][0]["intervals"]["tag_miou_0.3"] is not None


@pytest.mark.slow
def test_paper_rows_never_outrank_a_baseline_in_one_ranking(runs: dict[str, Path]) -> None:
    board = build_board([load_entry(runs["baseline"], "a-baseline")], with_paper=True)
    # The baseline on fixture data has values above GPT-4.1's; it is ranked only among runs.
    assert [e.name for e in board.runs] == ["a-baseline"] and len(board.paper) == 14
    assert board.runs[0].mean_rank == 1.0 and board.paper[0].name == "uAI-NEXUS-MedVLM-1.0b-4B-RL"
    gpt41 = next(e for e in board.paper if e.name == "GPT-4.1")
    assert board.runs[0].metrics["cvs_acc"] > gpt41.metrics["cvs_acc"]  # one joint ranking would favour it
    proc = _cli(runs["baseline"], "--with-paper", "--format", "csv")
    assert proc.returncode == 0 and "ranked separately" in proc.stderr
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert [(r[0], r[-2]) for r in rows[1:3]] == [("1", "run"), ("1", "paper")]
    assert [r[-2] for r in rows[1:]] == ["run"] + ["paper"] * 14


@pytest.mark.slow
def test_paired_differences_from_the_per_sample_files(runs: dict[str, Path], tmp_path: Path) -> None:
    a, b = load_entry(runs["oracle"], "z-oracle"), load_entry(runs["baseline"], "a-baseline")
    board = build_board([a, b], paired=True)
    (cmp,) = board.comparisons
    assert (cmp.better, cmp.worse) == ("z-oracle", "a-baseline")
    for key in LEADERBOARD_KEYS:
        d = cmp.metrics[key]
        if a.metrics[key] is None or d is None:
            continue
        assert d["diff"] == pytest.approx(a.metrics[key] - b.metrics[key])  # recomputed from the samples files
        assert d["low"] <= d["diff"] <= d["high"]
    assert cmp.info["resamples"] == 1000 and cmp.info["unit"] == "video"
    proc = _cli(runs["oracle"], runs["oracle-limit"], "--paired", "--allow-mixed")
    assert proc.returncode == 1 and "same records" in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli(runs["oracle"], runs["baseline"], "--paired", "--format", "md", "--bootstrap", "200")
    assert proc.returncode == 0 and "Paired differences" in proc.stdout


def _page(runs: dict[str, Path], out: Path) -> Path:
    proc = _cli(runs["baseline"], runs["oracle"], runs["oracle-limit"], "--name", "a-baseline", "--name", "z-oracle",
                "--name", "m-oracle-limit", "--allow-mixed", "--with-paper", "--paired", "--bootstrap", "200",
                "--out", out)
    assert proc.returncode == 1 and "same records" in proc.stderr  # --paired needs the same records...
    proc = _cli(runs["baseline"], runs["oracle"], runs["oracle-limit"], "--name", "a-baseline", "--name", "z-oracle",
                "--name", "m-oracle-limit", "--allow-mixed", "--with-paper", "--out", out)
    assert proc.returncode == 0, proc.stderr
    page = Path(proc.stdout.strip())
    assert page == out / "leaderboard.html" and {p.name for p in out.iterdir()} == {
        "leaderboard.html", "leaderboard.md", "leaderboard.csv", "leaderboard.json"}
    return page


@pytest.mark.slow
def test_page_is_one_self_contained_file(runs: dict[str, Path], tmp_path: Path) -> None:
    html = _page(runs, tmp_path / "board").read_text(encoding="utf-8")
    assert not re.search(r"\b(src|href)\s*=", html) and "http" not in html and "@import" not in html
    assert html.count('class="chart bar-chart"') == 10 and html.count('class="chart radar"') == 3
    for code in ("fixture", "judge", "subset", "mixed", "paper"):
        assert f'data-code="{code}"' in html and f"flag-{code}" in html
    assert to_html(build_board([load_entry(runs["baseline"])])).startswith("<!doctype html>")


@pytest.mark.slow
def test_page_in_a_real_browser(runs: dict[str, Path], tmp_path: Path) -> None:
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[dev]'")
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium (make system-deps)")
    page_path = _page(runs, tmp_path / "board")
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.as_uri())

            def order() -> list[str]:
                return page.eval_on_selector_all("#board tbody tr", "rows => rows.map(r => r.dataset.model)")

            ranked = order()
            assert ranked[0] == "z-oracle" and set(ranked) == {"a-baseline", "z-oracle", "m-oracle-limit"}
            page.click("#board thead th:has-text('model')")
            assert order() == sorted(ranked) != ranked  # a-baseline, m-oracle-limit, z-oracle
            page.click("#board thead th:has-text('model')")
            assert order() == sorted(ranked, reverse=True)
            page.click("#board thead th[data-key='tag_miou_0.3']")
            values = page.eval_on_selector_all(
                "#board tbody tr td:nth-child(8)", "cells => cells.map(c => parseFloat(c.dataset.sort))")
            assert values == sorted(values, reverse=True)
            page.click("#board thead th:has-text('mean rank')")
            assert order() == ranked

            for selector, count in (("svg.bar-chart", 10), ("svg.radar", 3)):
                charts = page.locator(selector)
                assert charts.count() == count
                box = charts.first.bounding_box()
                assert box and box["width"] > 100 and box["height"] > 100
            assert page.locator("svg.bar-chart rect.bar").count() > 0
            assert page.locator("svg.bar-chart path.whisker").count() > 0
            assert page.locator("#caveats").is_visible()
            for code in ("fixture", "judge", "subset", "mixed"):
                assert page.locator(f"#caveats li[data-code='{code}']").is_visible()
                assert page.locator(f"#board .flag-{code}").first.is_visible()
            assert page.locator("#paper-board .flag-paper").first.is_visible()
            assert page.locator("#paper-board .flag-paper").first.inner_text() == "reported, not reproduced"
            ci = page.locator("#board tr[data-model='z-oracle'] td:nth-child(8) .ci").inner_text()
            assert re.fullmatch(r"\[\d\.\d\d, \d\.\d\d\]", ci)
            assert errors == []
            ARTIFACTS.mkdir(exist_ok=True)
            for target in (tmp_path / "leaderboard.png", ARTIFACTS / "leaderboard-page.png"):
                page.screenshot(path=str(target), full_page=True)
            assert (tmp_path / "leaderboard.png").stat().st_size > 10_000
        finally:
            browser.close()
    assert requests and all(u.startswith("file://") for u in requests)  # nothing fetched from a network
