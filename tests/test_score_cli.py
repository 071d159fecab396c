"""``mvbench score`` end to end: merged and submission inputs, outputs and exact top-level keys."""

import json
import logging

import pytest
import typer
from typer.testing import CliRunner

from mvbench.cli.score import register
from mvbench.errors import InputError
from mvbench.eval.score import LEADERBOARD_KEYS, load_score_input, score_records

KEYS = ["cvs_acc", "nap_acc", "sa_acc", "stg_miou", "tag_miou_0.3", "tag_miou_0.5", "dvc_f1", "dvc_llm",
        "vs_llm", "rc_llm"]


def gt_records():
    """Official test-format records with answers, one per task family."""
    def record(qa_type, source, question, answer, struc):
        return {"video": [], "conversations": [{"from": "human", "value": "<video>\n" + question},
                                               {"from": "gpt", "value": answer}],
                "id": "v&&0&&10&&1.0", "data_source": source, "qa_type": qa_type, "struc_info": struc,
                "metadata": {"video_id": "vid01", "fps": "1.0"}}

    return [
        record("tal", "AVOS", "When?", "1.0-5.0 seconds.", [{"action": "x", "spans": [{"start": 1.0, "end": 5.0}]}]),
        record("stg", "CoPESD", "Boxes?", "1.0 seconds: [0, 0, 10, 10]", [{"bbox_dict": {"1.0": [0, 0, 10, 10]}}]),
        record("next_action", "AVOS", "Next?", "tying", [{"next_action": "tying"}]),
        record("cvs_assessment", "Cholec80_CVS", "CVS?", "Two structures: 2, Cystic plate: 1, Hepatocystic triangle: 0",
               [{"cvs_scores": {"two_structures": 2, "cystic_plate": 1, "hepatocystic_triangle": 0}}]),
        record("skill_assessment", "JIGSAWS", "Skill?", "Respect for tissue: 2/5",
               [{"skill_level": "N", "skill_scores": {"Respect for tissue": 2}}]),
        record("dense_captioning_gpt", "AVOS", "Events?", "0.0-9.0 seconds: cutting",
               [[{"start": 0.0, "end": 9.0, "caption": "cutting"}]]),
        record("video_summary_gpt", "CoPESD", "Summary?", "A flap is dissected.", []),
        record("region_caption_gemini", "EgoSurgery", "Region?", "The hand holds a scalpel.", []),
    ]


def submission(gt, wrong=False):
    preds = [turn["value"] for r in gt for turn in r["conversations"] if turn["from"] == "gpt"]
    if wrong:
        preds = ["garbage"] * len(preds)
    return [{"id": r["id"], "qa_type": r["qa_type"], "prediction": p} for r, p in zip(gt, preds)]


@pytest.fixture()
def app():
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps typer in multi-command mode
        pass

    return app


def test_merged_file(tmp_path, app):
    merged = {str(i): r for i, r in enumerate(load_score_input_from(tmp_path, gt_records()))}
    path = tmp_path / "preds.json"
    path.write_text(json.dumps(merged))
    result = CliRunner().invoke(app, ["score", str(path), "--no-judge"])
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "preds.scores.json").read_text())
    assert list(scores)[:10] == KEYS
    assert scores["judge"] is None and scores["dvc_llm"] is None and scores["vs_llm"] is None
    for key in ("cvs_acc", "nap_acc", "sa_acc", "stg_miou", "tag_miou_0.3", "tag_miou_0.5", "dvc_f1"):
        assert scores[key] == pytest.approx(1.0), key
    lines = (tmp_path / "preds.scores.samples.jsonl").read_text().splitlines()
    assert len(lines) == 8 and json.loads(lines[0])["task"] == "tag"


def load_score_input_from(tmp_path, gt):
    gt_path, sub_path = tmp_path / "gt.json", tmp_path / "sub.json"
    gt_path.write_text(json.dumps(gt))
    sub_path.write_text(json.dumps(submission(gt)))
    return load_score_input(sub_path, gt_path)


def test_submission_list_with_ground_truth(tmp_path, app):
    gt = gt_records()
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "sub.json").write_text(json.dumps(submission(gt, wrong=True)))
    out = tmp_path / "out" / "s.json"
    result = CliRunner().invoke(app, ["score", str(tmp_path / "sub.json"), "--ground-truth",
                                      str(tmp_path / "gt.json"), "--no-judge", "--output", str(out)])
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    assert list(scores)[:10] == KEYS
    assert scores["tag_miou_0.3"] == 0.0 and scores["stg_miou"] == 0.0 and scores["cvs_acc"] == 0.0
    assert scores["counts"]["sa"] == {"records": 1, "scored": 0}
    assert (tmp_path / "out" / "s.samples.jsonl").exists()


def test_merge_strips_video_token_and_takes_gnd(tmp_path):
    recs = load_score_input_from(tmp_path, gt_records())
    assert recs[0]["question"] == "When?" and recs[0]["gnd"] == "1.0-5.0 seconds."
    assert set(recs[0]) == {"metadata", "qa_type", "struc_info", "question", "gnd", "answer", "data_source"}


def test_length_mismatch_and_missing_prediction(tmp_path):
    gt = gt_records()
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "short.json").write_text(json.dumps(submission(gt)[:-1]))
    with pytest.raises(InputError, match="length mismatch"):
        load_score_input(tmp_path / "short.json", tmp_path / "gt.json")
    bad = submission(gt)
    del bad[2]["prediction"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match="prediction"):
        load_score_input(tmp_path / "bad.json", tmp_path / "gt.json")
    with pytest.raises(InputError, match="ground-truth"):
        load_score_input(tmp_path / "bad.json")


def test_qa_type_mismatch_only_warns(tmp_path, caplog):
    gt = gt_records()
    sub = submission(gt)
    sub[0]["qa_type"] = "stg"
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "sub.json").write_text(json.dumps(sub))
    with caplog.at_level(logging.WARNING, logger="mvbench.eval.score"):
        recs = load_score_input(tmp_path / "sub.json", tmp_path / "gt.json")
    assert recs[0]["qa_type"] == "tal"
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'sub.json'}: 1 predictions have a qa_type that differs from the ground truth "
        "(scored by the ground truth's qa_type, as the leaderboard does)"]


def _gt_with_official_ids():
    gt = gt_records()
    for i, r in enumerate(gt):
        r["id"] = f"1.0$vid{i}$0$10"
        r["metadata"] = {"video_id": f"vid{i}", "fps": "1.0", "input_video_start_frame": "0",
                         "input_video_end_frame": "10"}
    return gt


def test_submission_ids_in_either_official_style_pass_silently(tmp_path, caplog):
    gt = _gt_with_official_ids()
    sub = submission(gt)
    for i, row in enumerate(sub[::2]):  # convert_to_submission.py's style for half of them
        row["id"] = f"vid{2 * i}&&0&&10&&1.0"
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "sub.json").write_text(json.dumps(sub))
    with caplog.at_level(logging.WARNING, logger="mvbench.eval.score"):
        load_score_input(tmp_path / "sub.json", tmp_path / "gt.json", strict_ids=True)
    assert caplog.records == []


def test_differing_submission_ids_warn_once_or_fail_with_strict_ids(tmp_path, caplog, app):
    gt = _gt_with_official_ids()
    sub = submission(gt)
    sub[3]["id"], sub[5]["id"] = "WRONG", "vid4&&0&&10&&1.0"  # the second one is a neighbour's id
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "sub.json").write_text(json.dumps(sub))
    with caplog.at_level(logging.WARNING, logger="mvbench.eval.score"):
        recs = load_score_input(tmp_path / "sub.json", tmp_path / "gt.json")
    assert len(recs) == 8  # still merged by position, as the leaderboard does
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "2 of 8 submission ids differ" in messages[0]
    assert "record 3 has id 'WRONG', ground truth '1.0$vid3$0$10'" in messages[0]
    assert "--strict-ids" in messages[0]
    with pytest.raises(InputError, match="2 of 8 submission ids differ"):
        load_score_input(tmp_path / "sub.json", tmp_path / "gt.json", strict_ids=True)
    result = CliRunner().invoke(app, ["score", str(tmp_path / "sub.json"), "--ground-truth", str(tmp_path / "gt.json"),
                                      "--no-judge", "--strict-ids"])
    assert result.exit_code != 0 and isinstance(result.exception, InputError)


@pytest.mark.parametrize("flags, message", [
    (["--no-judge", "--judge", "gpt-4.1"], "--no-judge conflicts"),
    (["--no-judge", "--judge-base-url", "http://127.0.0.1:9/v1"], "--no-judge conflicts"),
    (["--judge-base-url", "http://127.0.0.1:9/v1"], "--judge-base-url needs --judge"),
])
def test_conflicting_or_incomplete_judge_options_are_usage_errors(tmp_path, app, flags, message):
    merged = {str(i): r for i, r in enumerate(load_score_input_from(tmp_path, gt_records()))}
    (tmp_path / "preds.json").write_text(json.dumps(merged))
    result = CliRunner().invoke(app, ["score", str(tmp_path / "preds.json"), *flags])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert not (tmp_path / "preds.scores.json").exists()


def test_no_api_key_skips_the_judge_with_a_warning_like_eval(tmp_path, app, monkeypatch, caplog):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    merged = {str(i): r for i, r in enumerate(load_score_input_from(tmp_path, gt_records()))}
    (tmp_path / "preds.json").write_text(json.dumps(merged))
    with caplog.at_level(logging.WARNING, logger="mvbench.cli.score"):
        result = CliRunner().invoke(app, ["score", str(tmp_path / "preds.json")])
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "preds.scores.json").read_text())
    assert scores["judge"] is None and scores["dvc_llm"] is None
    assert any("OPENAI_API_KEY" in r.getMessage() and "--judge-base-url" in r.getMessage() for r in caplog.records)


def test_help_names_the_samples_file_after_the_output(app):
    result = CliRunner().invoke(app, ["score", "--help"], terminal_width=200)
    assert "<output stem>.samples.jsonl" in result.output and "<FILE stem>" not in result.output


def test_cli_error_names_file(tmp_path, app):
    result = CliRunner().invoke(app, ["score", str(tmp_path / "missing.json"), "--no-judge"])
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError) and "missing.json" in str(result.exception)


def test_score_records_with_fake_judge(tmp_path):
    from mvbench.eval.judge import Judge

    async def complete(messages, **params):
        return "R2: 4\nR3: 4\nR8: 4\nR5: 4\nR4: 4"

    recs = load_score_input_from(tmp_path, gt_records())
    result = score_records(recs, judge=Judge(complete, backoff=0), semantic=False)
    assert tuple(result.metrics) == LEADERBOARD_KEYS
    assert result.metrics["vs_llm"] == 4.0 and result.metrics["rc_llm"] == 4.0 and result.metrics["dvc_llm"] == 4.0
    assert result.summary["judge"]["pairs"] == 5  # VS, RC and the DVC pair at 3 thresholds


def test_score_file_carries_bootstrap_intervals(tmp_path, app):
    records = load_score_input_from(tmp_path, gt_records())
    for v in range(6):  # six more TAG videos, every other one answered wrong
        records.append({**records[0], "metadata": {"video_id": f"tag{v}", "fps": "1.0"},
                        "answer": records[0]["answer"] if v % 2 else "40.0-50.0 seconds."})
    merged = {str(i): r for i, r in enumerate(records)}
    (tmp_path / "preds.json").write_text(json.dumps(merged))
    result = CliRunner().invoke(app, ["score", str(tmp_path / "preds.json"), "--no-judge", "--bootstrap", "200",
                                      "--seed", "3"])
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "preds.scores.json").read_text())
    intervals = scores["intervals"]
    assert (intervals["resamples"], intervals["seed"], intervals["unit"]) == (200, 3, "video")
    assert set(intervals["metrics"]) == set(KEYS)
    tag = intervals["metrics"]["tag_miou_0.3"]
    assert tag["low"] < scores["tag_miou_0.3"] < tag["high"]
    # one video per other task: no interval can be drawn, and none is made up
    assert [k for k, v in intervals["metrics"].items() if v is not None] == ["tag_miou_0.3", "tag_miou_0.5"]
    line = json.loads((tmp_path / "preds.scores.samples.jsonl").read_text().splitlines()[0])
    assert line["pooling"] == {"data_source": "AVOS", "qa_type": "tal", "metadata": {"video_id": "vid01", "fps": "1.0"}}
    result = CliRunner().invoke(app, ["score", str(tmp_path / "preds.json"), "--no-judge", "--bootstrap", "0"])
    assert result.exit_code == 0 and "intervals" not in json.loads((tmp_path / "preds.scores.json").read_text())


def test_a_ground_truth_with_malformed_conversations_names_the_record(tmp_path):
    gt = gt_records()
    (tmp_path / "sub.json").write_text(json.dumps(submission(gt)))
    gt[1]["conversations"] = "not a list"
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    with pytest.raises(InputError, match=r"\[1\].*conversations must be a list"):
        load_score_input(tmp_path / "sub.json", tmp_path / "gt.json")
