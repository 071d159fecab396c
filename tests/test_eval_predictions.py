"""predictions.jsonl: torn last lines are tolerated; any other damage is an InputError naming file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mvbench.errors import InputError
from mvbench.eval.predictions import PredictionStore


def _line(uid: str, prediction: str | None = "x") -> str:
    return json.dumps({"uid": uid, "qa_type": "cvs", "prediction": prediction, "error": None}) + "\n"


def test_resume_reads_entries_and_the_last_line_per_uid_wins(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text(_line("a", None) + _line("b") + _line("a", "late"))
    with PredictionStore(path) as store:
        assert store.done("a") and store.done("b") and store.entries["a"]["prediction"] == "late"


def test_torn_last_line_is_dropped_and_appends_start_clean(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text(_line("a") + '{"uid": "b", "predic')
    with PredictionStore(path) as store:
        assert set(store.entries) == {"a"}
        store.append({"uid": "c", "prediction": "y"})
    assert [json.loads(x)["uid"] for x in path.read_text().splitlines()] == ["a", "c"]


def test_whole_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text(_line("a") + _line("b").rstrip("\n"))
    with PredictionStore(path) as store:
        assert set(store.entries) == {"a", "b"}
        store.append({"uid": "c", "prediction": "y"})
    assert [json.loads(x)["uid"] for x in path.read_text().splitlines()] == ["a", "b", "c"]


@pytest.mark.parametrize("bad, what", [
    ('{"uid": "b", "predic\n', "not JSON"),
    ('{"qa_type": "cvs", "prediction": "x"}\n', "no string 'uid'"),
    ('[1, 2]\n', "not an object"),
    ('"just text"\n', "not an object"),
    (b'\xff\xfe{}\n', "not JSON"),
])
def test_damaged_line_names_file_and_line_and_suggests_overwrite(tmp_path: Path, bad: str | bytes, what: str) -> None:
    path = tmp_path / "predictions.jsonl"
    bad_bytes = bad if isinstance(bad, bytes) else bad.encode()
    path.write_bytes((_line("a")).encode() + bad_bytes + _line("c").encode())
    with pytest.raises(InputError) as info:
        PredictionStore(path)
    message = str(info.value)
    assert f"{path}:2" in message and what in message and "--overwrite" in message


def test_empty_answers_are_not_done(tmp_path):
    with PredictionStore(tmp_path / "predictions.jsonl") as store:
        for uid, prediction in (("a", "tying"), ("b", ""), ("c", " \n\t"), ("d", None)):
            store.append({"uid": uid, "prediction": prediction, "error": None if prediction is not None else "x"})
    store = PredictionStore(tmp_path / "predictions.jsonl")  # as a rerun loads it
    try:
        assert [store.done(u) for u in "abcde"] == [True, False, False, False, False]
    finally:
        store.close()


def test_a_torn_line_is_cut_in_place_not_by_rewriting_the_saved_answers(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text(_line("a") + _line("b") + '{"uid": "c", "predic')
    inode = path.stat().st_ino
    with PredictionStore(path) as store:
        assert set(store.entries) == {"a", "b"}
    assert path.stat().st_ino == inode and path.read_text() == _line("a") + _line("b")
