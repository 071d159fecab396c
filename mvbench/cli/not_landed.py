"""Commands whose implementation has not landed yet: they say so and exit non-zero, never pretend."""

from __future__ import annotations

import typer

from mvbench.errors import NotLandedError

# command -> what it will do, and the piece of work that brings it
PENDING = {
    "build": ("build MedVidBench instances from raw source trees", "the builders issue"),
    "export": ("export records to the official MedVidBench JSON", "the builders issue"),
    "fixtures": ("generate raw fixture trees in each source's real format", "the builders issue"),
    "eval": ("evaluate a model on the 8 tasks", "the eval issue"),
    "score": ("score predictions with the leaderboard metrics", "the eval issue"),
    "leaderboard": ("rank evaluated models", "the eval issue"),
    "publish": ("publish a built dataset to the Hugging Face Hub", "the publishing issue (not filed yet)"),
    "train": ("SFT and MedGRPO training", "the training issue (not filed yet)"),
    "reward-stats": ("per-(source, task) reward percentiles for MedGRPO normalisation",
                     "the training issue (not filed yet)"),
    "demo": ("build, evaluate and rank on generated data", "the builders and eval issues"),
}


def register(app: typer.Typer) -> None:
    """Add a placeholder for every pending command that no other module registered."""
    taken = {c.name or (c.callback.__name__.replace("_", "-") if c.callback else "")
             for c in app.registered_commands}
    taken |= {g.name for g in app.registered_groups}
    for name, (what, where) in PENDING.items():
        if name in taken:
            continue
        app.command(name, help=f"(not landed yet) {what[0].upper()}{what[1:]}.",
                    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
                    add_help_option=False)(_pending(name, what, where))


def _pending(name: str, what: str, where: str):
    def command(ctx: typer.Context) -> None:
        raise NotLandedError(f"`mvbench {name}` ({what}) has not landed yet; it comes with {where}.")
    command.__name__ = name.replace("-", "_")
    return command
