"""A leaderboard as the renderers draw it: ranked runs, paper rows apart, caveats, comparisons.

Paper rows are ranked **separately** from local runs, always. The published numbers were scored
by the leaderboard on the private ground truth of the official test set with a GPT-4.1 judge; the
public test file has no answers, so no local run is scored on those records, and a local run
usually differs in data (fixture or train/val builds, ``--limit``) and in metrics (a skipped judge
ranks as 0.0). One dense ranking over both would rank, for instance, a rule baseline on fixture
data above GPT-4.1. Both tables are shown, each with its own ranks, and the split is stated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mvbench.eval.bootstrap import BootstrapConfig
from mvbench.leaderboard.collect import check_comparable, disambiguate_names
from mvbench.leaderboard.compare import Comparison, compare_all
from mvbench.leaderboard.ranking import Entry, rank
from mvbench.leaderboard.reference import paper_entries

PAPER_FLAG = "reported, not reproduced: the paper's test-set numbers (private ground truth, GPT-4.1 judge)"
PAPER_NOTE = ("paper rows are ranked separately from these runs: they were scored on the official test set's "
              "private ground truth with a GPT-4.1 judge, which no local run is")

# What each caveat code means, for the page's banner and the notes of Markdown/CSV.
CAVEATS = {
    "fixture": "Fixture data: generated test trees, not real videos. These numbers say nothing about a model.",
    "judge": "Judge skipped: the DVC/VS/RC llm columns are missing and rank as 0.0 (as the official app fills "
             "them), so ranks reward nothing there.",
    "subset": "Subset (--limit/--tasks/--sources): not the whole split; not comparable with full-split numbers.",
    "incomplete": "Incomplete run: failed requests are scored as empty answers.",
    "mixed": "Different datasets are ranked together (--allow-mixed): these ranks do not compare models.",
    "unverified": "Unverified data: a file without a dataset fingerprint cannot be checked against the others.",
    "paper": "Paper rows: reported, not reproduced, and ranked separately (official test set, private "
             "ground truth, GPT-4.1 judge).",
}


@dataclass
class Board:
    """What every renderer draws.

    Attributes:
        runs: local runs, ranked among themselves.
        paper: published rows, ranked among themselves (empty without ``--with-paper``).
        notes: board-wide notes (loading notes, comparability, the paper split).
        comparisons: paired differences between runs (empty unless asked for).
        title: the page title.
    """

    runs: list[Entry]
    paper: list[Entry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    title: str = "MedVidBench leaderboard"

    @property
    def entries(self) -> list[Entry]:
        """Runs then paper rows."""
        return [*self.runs, *self.paper]

    def caveats(self) -> list[tuple[str, str, list[str]]]:
        """Each caveat raised by some row: (code, explanation, names of the rows it concerns)."""
        out = []
        for code, text in CAVEATS.items():
            names = [e.name for e in self.entries if any(c == code for c, _ in e.flags)]
            if names:
                out.append((code, text, names))
        return out

    def interval_note(self) -> str | None:
        """How the runs' intervals were drawn, or None when no run has any."""
        infos = [e.interval_info for e in self.runs if e.interval_info]
        if not infos:
            return None
        settings = sorted({(i.get("resamples"), i.get("seed"), i.get("unit"), i.get("confidence")) for i in infos},
                          key=str)
        described = "; ".join(f"{n} draws, seed {s}, {'whole videos' if u == 'video' else 'single samples'}"
                              for n, s, u, _ in settings)
        level = settings[0][3] or 0.95
        missing = [e.name for e in self.runs if not e.interval_info]
        text = (f"Intervals: {round(level * 100)}% percentile bootstrap ({described}), stratified by data source; "
                "each draw recomputes the metric with the task's own pooling; a task with a single video gets no "
                "interval (n/a).")
        if missing:
            text += f" No intervals in the results of: {', '.join(missing)}."
        return text


def build_board(entries: list[Entry], *, with_paper: bool = False, allow_mixed: bool = False,
                allow_incomplete: bool = False, paired: bool = False,
                bootstrap: BootstrapConfig = BootstrapConfig(), title: str = "MedVidBench leaderboard") -> Board:
    """Check, rank and annotate runs (and the paper rows) for rendering.

    Args:
        entries: loaded runs (:func:`mvbench.leaderboard.load_entry`).
        with_paper: add the published rows, ranked separately.
        allow_mixed / allow_incomplete: see :func:`mvbench.leaderboard.check_comparable`.
        paired: compute paired differences between every two runs from their per-sample files.
        bootstrap: draws and seed of the paired comparisons.
        title: the page title.

    Raises:
        InputError: runs that do not compare (see ``check_comparable``), or a paired comparison
            of runs without per-sample files or on different records.
    """
    notes = [n for e in entries for n in e.notes] + check_comparable(entries, allow_mixed, allow_incomplete)
    paper = paper_entries() if with_paper else []
    for p in paper:
        p.flag("paper", PAPER_FLAG)
    if paper and entries:
        notes.append(PAPER_NOTE)
    disambiguate_names([*entries, *paper])
    runs = rank(list(entries))
    comparisons = compare_all(runs, bootstrap) if paired and len(runs) > 1 else []
    return Board(runs, rank(paper), notes, comparisons, title)
