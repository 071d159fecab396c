"""Each task's reward hook, on the official one-shot example answers (medvidbench-format.md §5) and on garbled ones.

The ground truth of each example is the structure its answer encodes (written out here), so the
official answer must earn the full reward, a garbled answer less, and another task's record None.
"""

from __future__ import annotations

import pytest

from mvbench.tasks import TASKS, task_for_qa_type
from tests.training_helpers import EXAMPLES, GARBLED, GROUND_TRUTH, META
from tests.training_helpers import gt_record as _record


@pytest.mark.parametrize("qa_type", sorted(GROUND_TRUTH))
def test_the_official_example_answer_earns_the_full_reward(qa_type: str) -> None:
    task = task_for_qa_type(qa_type)
    assert task.reward(_record(qa_type), EXAMPLES[qa_type]["answer"]) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("qa_type", sorted(GROUND_TRUTH))
def test_garbled_answers_earn_less_and_stay_in_range(qa_type: str) -> None:
    task = task_for_qa_type(qa_type)
    for garbage in GARBLED:
        value = task.reward(_record(qa_type), garbage)
        if task.name == "NAP":  # as the leaderboard, any text maps to its nearest class: right or wrong
            assert value in (0.0, 1.0), (garbage[:20], value)
        else:
            assert value is not None and 0.0 <= value < 1.0, (qa_type, garbage[:20], value)
    if task.name == "NAP":
        assert task.reward(_record(qa_type), "cutting") == 0.0


@pytest.mark.parametrize("qa_type", sorted(GROUND_TRUTH))
def test_another_tasks_record_is_not_rewarded(qa_type: str) -> None:
    task = task_for_qa_type(qa_type)
    for other_name, other in TASKS.items():
        if other is not task:
            assert other.reward(_record(qa_type), EXAMPLES[qa_type]["answer"]) is None, (other_name, qa_type)


def test_partial_answers_earn_partial_rewards() -> None:
    sa = TASKS.get("SA")
    half = "Respect for tissue: 2/5, Suture/needle handling: 1/5, Time and motion: 1/5"
    assert sa.reward(_record("skill_assessment"), half) == pytest.approx(0.5)  # omitted aspects cost
    cvs = TASKS.get("CVS")
    assert cvs.reward(_record("cvs_assessment"), "Two structures: 2, Cystic plate: 0") == pytest.approx(1 / 3)
    tag = TASKS.get("TAG")
    two = tag.reward(_record("tal"), "1.1-3.0, 10.0-20.0 seconds.")  # a spurious extra segment costs
    assert two == pytest.approx(0.5)
    stg = TASKS.get("STG")
    first_only = stg.reward(_record("stg"), "1.0 seconds: [235.08, 261.2, 561.58, 1005.62]")
    assert 0.9 < first_only <= 1.0  # the official rule carries the last box forward


def test_nap_without_an_official_list_needs_the_context_for_nearest_class() -> None:
    nap = TASKS.get("NAP")
    recs = [{"metadata": META, "qa_type": "next_action", "struc_info": [{"next_action": a}], "question": "q",
             "gnd": a, "data_source": "EgoSurgery"} for a in ("incision", "suturing the skin", "hemostasis")]
    context = nap.build_context(recs)
    assert nap.reward(recs[1], "suturing the skin", context) == 1.0
    assert nap.reward(recs[1], "incision", context) == 0.0
    assert nap.reward(recs[1], "suturing the skin") == 1.0  # no context: exact answers only
    assert nap.reward(recs[1], "suture skin") == 0.0


@pytest.mark.parametrize("qa_type", sorted(GROUND_TRUTH))
def test_format_check_accepts_the_official_answer_and_refuses_garbage(qa_type: str) -> None:
    task = task_for_qa_type(qa_type)
    verdict = task.format_ok(EXAMPLES[qa_type]["answer"])
    if task.name not in ("TAG", "STG", "DVC"):  # no strict answer format: no format penalty
        assert verdict is None
        return
    assert verdict is True
    for garbage in GARBLED:
        assert task.format_ok(garbage) is False, (qa_type, garbage[:20])


def test_format_check_refuses_parseable_but_malformed_answers() -> None:
    tag, stg = TASKS.get("TAG"), TASKS.get("STG")
    assert tag.format_ok("The action is from 1.1 to 3.0 seconds.") is False  # parses, not the format
    assert tag.format_ok("3.0-1.1 seconds.") is False                        # reversed span
    assert stg.format_ok("1.0 seconds: [561.58, 261.2, 235.08, 1005.62]") is False  # x2 < x1
    assert stg.format_ok("1.0 seconds: [1, 2, 3, 4] 1.0 seconds: [1, 2, 3, 4]") is False  # a time twice
