"""The machine a benchmark ran on, printed before its figures: a ratio means little without it.

``python bench/_machine.py`` prints the same line (``make bench`` runs it first).
"""

from __future__ import annotations

import os
import platform


def describe() -> str:
    """One line: CPU model, logical cores (and how many this process may use), load averages, OS, Python.

    The load average is read when called: call it at the start of a benchmark, before its own work.
    """
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    load = " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"machine: {_cpu_model()}; {cores} logical cores ({usable} usable); load average 1/5/15 min at "
            f"start: {load}; {platform.system()} {platform.release()}; Python {platform.python_version()}")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    print(describe())
