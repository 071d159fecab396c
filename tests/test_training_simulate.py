"""The paper's normalisation claim, simulated with no model through TRL's own advantage code."""

from __future__ import annotations

import math
from dataclasses import replace

from PIL import Image

from mvbench.training.simulate import DEFAULT_CONDITIONS, SimConfig, compare, plot, summary, weak_baseline_config


def test_raw_batch_scaled_updates_concentrate_on_easy_pairs_and_normalised_progress_is_balanced(tmp_path):
    config = SimConfig()
    raw, norm, group = compare(config, DEFAULT_CONDITIONS[:3])
    easy = [i for i, p in enumerate(config.pairs) if p.median >= 0.5]   # CoPESD STG 0.5, CoPESD VS 0.6
    hard = [i for i, p in enumerate(config.pairs) if p.median <= 0.12]  # EgoSurgery STG 0.12, NurViD TAG 0.08
    assert sum(raw.update_share[i] for i in easy) > 0.5                 # 2 of 6 pairs take most of the update
    assert min(raw.gap_closed[i] for i in easy) > 3 * max(raw.gap_closed[i] for i in hard)
    assert raw.balance < 0.3
    assert norm.balance > 0.85 and max(norm.update_share) < 0.2
    assert min(norm.gap_closed[i] for i in hard) > 2 * max(raw.gap_closed[i] for i in hard)
    # With group-std advantages each group is rescaled anyway: the raw run is already balanced, so
    # the per-task normalisation can only act through batch (or no) std scaling.
    assert group.balance > 0.85
    numbers = summary(config, [raw, norm, group])
    assert [c["label"] for c in numbers["conditions"]] == [c[2] for c in DEFAULT_CONDITIONS[:3]]
    png = plot(config, [raw, norm, group], tmp_path / "sim.png", "test")
    with Image.open(png) as img:
        assert img.size[0] > 500


def test_with_a_weak_baseline_the_floored_normalisation_stays_stable_and_still_helps():
    config = replace(weak_baseline_config(), steps=200)
    raw, norm = compare(config, DEFAULT_CONDITIONS[:2])
    weak = [i for i, p in enumerate(config.pairs) if p.mu0 is not None]
    assert len(weak) == 4
    for result in (raw, norm):
        assert all(math.isfinite(g) and -0.05 < g <= 1.0 for g in result.gap_closed)  # no divergence
    mean = lambda r: sum(r.gap_closed[i] for i in weak) / len(weak)  # noqa: E731
    assert mean(norm) > 1.5 * mean(raw)
    assert norm.balance > 3 * raw.balance
