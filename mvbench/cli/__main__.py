"""``python -m mvbench.cli``: the ``mvbench`` command (what ``accelerate launch -m`` runs on each GPU)."""

from mvbench.cli import main

main()
