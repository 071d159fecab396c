"""``mvbench score`` refuses records it cannot score (no usable qa_type, malformed ground truth),
naming the record; ``--skip-invalid`` leaves them out with a warning, counts and a list."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mvbench.errors import InputError
from mvbench.eval.score import score_records

MAIN = "from mvbench.cli import main; main()"


def _rec(qa_type, struc, gnd="g", answer="a", source="AVOS") -> dict:
    return {"metadata": {"fps": "1.0", "video_id": "v"}, "qa_type": qa_type, "struc_info": struc,
            "question": "q", "gnd": gnd, "answer": answer, "data_source": source}


GOOD = [
    _rec("tal", [{"action": "x", "spans": [{"start": 1.0, "end": 5.0}]}], answer="1.0-5.0 seconds."),
    _rec("stg", [{"bbox_dict": {"1.0": [0, 0, 10, 10]}}], answer="1.0 seconds: [0, 0, 10, 10]", source="CoPESD"),
    _rec("dense_captioning_gpt", [[{"start": 0.0, "end": 9.0, "caption": "c"}]], answer="0.0-9.0 seconds: c"),
    _rec("skill_assessment", [{"skill_level": "N", "skill_scores": {"Respect for tissue": 2}}],
         answer="Respect for tissue: 2/5", source="JIGSAWS"),
    _rec("cvs_assessment", [{"cvs_scores": {"two_structures": 2}}], answer="Two structures: 2", source="Cholec80_CVS"),
    _rec("next_action", [], gnd="tying", answer="tying"),
    _rec("video_summary_gpt", [], gnd="A flap is dissected.", answer="A flap.", source="CoPESD"),
]

BAD = {
    "no qa_type": (_rec(None, []), "no usable qa_type (None)"),
    "unknown qa_type": (_rec("tal_v2", []), "no usable qa_type ('tal_v2')"),
    "TAG struc_info not a list": (_rec("tal", "0-5 seconds"), "struc_info must be a list"),
    "TAG without spans": (_rec("tal", []), "struc_info holds no ground-truth spans"),
    "TAG span without end": (_rec("tal", [{"spans": [{"start": 1}]}]), "not an object with start and end"),
    "TAG span start a string": (_rec("tal", [{"spans": [{"start": "1", "end": 2}]}]), "must be numbers"),
    "STG without boxes": (_rec("stg", []), "holds no ground-truth boxes"),
    "STG item without bbox_dict": (_rec("stg", [{"object": "x"}]), "keys must be times in seconds, not ['object']"),
    "STG keys not times": (_rec("stg", [{"bbox_dict": {"first": [0, 0, 1, 1]}}]), "keys must be times"),
    "STG boxes of 3 numbers": (_rec("stg", [{"bbox_dict": {"1.0": [0, 0, 1]}}]), "no valid [x1, y1, x2, y2] box"),
    "DVC without segments": (_rec("dense_captioning_gemini", [[{"start": 0, "end": 5}]]), "no ground-truth segments"),
    "SA without a level": (_rec("skill_assessment", [{"skill_scores": {}}], gnd="good"), "no ground-truth skill level"),
    "SA struc_info a string": (_rec("skill_assessment", "N"), "struc_info must be a list"),
    "CVS without scores": (_rec("cvs_assessment", [{"cvs_scores": {}}], gnd=""), "no ground-truth CVS scores"),
    "NAP with an empty gnd": (_rec("next_action", [], gnd="  "), "ground-truth next action (gnd) is empty"),
    "VS with an empty reference": (_rec("video_summary_gemini", [], gnd=""), "reference caption (gnd) is empty"),
}


def test_valid_records_score() -> None:
    summary = score_records(GOOD).summary
    assert "invalid" not in summary and summary["counts"]["unrouted"] == 0
    for key in ("tag_miou_0.3", "stg_miou", "dvc_f1", "sa_acc", "cvs_acc", "nap_acc"):
        assert summary[key] == 1.0, key


@pytest.mark.parametrize("name", list(BAD))
def test_an_unscorable_record_is_an_error_naming_it(name: str) -> None:
    bad, reason = BAD[name]
    recs = GOOD[:3] + [bad] + GOOD[3:]
    with pytest.raises(InputError) as err:
        score_records(recs)
    message = str(err.value)
    assert f"record 3 ({bad['qa_type']})" in message and reason in message, message
    assert "1 of 8 records cannot be scored" in message and "--skip-invalid" in message


@pytest.mark.parametrize("name", list(BAD))
def test_skip_invalid_scores_the_rest_and_lists_what_it_left_out(name: str) -> None:
    bad, reason = BAD[name]
    result = score_records(GOOD[:3] + [bad] + GOOD[3:], skip_invalid=True)
    summary = result.summary
    assert summary["counts"]["invalid"] == 1
    assert [(i["index"], reason in i["reason"]) for i in summary["invalid"]] == [(3, True)]
    assert result.samples[3]["scores"] == {} and reason in result.samples[3]["invalid"]
    alone = score_records(GOOD).summary
    for key in ("tag_miou_0.3", "stg_miou", "dvc_f1", "sa_acc", "cvs_acc", "nap_acc"):
        assert summary[key] == alone[key], key  # the invalid record does not count as a zero


def _score_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", MAIN, "score", *args], capture_output=True, text=True)


def test_cli_fails_in_one_line_or_warns_with_counts(tmp_path: Path) -> None:
    recs = GOOD + [BAD["no qa_type"][0], BAD["TAG without spans"][0], BAD["TAG without spans"][0]]
    path = tmp_path / "merged.json"
    path.write_text(json.dumps({str(i): r for i, r in enumerate(recs)}))
    proc = _score_cli(str(path), "--no-judge")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"{path} [record 7 (None)]: no usable qa_type" in lines[0] and "3 of 10 records cannot be scored" in lines[0]
    assert not (tmp_path / "merged.scores.json").exists()

    proc = _score_cli(str(path), "--no-judge", "--skip-invalid")
    assert proc.returncode == 0, proc.stderr
    assert "skipped 3 of 10 records that cannot be scored" in proc.stderr
    assert "1 x no usable qa_type" in proc.stderr and "2 x struc_info holds no ground-truth spans" in proc.stderr
    scores = json.loads((tmp_path / "merged.scores.json").read_text())
    assert scores["counts"]["invalid"] == 3 and [i["index"] for i in scores["invalid"]] == [7, 8, 9]
    assert scores["tag_miou_0.3"] == 1.0
