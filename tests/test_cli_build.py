"""The build, sources, balance, export and fixtures commands through the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import test_pipeline_helpers  # noqa: F401 - registers the test-only sources
from mvbench.cli import app
from mvbench.errors import InputError

runner = CliRunner(env={"COLUMNS": "200"})  # rich wraps tables at 80 columns otherwise


def test_sources_and_build_list_show_every_source_with_its_tasks():
    for args in (["sources"], ["build", "--list"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "tinyvid" in result.output and "TAG, STG, DVC, VS, RC, NAP, SA, CVS" in result.output


def test_fixtures_make_then_build_export_balance(tmp_path):
    result = runner.invoke(app, ["fixtures", "make", "--source", "tinyvid", str(tmp_path / "raw"), "--seed", "1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["build", "--source", "tinyvid", "--root", str(tmp_path / "raw"), "--out",
                                 str(tmp_path / "out"), "--workers", "1", "--tasks", "TAG,NAP", "--seed", "1"],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert set(manifest["counts"]["tinyvid"]) == {"TAG", "NAP"} and manifest["config"]["seed"] == 1
    assert "segments used" in result.output
    result = runner.invoke(app, ["export", str(tmp_path / "out"), str(tmp_path / "exp"), "--format",
                                 "medvidbench", "--split", "test"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "exp" / "medvidbench_test.json").read_text())
    result = runner.invoke(app, ["balance", str(tmp_path / "out"), str(tmp_path / "std"), "--cap", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "std" / "manifest.json").read_text())["records"] == 2


def test_fixtures_list_names_sources():
    from mvbench.builders import BUILTIN_SOURCES

    result = runner.invoke(app, ["fixtures", "list"])
    assert result.exit_code == 0 and "tinyframes" in result.output
    assert all(name in result.output for name in BUILTIN_SOURCES)


def test_source_all_builds_every_detected_source(tmp_path):
    from test_pipeline_helpers import write_tinyframes, write_tinyvid

    write_tinyvid(tmp_path / "raw" / "tinyvid", n_videos=2)
    write_tinyframes(tmp_path / "raw" / "TinyFrames" / "inner")  # case-insensitive; one level down
    (tmp_path / "raw" / "unrelated").mkdir()
    result = runner.invoke(app, ["build", "--source", "all", "--root", str(tmp_path / "raw"), "--out",
                                 str(tmp_path / "out"), "--plan-only", "--tasks", "TAG", "--workers", "1"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert set(manifest["sources"]) == {"tinyvid", "tinyframes"}


def test_bad_input_is_one_error_and_keep_going_lists_failures(tmp_path):
    from test_pipeline_helpers import ANN, write_tinyvid

    root = write_tinyvid(tmp_path / "raw", n_videos=2)
    ann = json.loads((root / ANN).read_text())
    ann["vid01"]["broken"] = True
    (root / ANN).write_text(json.dumps(ann))
    args = ["build", "-s", "tinyvid", "--root", str(root), "--out", str(tmp_path / "o"), "-j", "1", "--plan-only"]
    with pytest.raises(InputError, match=r"\[vid01\]"):  # main() prints it as one line
        runner.invoke(app, args, catch_exceptions=False)
    result = runner.invoke(app, [*args, "--keep-going"])
    assert result.exit_code == 1 and "failed" in result.output and "vid01" in result.output
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["failures"][0]["video_id"] == "vid01"


def test_builder_option_unknown_key_is_named(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    with pytest.raises(InputError, match="unknown builder option 'nope'"):
        runner.invoke(app, ["build", "-s", "tinyvid", "--root", str(root), "--out", str(tmp_path / "o"),
                            "--option", "nope=1"], catch_exceptions=False)


def test_builder_option_parses_optional_fields(tmp_path):
    """``--option part_gap_frames=5`` (an ``int | None`` field) reaches CoPESD as an int; ``none`` as None."""
    from mvbench.builders import get_builder
    from mvbench.cli.build import _coerce

    cfg = get_builder("copesd").config_class
    assert _coerce(cfg, "part_gap_frames", "5") == 5 and _coerce(cfg, "part_gap_frames", "None") is None
    assert _coerce(cfg, "seed", "3") == 3
    with pytest.raises(InputError, match="part_gap_frames='x'"):
        _coerce(cfg, "part_gap_frames", "x")
    raw = tmp_path / "raw"
    assert runner.invoke(app, ["fixtures", "make", "--source", "copesd", str(raw)]).exit_code == 0
    root = next(p for p in [raw, *raw.rglob("*")] if p.is_dir() and get_builder("copesd").detect(p))
    result = runner.invoke(app, ["build", "-s", "copesd", "--root", str(root), "--out", str(tmp_path / "o"),
                                 "--plan-only", "--option", "part_gap_frames=5"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["sources"]["copesd"]["builder_options"] == {"part_gap_frames": 5}
