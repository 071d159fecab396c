"""The answer parsers run in linear time and give exactly the results of the original (quadratic) ones.

``tests/frozen_parsers.py`` is a verbatim copy of the parsers before the rewrite. The live parsers
must agree with it on the parity corpora (the benchmark's synthetic answers and the real records),
on hypothesis-generated text and on adversarial strings; and they must get through 1 MB hostile
answers, which took the originals hours, within a generous timeout (a hang fails; no timing is
asserted otherwise).
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvbench.tasks import captions, cvs, dvc, nap, sa, stg, tag

sys.path.insert(0, str(Path(__file__).resolve().parent))
import frozen_parsers as old  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "medvidbench-samples"
PARSERS = {"tag": (old.tag_parse, tag.parse), "stg": (old.stg_parse, stg.parse), "dvc": (old.dvc_parse, dvc.parse),
           "sa": (old.sa_parse, sa.parse), "cvs": (old.cvs_parse, cvs.parse),
           "captions": (old.captions_parse, captions.parse)}


def _search(pattern, text):
    m = pattern.search(text)
    return m.groups() if m else None


# The patterns one by one (parse() stops at the first pattern that matches, so the later ones
# would otherwise rarely be compared).
PATTERNS = {
    "tag pairs": (old._TAG_PAIR.findall, tag._PAIR.findall),
    "tag to": (old._TAG_TO.findall, tag._TO.findall),
    "tag hh:mm:ss": (old._TAG_HMS.findall, tag._HMS.findall),
    "stg timed": (old._STG_TIMED.findall, lambda t: stg._TIMED.findall(t, 0, t.rfind("]") + 1)),
    "stg raw": (old._STG_RAW.findall, stg._RAW.findall),
    "dvc entries": (old._DVC_ENTRY.findall, dvc._ENTRY.findall),
    "dvc loose": (lambda t: [old._DVC_LOOSE.findall(line) for line in t.split("\n")],
                  lambda t: [dvc._loose_line(line) for line in t.split("\n")]),
    "sa scores": (old._SA_SCORE.findall, sa._SCORE.findall),
    "sa aspects": (lambda t: [_search(old._SA_ASPECT, p.strip()) for p in t.split(",")],
                   lambda t: [_search(sa._ASPECT, p.strip()) for p in t.split(",")]),
}


def _same(a: object, b: object) -> bool:
    return repr(a) == repr(b)  # nan == nan, and types must agree too


def assert_parity(text: str) -> None:
    """Old and new parsers agree on ``text`` (where the old one did not crash, see below)."""
    for name, (before, after) in PARSERS.items():
        try:
            expected = before(text)
        except (ValueError, OverflowError):  # int() beyond 4300 digits, float(huge int): see test below
            after(text)  # must not raise any more
            continue
        got = after(text)
        assert _same(got, expected), f"{name} differs on {text[:200]!r}: {got!r} != {expected!r}"
    for name, (before, after) in PATTERNS.items():
        assert before(text) == after(text), f"{name} differs on {text[:200]!r}"
    assert nap.parse(text) == text.strip()


# ---- parity corpora ----------------------------------------------------------------------------

def _bench_answers() -> list[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import score as bench_score  # the corpus behind bench/score.py and the parity snapshots

    texts = []
    for rec in bench_score.make_merged(0).values():  # seed 0: the file bench/score.py scores
        texts += [rec["answer"], rec["gnd"]]
    return texts


def _real_answers() -> list[str]:
    oneshot = json.loads((DATA / "oneshot_examples.json").read_text(encoding="utf-8"))
    texts = [text for example in oneshot.values() for text in (example["question"], example["answer"])]
    for path in sorted(DATA.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for rec in data if isinstance(data, list) else []:
            texts += [turn["value"] for turn in rec.get("conversations", [])]
    return texts


def test_parity_on_the_benchmark_and_real_answers() -> None:
    texts = _bench_answers() + _real_answers()
    assert len(texts) > 12000
    parsed = 0
    for text in texts:
        assert_parity(text)
        parsed += bool(tag.parse(text) or stg.parse(text) or dvc.parse(text) or sa.parse(text).aspects)
    assert parsed > 4000  # the corpus exercises the parsers, not only their empty results


def test_parity_with_the_scores_of_whole_records() -> None:
    # DVC's flatten (rewritten as a sweep) on every benchmark answer, through the scorer's path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import score as bench_score

    for rec in bench_score.make_merged(1).values():
        segments = dvc.parse(rec["answer"])
        assert _same(dvc.flatten(segments), old.dvc_flatten(segments))


# ---- fuzzing -----------------------------------------------------------------------------------

PIECES = ["0", "1", "2", "5", "9", "12", "3.5", "0.25", ".", "-", "–", " ", "  ", "\n", "\t", "\r", ":", ",", "/5",
          "/", "[", "]", "[[", "]]", "seconds", " seconds:", " seconds: ", "second", "s", "S", "to", " to ", "TO",
          "from ", "is from", "takes place from", "Start", "Time", "**Start Time:**", "Start (Time)", "Time Range:",
          "Time Interval:", "**Description:**", "R2", "R3", "R8", "R5", "**R4**", "=", "two structures",
          "Two structure", "cystic plate", "hepatocystic triangle", "Respect for tissue", "nan", "inf", "x", "٣",
          "00:00:18", "1:2:3", "1-2", "1 - 2", "1–2", "1.0-2.0 seconds: ", "\n3-4 seconds: ", "[1, 2, 3, 4]",
          "[[1, 2, 3, 4]]", ": 3/5", "2/5", "1/55/5", "9" * 300]
RUNS = st.builds(lambda c, n: c * n, st.sampled_from("0123456789 -:.\n,/"), st.integers(1, 40))
TEXT = st.one_of(st.text(max_size=80),
                 st.lists(st.one_of(st.sampled_from(PIECES), RUNS, st.text(max_size=3)), max_size=40).map("".join))


@settings(max_examples=1000, deadline=None)
@given(TEXT)
def test_parity_on_generated_text(text: str) -> None:
    assert_parity(text)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 1.0, 2.0, 2.5, 3.0, 5.0, 7.0, 10.0, math.inf]),
                          st.sampled_from([0.0, 1.0, 2.0, 2.5, 3.0, 5.0, 7.0, 10.0, math.inf])), max_size=10))
def test_flatten_parity_on_generated_segments(pairs: list[tuple[float, float]]) -> None:
    segments = [{"start": a, "end": b, "caption": f"c{i}"} for i, (a, b) in enumerate(pairs)]
    assert _same(dvc.flatten(segments), old.dvc_flatten(segments))


def test_parity_on_random_adversarial_mixtures() -> None:
    rng = random.Random(8)
    for _ in range(800):
        text = "".join(rng.choice(PIECES) if rng.random() < 0.8 else rng.choice("0123456789 -:.\n") * rng.randint(1, 30)
                       for _ in range(rng.randint(0, 40)))
        assert_parity(text)


def hostile(n: int) -> dict[str, str]:
    """Answers of about ``n`` characters that make backtracking or rescanning parsers quadratic."""
    def rep(unit: str, tail: str = "") -> str:
        return (unit * (n // len(unit) + 1))[: max(0, n - len(tail))] + tail

    return {
        "digits": rep("1"), "digits then a dash": rep("1", "-1"), "spaces": rep(" ", "x"), "newlines": rep("\n", "x"),
        "unclosed boxes": rep("1 seconds: ["), "unclosed box bodies": rep("1 seconds: [1"), "raw boxes": rep("[[1,"),
        "loose heads after the last dash": "-x " + rep("Start 1–1 seconds "), "loose heads": rep("Start Time 1–1 seconds "),
        "descriptions": rep("Time Range: 1 – 2 seconds **Description:**"), "one long name": rep("a", ":x"),
        "colons": rep(":"), "names": rep("a:"), "slashes": rep("1/"), "scores": rep("1/5"), "judge keys": rep("R2 "),
        "judge key then spaces": "R2" + rep(" "), "cvs key then spaces": "two structures:" + rep(" "),
        "from": rep("from "), "to": rep(" to "), "numbers to": rep("1 to "), "clock times": rep("1:1:1 "),
        "clock times to": rep("1:1:1 to "), "entry lookaheads": rep("\n1-1 seconds"), "caption of digits": "1-1 seconds: " + rep("\n1"),
        "dots": rep("1."), "dashes": rep("1-"), "spaced dashes": rep("1 - "), "spaced digits": rep(" 1"),
        "4300-digit scores": rep("9" * 4300 + "/5,"), "4300-digit hours": rep("9" * 4300 + ":1:1 to 1:1:1 "),
        "seconds": rep("seconds"), "open brackets": rep(" seconds: ["), "start times": rep("**Start Time:**"),
        "unicode digits": rep("٣"), "many entries": rep("1.0-2.0 seconds: x\n"), "many boxes": rep("1.0 seconds: [1, 2, 3, 4] "),
        "many segments": rep("1.0-2.0, "), "many aspects": rep("Respect for tissue: 3/5, "),
        "overlapping events": "".join(f"{i}-{i + 40000} seconds: c{i}\n" for i in range(n // 28)),
    }


def test_parity_on_small_hostile_answers() -> None:
    for n in (1, 7, 60, 500):  # (the originals are quadratic: larger sizes take long)
        for name, text in hostile(n).items():
            assert_parity(text)
            assert_parity(text[::-1])


def test_numbers_beyond_the_int_conversion_limit_no_longer_crash() -> None:
    huge = "9" * 5000
    with pytest.raises(ValueError):  # the original parsers crashed the whole scorer here
        old.sa_parse(f"Respect for tissue: {huge}/5")
    answer = sa.parse(f"Respect for tissue: {huge}/5, Time and motion: 2/5")
    assert answer.aspects == {"Respect for tissue": math.inf, "Time and motion": 2}
    assert answer.level == "expert"  # as the unlimited integer gives (its mean overflows to inf)
    assert sa.parse("Respect for tissue: " + "0" * 5000 + "3/5").aspects == {"Respect for tissue": 3}
    with pytest.raises(OverflowError):
        old.tag_parse(f"00:00:{'9' * 400} to 00:00:01")
    # ("…9 to 00" is also an "X to Y" segment, as in the official)
    assert tag.parse(f"00:00:{'9' * 400} to 00:00:01") == [(math.inf, 0.0), (math.inf, 1.0)]
    assert tag.parse(f"00:00:{huge} to 00:00:01") == [(math.inf, 0.0), (math.inf, 1.0)]
    assert cvs.parse(f"Two structures: {huge}") == {"two_structures": math.inf}
    assert captions.parse(f"R2: {huge}") == {"R2": math.inf}
    record = {"struc_info": [{"skill_level": "E", "skill_scores": {"Respect for tissue": 3}}], "answer": f"x: {huge}/5"}
    assert sa.score_sample(record)["level_correct"] == 1.0


# ---- linear time -------------------------------------------------------------------------------

MEGABYTE = 1_000_000


def _parse_all(parser: str) -> None:
    """Subprocess body: parse (and score) every 1 MB hostile answer with one parser."""
    module = {"tag": tag, "stg": stg, "dvc": dvc, "sa": sa, "cvs": cvs, "nap": nap, "captions": captions}[parser]
    for text in hostile(MEGABYTE).values():
        module.parse(text)
        if parser in ("tag", "stg", "dvc", "sa", "cvs"):
            gt = {"tag": [{"spans": [{"start": 1, "end": 5}]}], "stg": [{"bbox_dict": {"1.0": [0, 0, 5, 5]}}],
                  "dvc": [[{"start": 0, "end": 9, "caption": "c"}]],
                  "sa": [{"skill_level": "E", "skill_scores": {"Respect for tissue": 3}}],
                  "cvs": [{"cvs_scores": {"two_structures": 1}}]}[parser]
            module.score_sample({"metadata": {"fps": "1.0", "video_id": "v"}, "struc_info": gt, "answer": text})
    print("parsed", len(hostile(1)))


@pytest.mark.slow
@pytest.mark.parametrize("parser", ["tag", "stg", "dvc", "sa", "cvs", "nap", "captions"])
def test_one_megabyte_hostile_answers_parse_in_linear_time(parser: str) -> None:
    # ~45 answers of 1 MB each parse and score in a few seconds in all; the quadratic parsers took
    # 18 s for 10 kB of digits (so hours for 1 MB). The timeout is far above the linear cost even
    # on a loaded machine, and far below the quadratic one.
    proc = subprocess.run([sys.executable, __file__, parser], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("parsed "), proc.stdout


if __name__ == "__main__":
    _parse_all(sys.argv[1])
