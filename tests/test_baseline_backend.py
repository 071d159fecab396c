"""The prior baseline answers every task in a form its task's parser reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PIL import Image

from mvbench.eval.backends.base import GenerationRequest
from mvbench.eval.backends.baseline import PriorBaselineBackend
from mvbench.tasks import task_for_qa_type

QUESTIONS = {
    "tal": "Possible actions are: Check, Handwashing. Find the segment(s) where Check happens.",
    "stg": "What are the bounding boxes of the forceps sampled every 4 seconds from 1 to 9 seconds?",
    "next_action": "The procedure includes the following step list: ['cutting', 'tying']. What comes next?",
    "skill_assessment": "Score the following aspects (1,2,3,4,5 scale): Respect for tissue.",
    "cvs_assessment": "Assign a score (0,1,2) to each criterion.",
    "dense_captioning": "Create an event list restricted to actions in ['check', 'document'].",
    "video_summary": "Summarize the video.",
    "region_caption": "What is the object in the box doing?",
}


@pytest.fixture
def frames(tmp_path: Path) -> tuple[str, ...]:
    paths = []
    for i in range(4):
        p = tmp_path / f"{i}.jpg"
        Image.new("RGB", (200, 100)).save(p)
        paths.append(str(p))
    return tuple(paths)


def _answer(qa_type: str, question: str, frames) -> str:
    request = GenerationRequest(uid="u", prompt=question, frames=frames, fps=0.5, qa_type=qa_type)
    return asyncio.run(PriorBaselineBackend().generate(request))


@pytest.mark.parametrize("qa_type", sorted(QUESTIONS))
def test_answers_parse_with_the_task_parser(qa_type: str, frames) -> None:
    answer = _answer(qa_type, QUESTIONS[qa_type], frames)
    parsed = task_for_qa_type(qa_type).parse(answer)
    assert answer and (parsed or task_for_qa_type(qa_type).free_text), (qa_type, answer)


def test_stg_answer_follows_the_asked_times(frames) -> None:
    assert _answer("stg", QUESTIONS["stg"], frames).count("seconds: [50.00, 25.00, 150.00, 75.00]") == 3
    second = _answer("stg", "Track the hook from 0.0 to 2.0 seconds, predicting its location every second.", frames)
    assert second.startswith("0.0 seconds:") and second.count("seconds:") == 3
    assert _answer("tal", QUESTIONS["tal"], frames) == "0.0-8.0 seconds."  # 4 frames at 0.5 fps
