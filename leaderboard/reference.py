"""Reference rows: the MedVidBench results published on the MedGRPO project page (current version).

These are test-set numbers (medvidbench-format.md §9); compare them only with runs on the official
test set, never with fixture builds.
"""

from __future__ import annotations

from mvbench.tasks import LEADERBOARD_KEYS
from mvbench.leaderboard.ranking import Entry

# model: CVS, NAP, SA, STG, TAG@0.3, TAG@0.5, DVC F1, DVC llm, VS llm, RC llm
_PAPER_ORDER = ("cvs_acc", "nap_acc", "sa_acc", "stg_miou", "tag_miou_0.3", "tag_miou_0.5", "dvc_f1",
                "dvc_llm", "vs_llm", "rc_llm")
PAPER_RESULTS: dict[str, tuple[float, ...]] = {
    "GPT-4.1": (0.018, 0.250, 0.087, 0.014, 0.096, 0.005, 0.101, 2.438, 2.490, 2.080),
    "Gemini-2.5-Flash": (0.101, 0.228, 0.107, 0.047, 0.045, 0.021, 0.084, 2.387, 2.352, 1.912),
    "VideoChat-R1.5-7B": (0.000, 0.270, 0.006, 0.000, 0.009, 0.005, 0.026, 1.723, 3.034, 3.086),
    "Qwen2.5VL-7B": (0.105, 0.151, 0.010, 0.020, 0.006, 0.068, 0.075, 2.512, 2.452, 2.090),
    "Surg-CholecT50 (NVIDIA)": (0.000, 0.302, 0.000, 0.000, 0.019, 0.013, 0.051, 1.945, 2.101, 2.986),
    "uAI-NEXUS-MedVLM-1.0a-7B-SFT": (0.894, 0.442, 0.218, 0.177, 0.142, 0.091, 0.165, 3.665, 3.596, 2.757),
    "uAI-NEXUS-MedVLM-1.0a-7B-RL": (0.896, 0.405, 0.254, 0.202, 0.216, 0.156, 0.214, 3.797, 4.184, 3.442),
    "Qwen3VL-4B": (0.000, 0.178, 0.006, 0.000, 0.039, 0.034, 0.128, 1.939, 2.926, 2.853),
    "uAI-NEXUS-MedVLM-1.0b-4B-SFT": (0.895, 0.466, 0.270, 0.133, 0.465, 0.403, 0.435, 3.862, 4.180, 3.752),
    "uAI-NEXUS-MedVLM-1.0b-4B-RL": (0.898, 0.473, 0.285, 0.176, 0.504, 0.441, 0.480, 3.950, 4.227, 3.861),
    "GPT-5.4": (0.164, 0.393, 0.267, 0.004, 0.086, 0.055, 0.178, 3.403, 3.976, 3.714),
    "Gemini-3.1-flash-lite": (0.242, 0.406, 0.225, 0.059, 0.072, 0.049, 0.174, 3.198, 3.737, 3.492),
    "Qwen3.5-4B": (0.309, 0.231, 0.276, 0.051, 0.074, 0.040, 0.142, 2.699, 3.491, 3.037),
    "uAI-NEXUS-MedVLM-1.0c-4B-SFT": (0.897, 0.576, 0.354, 0.190, 0.482, 0.429, 0.451, 3.741, 4.238, 3.746),
}
assert set(_PAPER_ORDER) == set(LEADERBOARD_KEYS)


def paper_entries() -> list[Entry]:
    """The published rows as leaderboard entries (source ``paper``)."""
    return [Entry(name, dict(zip(_PAPER_ORDER, values)), source="paper") for name, values in PAPER_RESULTS.items()]
