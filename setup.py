"""Map the agreed top-level folders into the single ``mvbench.*`` namespace.

``mvbench.builders`` lives in ``builders/``, ``mvbench.eval`` in ``eval/`` and so on. Subfolders are
discovered, so adding one needs no edit here: a folder with an ``__init__.py`` is a regular
subpackage, a folder of data files only (``mvbench/tasks/data``, ``prompts/tasks``...) a namespace
package that carries its files. Declaring the data folders as packages (rather than reaching into
them with ``dir/*`` globs from the parent) is what setuptools asks for: it otherwise warns, once per
folder, that an importable package is "absent from the packages configuration". Works for both
``pip install .`` and ``pip install -e .``.
"""

from setuptools import find_namespace_packages, setup

PACKAGE_DIRS = {
    "mvbench": "mvbench",
    "mvbench.builders": "builders",
    "mvbench.prompts": "prompts",
    "mvbench.eval": "eval",
    "mvbench.training": "training",
    "mvbench.leaderboard": "leaderboard",
    "mvbench.generation": "generation",
}
# Data files shipped from any package folder (prompt TOML, class lists, one-shot examples, configs).
DATA_FILES = ["*.toml", "*.json", "*.txt", "*.md", "*.yaml", "*.yml"]

packages = []
for name, folder in PACKAGE_DIRS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_namespace_packages(folder, exclude=["*__pycache__*"])]

setup(
    packages=packages,
    package_dir=PACKAGE_DIRS,
    package_data={"": DATA_FILES},
)
