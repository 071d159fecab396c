"""Leaderboard: aggregate results, rank models, render tables."""
