"""Leaderboard: collect results, rank models as the official app does, render tables and the page."""

from mvbench.leaderboard.board import Board, build_board
from mvbench.leaderboard.collect import check_comparable, disambiguate_names, load_entry
from mvbench.leaderboard.ranking import Entry, dense_ranks, displayed, rank
from mvbench.leaderboard.reference import paper_entries

__all__ = ["Board", "Entry", "build_board", "rank", "dense_ranks", "displayed", "load_entry", "paper_entries",
           "check_comparable", "disambiguate_names"]
