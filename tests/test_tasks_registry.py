"""The task registry: 8 tasks, exactly the 11 official qa_types, prompts and answer formats."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mvbench import prompts
from mvbench.registry import Registry
from mvbench.tasks import OFFICIAL_QA_TYPES, TASKS, qa_type_for, task_for_qa_type
from mvbench.tasks.base import preambles

EXPECTED_QA_TYPES = {
    "tal", "stg", "next_action", "cvs_assessment", "skill_assessment",
    "dense_captioning_gpt", "dense_captioning_gemini", "video_summary_gpt", "video_summary_gemini",
    "region_caption_gpt", "region_caption_gemini",
}


def test_exactly_eleven_official_qa_types() -> None:
    assert len(OFFICIAL_QA_TYPES) == 11
    assert set(OFFICIAL_QA_TYPES) == EXPECTED_QA_TYPES
    assert sorted(TASKS) == ["CVS", "DVC", "NAP", "RC", "SA", "STG", "TAG", "VS"]


def test_qa_types_map_to_their_task(samples_dir: Path) -> None:
    oneshot = json.loads((samples_dir / "oneshot_examples.json").read_text(encoding="utf-8"))
    assert set(oneshot) == EXPECTED_QA_TYPES  # the official one-shot file has one per qa_type
    mapping = {q: task_for_qa_type(q).name for q in oneshot}
    assert mapping["tal"] == "TAG" and mapping["region_caption_gemini"] == "RC"
    assert task_for_qa_type("dense_captioning").name == "DVC"  # unsuffixed forms also appear
    with pytest.raises(KeyError, match="unknown qa_type"):
        task_for_qa_type("captioning")


def test_format_answer_reproduces_official_answers(samples_dir: Path) -> None:
    oneshot = json.loads((samples_dir / "oneshot_examples.json").read_text(encoding="utf-8"))
    sa = TASKS.get("SA").format_answer([{"skill_scores": {
        "Respect for tissue": 2, "Suture/needle handling": 1, "Time and motion": 1,
        "Flow of operation": 2, "Overall performance": 1, "Quality of final product": 3}}])
    assert sa == oneshot["skill_assessment"]["answer"]
    cvs = TASKS.get("CVS").format_answer([{"cvs_scores": {"two_structures": 2, "cystic_plate": 1,
                                                           "hepatocystic_triangle": 0}}])
    assert cvs == oneshot["cvs_assessment"]["answer"]
    stg = TASKS.get("STG").format_answer([{"bbox_dict": {
        "1.0": [235.08, 261.2, 561.58, 1005.62], "5.0": [274.26, 261.2, 561.58, 1005.62]}}])
    assert stg == oneshot["stg"]["answer"]
    tag = TASKS.get("TAG").format_answer([{"action": "Disinfect skin", "spans": [{"start": 1.1, "end": 3.0}]}])
    assert tag == oneshot["tal"]["answer"]
    dvc = TASKS.get("DVC").format_answer([[{"start": 36.0, "end": 49.0, "caption":
                                            oneshot["dense_captioning_gpt"]["answer"].split(" seconds: ", 1)[1]}]])
    assert dvc == oneshot["dense_captioning_gpt"]["answer"]
    assert TASKS.get("NAP").format_answer([{"next_action": "tying"}]) == oneshot["next_action"]["answer"]


def test_real_trainval_answers_match_their_struc_info(samples_dir: Path) -> None:
    recs = json.loads((samples_dir / "trainval_4_records.json").read_text(encoding="utf-8"))
    recs += json.loads((samples_dir / "trainval_dvc_gemini_avos.json").read_text(encoding="utf-8"))
    checked = 0
    for r in recs:
        task = task_for_qa_type(r["qa_type"])
        if task.name in ("TAG", "STG", "DVC"):
            assert task.format_answer(r["struc_info"]) == r["conversations"][1]["value"], r["id"]
            checked += 1
    assert checked == 4


def test_every_task_has_prompts_and_question_composition() -> None:
    rng = random.Random(0)
    for name, task in TASKS.items():
        templates = task.templates()
        assert len(templates) >= 2, name
        assert task.prompt_version
    q = TASKS.get("STG").question("CoPESD", rng, object="forceps", start=1, end=7, every="every 4 seconds")
    assert q.split(". ")[0] in " ".join(preambles("CoPESD")) or q.startswith("You are")
    assert "forceps" in q and "4" in q
    with pytest.raises(ValueError, match="missing"):
        TASKS.get("STG").question("CoPESD", rng, object="forceps")


def test_question_choice_is_deterministic() -> None:
    fields = dict(actions="a, b", action="a", procedure="P", actions_or="a or b")
    q1 = [TASKS.get("TAG").question("NurViD", random.Random(7), **fields) for _ in range(3)]
    q2 = [TASKS.get("TAG").question("NurViD", random.Random(7), **fields) for _ in range(3)]
    assert q1 == q2


def test_qa_type_for_generators() -> None:
    assert qa_type_for("RC", "gpt-4.1") == "region_caption_gpt"
    assert qa_type_for("VS", "gemini-2.5-flash") == "video_summary_gemini"
    assert qa_type_for("CVS", "template") == "cvs_assessment"


def test_registry_rejects_duplicates_and_suggests() -> None:
    r: Registry[int] = Registry("widget")
    r.register("alpha", 1)
    with pytest.raises(ValueError, match="already registered"):
        r.register("alpha", 2)
    with pytest.raises(KeyError, match="Did you mean 'alpha'"):
        r.get("alpha_")
    r.freeze()
    with pytest.raises(RuntimeError):
        r.register("beta", 3)


def test_prompt_hash_changes_with_content() -> None:
    assert prompts.prompt_hash("tasks/tag") != prompts.prompt_hash("tasks/stg")
    assert len(prompts.prompt_hash()) == 16
