"""Run the doctests in every mvbench module that has them (parsers, metrics, rewards, helpers)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest


PACKAGES = ["mvbench", "mvbench.builders", "mvbench.eval", "mvbench.training", "mvbench.leaderboard",
            "mvbench.prompts", "mvbench.generation"]
# Modules needing optional heavy extras are covered by their own tests.
OPTIONAL_IMPORTS = {"torch", "transformers", "vllm", "ray", "trl", "peft", "accelerate"}


def _modules() -> list[str]:
    names = []
    for pkg_name in PACKAGES:
        pkg = importlib.import_module(pkg_name)
        names.append(pkg_name)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg_name}."):
            if info.name.startswith("mvbench.cli"):
                continue
            names.append(info.name)
    return sorted(set(names))


@pytest.mark.parametrize("name", _modules())
def test_module_doctests(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in OPTIONAL_IMPORTS:
            pytest.skip(f"{name} needs {e.name}")
        raise
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
