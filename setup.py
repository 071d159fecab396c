"""Map the agreed top-level folders into the single ``mvbench.*`` namespace.

``mvbench.builders`` lives in ``builders/``, ``mvbench.eval`` in ``eval/`` and so on. Subpackages
are discovered, so adding a folder with an ``__init__.py`` needs no edit here. Works for both
``pip install .`` and ``pip install -e .``.
"""

from setuptools import find_packages, setup

PACKAGE_DIRS = {
    "mvbench": "mvbench",
    "mvbench.builders": "builders",
    "mvbench.prompts": "prompts",
    "mvbench.eval": "eval",
    "mvbench.training": "training",
    "mvbench.leaderboard": "leaderboard",
    "mvbench.generation": "generation",
}

packages = []
for name, folder in PACKAGE_DIRS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(
    packages=packages,
    package_dir=PACKAGE_DIRS,
    package_data={"mvbench": ["tasks/data/*.json"],
                  "mvbench.prompts": ["**/*.toml", "**/*.txt", "**/*.md", "**/*.json"],
                  "mvbench.training": ["configs/**/*"],
                  "mvbench.generation": ["*.toml"]},
    include_package_data=True,
)
