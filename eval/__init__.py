"""Evaluation: harness, backends, parsers, metrics, judge and ``mvbench score``."""
