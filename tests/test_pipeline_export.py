"""Export to the official JSON + frames, import back, and the task-balanced version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import test_pipeline_helpers as helpers
from mvbench.builders.balance import balance
from mvbench.builders.export import export_medvidbench, import_official
from mvbench.builders.pipeline import BuildOptions, build
from mvbench.dataset_io import read_parquet
from mvbench.errors import InputError
from mvbench.records import OFFICIAL_KEY_ORDER


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("exp")
    root = helpers.write_tinyvid(base / "raw")
    build([("tinyvid", root)], BuildOptions(out=base / "out", workers=1))
    return base / "out"


def test_test_export_has_no_answers_and_the_published_key_order(built, tmp_path):
    path = export_medvidbench(built, tmp_path, split="test")
    data = json.loads(path.read_text())
    n_test = sum(r.split == "test" for r in read_parquet(built))
    assert len(data) == n_test > 0
    for obj in data:
        assert list(obj) == [k for k in OFFICIAL_KEY_ORDER if k != "struc_info"]
        assert [t["from"] for t in obj["conversations"]] == ["human"]
        assert obj["train"] is False
        for p in obj["video"]:
            assert p.startswith("frames/tinyvid/") and (tmp_path / p).is_file()
    assert (tmp_path / "frames").is_dir()


def test_export_with_answers_round_trips_through_import(built, tmp_path):
    path = export_medvidbench(built, tmp_path, split="all", with_answers=True, frames_prefix="/data/mvb",
                              copy=True)
    data = json.loads(path.read_text())
    assert all(p.startswith("/data/mvb/tinyvid/") for obj in data for p in obj["video"])
    back = import_official(path, tmp_path / "frames")
    original = {r.uid: r for r in read_parquet(built)}
    assert len(back) == len(original)
    by_id = {}
    for r in back:
        assert all(Path(p).is_file() for p in r.video)
        by_id.setdefault((r.id, r.question, r.qa_type, r.RC_info is not None), []).append(r)
    for r in original.values():
        match = by_id[(r.id, r.question, r.qa_type, r.RC_info is not None)][0]
        assert match.struc_info == r.struc_info and match.answer == r.answer
        assert match.split == r.split and match.frame_indices == r.frame_indices


def test_import_names_a_missing_frame(built, tmp_path):
    path = export_medvidbench(built, tmp_path / "e", split="test", frames=False)
    with pytest.raises(InputError, match="not found under"):
        import_official(path, tmp_path / "nowhere")


def test_balance_caps_each_source_task_and_links_frames(built, tmp_path):
    manifest = balance(built, tmp_path / "std", cap=2, seed=1)
    records = read_parquet(tmp_path / "std" / "tinyvid")
    per_task: dict[str, int] = {}
    for r in records:
        per_task[r.task] = per_task.get(r.task, 0) + 1
    assert max(per_task.values()) <= 2 and set(per_task) == {r.task for r in read_parquet(built)}
    assert manifest["records"] == len(records) < manifest["records_in"]
    assert (tmp_path / "std" / "frames").is_symlink()
    assert all((tmp_path / "std" / p).is_file() for r in records for p in r.video)
    again = balance(built, tmp_path / "std2", cap=2, seed=1)
    assert again["content_hash"] == manifest["content_hash"]
    assert balance(built, tmp_path / "std3", cap=2, seed=2)["content_hash"] != manifest["content_hash"]
