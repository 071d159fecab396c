"""Bootstrap intervals: coverage on simulated runs with a known truth, video-level vs sample-level
resampling on correlated samples, judge metrics from stored judge scores, paired differences."""

from __future__ import annotations

import numpy as np
import pytest

from mvbench.eval.bootstrap import BootstrapConfig, bootstrap_intervals, metric_values, paired_intervals, pooling_fields
from mvbench.tasks import LEADERBOARD_KEYS


def nap_run(rng: np.random.Generator, videos: int, per_video: int, mean: float, concentration: float
            ) -> tuple[list[dict], list[dict]]:
    """NAP records of one source; a video's questions share its difficulty p_v ~ Beta(mean, concentration).

    The expected accuracy (the truth the intervals should cover) is ``mean``: every video has the
    same number of questions. A small ``concentration`` makes answers within a video strongly
    correlated (p_v near 0 or 1).
    """
    records, samples = [], []
    a, b = mean * concentration, (1 - mean) * concentration
    for v in range(videos):
        p = rng.beta(a, b)
        for _ in range(per_video):
            records.append({"qa_type": "next_action", "data_source": "AVOS", "metadata": {"video_id": f"vid{v:03d}"}})
            samples.append({"correct": float(rng.random() < p)})
    return records, samples


def test_95_percent_intervals_cover_the_truth_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(12345)
    truth, runs, covered = 0.4, 200, 0
    for i in range(runs):
        records, samples = nap_run(rng, videos=40, per_video=3, mean=truth, concentration=2.0)
        ci = bootstrap_intervals(records, samples, BootstrapConfig(resamples=300, seed=i))["metrics"]["nap_acc"]
        covered += ci["low"] <= truth <= ci["high"]
    # 200 runs: the coverage estimate has a standard error of ~1.5 points; a percentile bootstrap
    # over 40 clusters is known to run slightly below nominal.
    assert 0.88 <= covered / runs <= 0.99, covered


def test_video_resampling_is_wider_than_sample_resampling_when_samples_of_a_video_agree() -> None:
    rng = np.random.default_rng(7)
    records, samples = nap_run(rng, videos=20, per_video=8, mean=0.5, concentration=0.3)  # p_v near 0 or 1
    video = bootstrap_intervals(records, samples, BootstrapConfig(resamples=400))["metrics"]["nap_acc"]
    sample = bootstrap_intervals(records, samples, BootstrapConfig(resamples=400, unit="sample"))["metrics"]["nap_acc"]
    width_video, width_sample = video["high"] - video["low"], sample["high"] - sample["low"]
    assert width_video > 1.8 * width_sample, (video, sample)
    # ...and sample-level resampling under-covers the truth on such data, while video-level holds.
    cover = {"video": 0, "sample": 0}
    for i in range(60):
        recs, samps = nap_run(rng, videos=20, per_video=8, mean=0.5, concentration=0.3)
        for unit in cover:
            ci = bootstrap_intervals(recs, samps, BootstrapConfig(resamples=200, seed=i, unit=unit))["metrics"]["nap_acc"]
            cover[unit] += ci["low"] <= 0.5 <= ci["high"]
    assert cover["sample"] < 0.75 * 60 < 0.85 * 60 <= cover["video"], cover


def test_independent_samples_give_similar_widths() -> None:
    rng = np.random.default_rng(3)
    records, samples = nap_run(rng, videos=60, per_video=4, mean=0.5, concentration=1e6)  # p_v = 0.5 for all
    video = bootstrap_intervals(records, samples, BootstrapConfig(resamples=400))["metrics"]["nap_acc"]
    sample = bootstrap_intervals(records, samples, BootstrapConfig(resamples=400, unit="sample"))["metrics"]["nap_acc"]
    ratio = (video["high"] - video["low"]) / (sample["high"] - sample["low"])
    assert 0.75 < ratio < 1.35, ratio


def test_same_seed_same_intervals_and_settings_are_recorded() -> None:
    records, samples = nap_run(np.random.default_rng(0), videos=10, per_video=2, mean=0.5, concentration=2)
    one = bootstrap_intervals(records, samples, BootstrapConfig(resamples=50, seed=4))
    assert one == bootstrap_intervals(records, samples, BootstrapConfig(resamples=50, seed=4))
    assert one["metrics"] != bootstrap_intervals(records, samples, BootstrapConfig(resamples=50, seed=5))["metrics"]
    assert (one["resamples"], one["seed"], one["confidence"], one["unit"]) == (50, 4, 0.95, "video")
    assert one["clusters"] == 10 and set(one["metrics"]) == set(LEADERBOARD_KEYS)
    assert [k for k, v in one["metrics"].items() if v is not None] == ["nap_acc"]


def test_judge_metrics_come_from_stored_judge_scores_and_strata_keep_sources() -> None:
    records, samples = [], []
    for source, score in (("AVOS", 2), ("CoPESD", 4)):
        for v in range(6):
            records.append({"qa_type": "video_summary_gpt", "data_source": source, "metadata": {"video_id": f"{source}{v}"}})
            samples.append({a: float(score) for a in ("R2", "R3", "R8", "R5", "R4")} | {"llm": float(score)})
    assert metric_values(records, samples)["vs_llm"] == 3.0
    ci = bootstrap_intervals(records, samples, BootstrapConfig(resamples=100))["metrics"]["vs_llm"]
    # Every draw keeps six AVOS and six CoPESD videos: the mean cannot move.
    assert ci == {"low": 3.0, "high": 3.0}
    no_judge = bootstrap_intervals(records, samples, BootstrapConfig(resamples=100), point={"vs_llm": None})
    assert no_judge["metrics"]["vs_llm"] is None


def test_paired_difference_and_its_interval() -> None:
    rng = np.random.default_rng(11)
    records, base = nap_run(rng, videos=30, per_video=4, mean=0.5, concentration=1.0)
    better = [{"correct": 1.0} if s["correct"] or rng.random() < 0.3 else {"correct": 0.0} for s in base]
    same = [dict(s) for s in base]
    gap = paired_intervals(records, better, base, BootstrapConfig(resamples=300))["metrics"]["nap_acc"]
    assert gap["diff"] == pytest.approx(metric_values(records, better)["nap_acc"] - metric_values(records, base)["nap_acc"])
    assert 0 < gap["low"] <= gap["diff"] <= gap["high"]
    none = paired_intervals(records, same, base, BootstrapConfig(resamples=300))["metrics"]["nap_acc"]
    assert none == {"diff": 0.0, "low": 0.0, "high": 0.0}


def test_pooling_fields_keep_what_grouping_reads() -> None:
    rec = {"data_source": "Unknown", "qa_type": "skill_assessment", "question": "JIGSAWS suturing?", "gnd": "x",
           "answer": "y", "struc_info": [{"skill_level": "N"}], "metadata": {"video_id": "Suturing_B001", "fps": "1.0",
                                                                              "input_video_start_frame": "0"}}
    view = pooling_fields(rec)
    assert view == {"data_source": "Unknown", "qa_type": "skill_assessment",
                    "metadata": {"video_id": "Suturing_B001", "fps": "1.0"}, "question": "JIGSAWS suturing?"}


def test_config_rejects_nonsense() -> None:
    for kwargs in ({"resamples": 5}, {"confidence": 1.0}, {"unit": "frame"}):
        with pytest.raises(ValueError):
            BootstrapConfig(**kwargs)


def test_single_video_sources_are_resampled_together_and_one_video_gets_no_interval() -> None:
    records, samples = [], []
    for source, correct in (("AVOS", [0, 0, 0, 0]), ("CoPESD", [1, 0, 1, 0]), ("NurViD", [1, 1, 1, 1])):
        for c in correct:
            records.append({"qa_type": "next_action", "data_source": source, "metadata": {"video_id": source + "_v"}})
            samples.append({"correct": float(c)})
    ci = bootstrap_intervals(records, samples, BootstrapConfig(resamples=200))["metrics"]["nap_acc"]
    assert ci["low"] < 0.5 < ci["high"]  # one video per source: resampled as one stratum, not frozen
    one = bootstrap_intervals(records[:4], samples[:4], BootstrapConfig(resamples=200))
    assert one["metrics"]["nap_acc"] is None and metric_values(records[:4], samples[:4])["nap_acc"] == 0.0
