"""Every answer parser accepts any string without raising; the modules' doctests pass."""

import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvbench.tasks import base, captions as caption, common, cvs, dvc, nap, rc, sa, stg, tag, vs

PARSERS = [tag.parse, stg.parse, nap.parse, sa.parse, cvs.parse, dvc.parse, caption.parse]

# Text biased towards what the parsers look for: digits, huge numbers, nan/inf, separators.
PIECES = st.sampled_from(["0", "1.5", "9" * 400, "1e999", "nan", "inf", "-", "–", " to ", ":", ",", "[", "]",
                          "[[", "]]", " seconds: ", "seconds", "/5", "\n", "R2: ", "**R4**", "Two structures: ",
                          "cystic plate: ", "00:00:18", "Respect for tissue: ", "\u0000", "手", "\ud7ff", " "])
TEXT = st.one_of(st.text(), st.lists(st.one_of(PIECES, st.text(max_size=3)), max_size=40).map("".join))


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_parsers_never_raise(text):
    for parse in PARSERS:
        parse(text)


@pytest.mark.parametrize("parse", PARSERS)
def test_parsers_accept_non_strings(parse):
    for value in (None, 12, ["a"], {"x": 1}):
        parse(value)


@settings(max_examples=100, deadline=None)
@given(TEXT)
def test_scorers_never_raise_on_any_answer(text):
    base = {"metadata": {"fps": "0.5", "video_id": "v"}, "question": "q", "gnd": "tying",
            "data_source": "AVOS", "answer": text}
    tag.score_sample({**base, "struc_info": [{"spans": [{"start": 1, "end": 5}]}]})
    stg.score_sample({**base, "struc_info": [{"bbox_dict": {"1.0": [0, 0, 5, 5], "5": [1, 1, 4, 4]}}]})
    dvc.score_sample({**base, "struc_info": [[{"start": 0, "end": 9, "caption": "c"}]]})
    dvc.judge_pairs({**base, "struc_info": [[{"start": 0, "end": 9, "caption": "c"}]]})
    sa.score_sample({**base, "struc_info": [{"skill_level": "E", "skill_scores": {"Respect for tissue": 3}}]})
    cvs.score_sample({**base, "struc_info": [{"cvs_scores": {"two_structures": 1}}]})
    if text.strip() in ("cutting", "tying", "suturing"):
        nap.score_sample(base)


@pytest.mark.parametrize("module", [base, caption, common, cvs, dvc, nap, rc, sa, stg, tag, vs])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.failed == 0
