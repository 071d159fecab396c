"""Issue 8: sources added one at a time, split groups across them, and fixture roots the build accepts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mvbench.builders import BUILTIN_SOURCES, get_builder
from mvbench.builders.fixtures import make_fixture
from mvbench.builders.pipeline import BuildOptions, build, resolve_root
from typer.testing import CliRunner

from mvbench.dataset_io import read_parquet
from mvbench.errors import InputError

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("raw")
    return {name: make_fixture(name, base / name) for name in BUILTIN_SOURCES}


@pytest.fixture(scope="module")
def all_at_once(raw, tmp_path_factory) -> dict:
    return build(list(raw.items()), BuildOptions(out=tmp_path_factory.mktemp("all"), workers=1, plan_only=True))


def test_adding_sources_one_by_one_gives_the_hash_of_all_at_once(raw, all_at_once, tmp_path):
    out = tmp_path / "out"
    hashes = []
    for name in reversed(BUILTIN_SOURCES):  # any order
        manifest = build([(name, raw[name])], BuildOptions(out=out, workers=1, plan_only=True))
        hashes.append(manifest["content_hash"])
    assert set(manifest["sources"]) == set(BUILTIN_SOURCES)
    assert manifest["content_hash"] == all_at_once["content_hash"]
    assert manifest["counts"] == all_at_once["counts"]
    assert len(set(hashes)) == len(hashes)  # each step added records
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert on_disk == manifest["shards"] and len(read_parquet(out)) == manifest["records"]


def test_rebuilding_one_source_keeps_the_others(raw, all_at_once, tmp_path):
    out = tmp_path / "out"
    build(list(raw.items()), BuildOptions(out=out, workers=1, plan_only=True))
    manifest = build([("jigsaws", raw["jigsaws"])], BuildOptions(out=out, workers=1, plan_only=True))
    assert manifest["content_hash"] == all_at_once["content_hash"]


@pytest.fixture()
def cholec_raw(tmp_path) -> dict[str, Path]:
    """CholecT50 VID01 (official split train) and a CholecTrack20 tree whose *Testing* video is VID01.

    Both are Cholec80 surgery 01; CholecTrack20's split comes from its folder layout, which a
    CholecT50 build cannot see, so VID01 must move to test once CholecTrack20 is added.
    """
    t50 = make_fixture("cholect50", tmp_path / "t50")
    ct20 = make_fixture("cholectrack20", tmp_path / "ct20")
    shutil.move(ct20 / "Testing" / "VID25", ct20 / "Testing" / "VID01")
    (ct20 / "Testing" / "VID01" / "VID25.json").rename(ct20 / "Testing" / "VID01" / "VID01.json")
    cvs = make_fixture("cholec80_cvs", tmp_path / "cvs")
    return {"cholect50": t50, "cholectrack20": ct20, "cholec80_cvs": cvs}


def _splits(out: Path) -> dict[tuple[str, str], set[str]]:
    got: dict[tuple[str, str], set[str]] = {}
    for r in read_parquet(out):
        got.setdefault((r.data_source, r.source_video), set()).add(r.split)
    return got


def test_split_groups_stay_consistent_when_sources_are_added_one_by_one(cholec_raw, tmp_path):
    together = build(list(cholec_raw.items()), BuildOptions(out=tmp_path / "together", workers=1, plan_only=True))
    out = tmp_path / "one_by_one"
    first = build([("cholect50", cholec_raw["cholect50"])], BuildOptions(out=out, workers=1, plan_only=True))
    assert _splits(out)[("CholecT50", "VID01")] == {"train"}
    assert first["split_group_moves"] == [m for m in first["split_group_moves"] if m["video_id"] != "VID01"]
    build([("cholectrack20", cholec_raw["cholectrack20"])], BuildOptions(out=out, workers=1, plan_only=True))
    splits = _splits(out)
    assert splits[("CholecT50", "VID01")] == splits[("CholecTrack20", "VID01")] == {"test"}  # rewritten shards
    last = build([("cholec80_cvs", cholec_raw["cholec80_cvs"])], BuildOptions(out=out, workers=1, plan_only=True))
    splits = _splits(out)
    assert splits[("Cholec80_CVS", "video01")] == {"test"}
    assert {"source": "cholect50", "video_id": "VID01", "group": "cholec80:01", "from": "train",
            "to": "test"} in last["split_group_moves"]
    assert last["content_hash"] == together["content_hash"]
    assert sorted(map(str, last["split_group_moves"])) == sorted(map(str, together["split_group_moves"]))


def test_a_carried_source_whose_records_are_stale_needs_its_root(raw, tmp_path):
    src = tmp_path / "jig"
    shutil.copytree(raw["jigsaws"], src)
    out = tmp_path / "out"
    build([("jigsaws", src)], BuildOptions(out=out, workers=1, plan_only=True))
    shutil.rmtree(src)
    # same options: carried from its records, no raw tree needed
    same = build([("cholec80_cvs", raw["cholec80_cvs"])], BuildOptions(out=out, workers=1, plan_only=True))
    assert set(same["sources"]) == {"jigsaws", "cholec80_cvs"}
    # another seed makes its records stale, and its tree is gone
    with pytest.raises(InputError, match=r"'jigsaws'.*another seed.*raw root .* is gone"):
        build([("cholec80_cvs", raw["cholec80_cvs"])], BuildOptions(out=out, workers=1, plan_only=True, seed=3))


def test_build_accepts_the_folder_fixtures_make_writes(tmp_path):
    from mvbench.cli import app

    assert runner.invoke(app, ["fixtures", "make", "--source", "cholec80_cvs", str(tmp_path / "one")]).exit_code == 0
    result = runner.invoke(app, ["build", "--source", "cholec80_cvs", "--root", str(tmp_path / "one"), "--out",
                                 str(tmp_path / "o1"), "--plan-only", "-j", "1"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "o1" / "manifest.json").read_text())
    assert manifest["sources"]["cholec80_cvs"]["root"].endswith("Cholec80-CVS") and manifest["records"] > 0
    # --source all writes DIR/<source>/<Name>: a single source builds from DIR too
    assert runner.invoke(app, ["fixtures", "make", "--source", "all", str(tmp_path / "all")]).exit_code == 0
    result = runner.invoke(app, ["build", "--source", "jigsaws", "--root", str(tmp_path / "all"), "--out",
                                 str(tmp_path / "o2"), "--plan-only", "-j", "1"])
    assert result.exit_code == 0, result.output
    # a variant through the CLI
    result = runner.invoke(app, ["fixtures", "make", "--source", "avos", "--variant", "sparse", str(tmp_path / "v")])
    assert result.exit_code == 0 and (tmp_path / "v" / "AVOS" / "detections").is_dir()
    result = runner.invoke(app, ["build", "--source", "avos", "--root", str(tmp_path / "v"), "--out",
                                 str(tmp_path / "o3"), "--plan-only", "-j", "1"])
    assert result.exit_code == 0, result.output
    assert "no STG instance" in result.output and "--stg-keyframes" in result.output
    result = runner.invoke(app, ["build", "--source", "avos", "--root", str(tmp_path / "v"), "--out",
                                 str(tmp_path / "o4"), "--plan-only", "-j", "1", "--stg-keyframes"])
    assert result.exit_code == 0 and "no STG instance" not in result.output, result.output
    assert json.loads((tmp_path / "o4" / "manifest.json").read_text())["counts"]["avos"]["STG"]


def test_resolve_root_refuses_two_trees(tmp_path):
    make_fixture("cholec80_cvs", tmp_path / "a")
    make_fixture("cholec80_cvs", tmp_path / "b")
    with pytest.raises(InputError, match="several Cholec80_CVS trees"):
        resolve_root(get_builder("cholec80_cvs"), tmp_path)
    assert resolve_root(get_builder("cholec80_cvs"), tmp_path / "a") == tmp_path / "a" / "Cholec80-CVS"
    assert resolve_root(get_builder("nurvid"), tmp_path / "a") == tmp_path / "a"  # nothing found: unchanged
