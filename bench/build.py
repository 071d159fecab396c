"""Build throughput: a multi-source fixture build with 1 and 2 workers, as ratios.

Generates the fixture raw tree of every source that has one (``mvbench.builders.fixtures``), then
(into fresh output folders, in the same run):

* a ``--plan-only`` build: planned instances per second;
* a full build: frames written per second;

each with 1 and 2 worker processes. Prints the figures and the ratio 2 workers / 1 worker (> 1:
the second worker helps). Each figure is the best of ``--repeat`` runs; the machine and its
load at the start are printed first.

    .venv/bin/python bench/build.py [--repeat 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from mvbench.builders.fixtures import fixture_sources, make_fixture
from mvbench.builders.pipeline import BuildOptions, build


def make_fixtures(base: Path, seed: int) -> list[tuple[str, Path]]:
    """Fixture raw trees of every source that has a fixture writer."""
    return [(name, make_fixture(name, base / name, seed=seed)) for name in fixture_sources()]


def timed_build(sources: list[tuple[str, Path]], workdir: Path, workers: int, plan_only: bool,
                repeat: int, seed: int) -> tuple[float, dict]:
    """Best wall time of ``repeat`` fresh builds, and the last manifest."""
    best, manifest = float("inf"), {}
    for _ in range(repeat):
        out = Path(tempfile.mkdtemp(dir=workdir))
        start = time.perf_counter()
        manifest = build(sources, BuildOptions(out=out, workers=workers, plan_only=plan_only, seed=seed))
        best = min(best, time.perf_counter() - start)
        shutil.rmtree(out)
    return best, manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from _machine import describe  # bench/ is this script's folder

    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        sources = make_fixtures(work / "raw", args.seed)
        print(f"fixtures: {len(sources)} sources ({', '.join(n for n, _ in sources)}) "
              f"in {time.perf_counter() - t0:.1f} s")
        rows = []
        for label, plan_only, unit in (("plan", True, "instances"), ("full", False, "frames")):
            rates = {}
            for workers in (1, 2):
                seconds, manifest = timed_build(sources, work, workers, plan_only, args.repeat, args.seed)
                count = manifest["records"] if plan_only else manifest["frames"]["count"]
                rates[workers] = count / seconds
                print(f"{label:4s} workers={workers}: {count} {unit} in {seconds:.2f} s "
                      f"= {rates[workers]:.1f} {unit}/s")
            rows.append((label, unit, rates[2] / rates[1]))
        for label, unit, ratio in rows:
            print(f"ratio 2 workers / 1 worker, {unit}/s ({label}): {ratio:.2f}x")


if __name__ == "__main__":
    main()
