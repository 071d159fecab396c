"""Every JSON mvbench writes is strict (no NaN/Infinity); a non-finite metric is null with its reason and records."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mvbench.cli import app
from mvbench.dataset_io import atomic_write_json, read_official_json
from mvbench.errors import InputError
from mvbench.eval.harness import EvalConfig, run_eval
from mvbench.eval.score import score_records
from mvbench.records import Record
from tests.servers.fake_openai import FakeOpenAIServer, last_user_text
from tests.test_eval_harness import make_eval_dataset

REPO = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("mvbench", "builders", "eval", "leaderboard", "training", "generation", "prompts", "bench", "scripts")
# json.dump(s) calls that may omit allow_nan=False, each with why (none of them writes a file we own).
EXEMPT: dict[str, str] = {}  # file -> why it may write non-strict JSON (none may)


def strict_loads(text: str):
    """json.loads that rejects NaN/Infinity, as a strict JSON reader does."""
    def reject(name: str):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=reject)


def test_every_json_dump_in_the_code_is_strict() -> None:
    offenders = []
    for folder in SOURCE_DIRS:
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel in EXEMPT:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in ("dump", "dumps") and isinstance(node.func.value, ast.Name)
                        and node.func.value.id == "json"):
                    strict = any(k.arg == "allow_nan" and isinstance(k.value, ast.Constant) and k.value.value is False
                                 for k in node.keywords)
                    if not strict:
                        offenders.append(f"{rel}:{node.lineno}")
    assert not offenders, "json.dump(s) without allow_nan=False (use mvbench.strict_json.dumps): " + ", ".join(offenders)


def _stg(answer: str, video: str) -> dict:
    return {"metadata": {"fps": "1.0", "video_id": video}, "qa_type": "stg",
            "struc_info": [{"bbox_dict": {"1.0": [0, 0, 10, 10], "2.0": [0, 0, 10, 10]}}], "question": "q",
            "gnd": "1.0 seconds: [0, 0, 10, 10]", "answer": answer, "data_source": "CoPESD"}


def test_a_nan_box_makes_stg_miou_null_with_the_reason_and_the_record(tmp_path: Path) -> None:
    recs = {"0": _stg("1.0 seconds: [0, 0, 10, 10] 2.0 seconds: [0, 0, 10, 10]", "a"),
            "1": _stg("1.0 seconds: [nan, 0, 10, 10] 2.0 seconds: [0, 0, inf, 10]", "b"),
            "2": {"metadata": {"fps": "1.0"}, "qa_type": "tal", "struc_info": [{"spans": [{"start": 1, "end": 5}]}],
                  "question": "q", "gnd": "1.0-5.0 seconds.", "answer": "1.0-5.0 seconds.", "data_source": "AVOS"}}
    path = tmp_path / "preds.json"
    path.write_text(json.dumps(recs))
    result = CliRunner().invoke(app, ["score", str(path), "--no-judge"])
    assert result.exit_code == 0, result.output
    printed = strict_loads(result.stdout)
    assert printed["stg_miou"] is None and printed["tag_miou_0.3"] == 1.0
    scores = strict_loads((tmp_path / "preds.scores.json").read_text())
    assert scores["stg_miou"] is None and scores["by_task"]["stg"]["stg_miou"] is None
    assert scores["by_source"]["stg"]["CoPESD"]["stg_miou"] is None
    (item,) = scores["non_finite"]
    assert item["task"] == "stg" and item["metrics"] == ["stg_miou"] and "nan" in item["reason"]
    assert [(r["index"], r["video_id"], r["scores"]) for r in item["records"]] == [(1, "b", {"miou": "nan"})]
    samples = [strict_loads(line) for line in (tmp_path / "preds.scores.samples.jsonl").read_text().splitlines()]
    assert samples[1]["scores"]["miou"] is None and samples[1]["non_finite"] == {"miou": "nan"}
    assert samples[0]["scores"]["miou"] == 1.0 and "non_finite" not in samples[0]


def test_a_clean_score_has_no_non_finite_entry() -> None:
    summary = score_records([_stg("1.0 seconds: [0, 0, 10, 10]", "a")]).summary
    assert "non_finite" not in summary  # the layout of clean score files is unchanged


def test_eval_results_and_samples_are_strict_with_a_nan_answer(samples_dir: Path, tmp_path: Path) -> None:
    data, answers = make_eval_dataset(samples_dir, tmp_path)

    def respond(body: dict) -> str:
        truth = answers[last_user_text(body)]
        if " seconds: [" in truth:  # the STG sample: a NaN coordinate in every box
            return re.sub(r"\[[^,\]]+,", "[nan,", truth)
        return truth

    with FakeOpenAIServer(respond=respond) as srv:
        results = run_eval(EvalConfig(data=str(data), model="openai:fake-model", out_dir=tmp_path / "out",
                                      base_url=srv.base_url, no_judge=True, cache_dir=None))
    written = strict_loads((tmp_path / "out" / "results.json").read_text())
    assert written["stg_miou"] is None and results["stg_miou"] is None
    assert written["non_finite"][0]["task"] == "stg" and written["non_finite"][0]["records"]
    assert written["tag_miou_0.3"] == 1.0
    for path in (tmp_path / "out").glob("*.json*"):
        for line in ([path.read_text()] if path.suffix == ".json" else path.read_text().splitlines()):
            strict_loads(line)


def test_writing_a_non_finite_number_is_refused_naming_file_and_place(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"manifest.json: refusing to write it: non-finite number .* at \$\.a\.b\[1\]"):
        atomic_write_json(tmp_path / "manifest.json", {"a": {"b": [1.0, float("inf")]}})
    assert not (tmp_path / "manifest.json").exists()


def test_records_with_nan_are_rejected_on_import(samples_dir: Path, tmp_path: Path) -> None:
    obj = json.loads((samples_dir / "trainval_4_records.json").read_text())[1]
    obj["struc_info"][0]["bbox_dict"] = {"1.0": [float("nan"), 0, 1, 1]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([obj]))  # Python writes (and reads) a bare NaN
    with pytest.raises(InputError, match=r"bad.json \[0\]: non-finite number .* at \$\.struc_info\[0\]"):
        read_official_json(path)
    with pytest.raises(InputError, match="non-finite"):
        Record.from_official(obj)
