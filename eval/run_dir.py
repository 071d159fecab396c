"""An eval output folder belongs to one run: resuming it with other settings is refused.

``run.json`` records what must match for saved predictions to be reused: the model (as resolved),
the data file (and, for the official test set, the Hub commit it came from), the frames root, the
split, the prompt mode, the generation parameters and the prompts eval sends (one-shot and judge). Task/source filters and ``--limit`` are left out on
purpose (a larger selection resumes a smaller one), and so is the server address.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mvbench import prompts
from mvbench.dataset_io import atomic_write_json, load_json
from mvbench.errors import InputError
from mvbench.eval.backends.base import GenerationParams

RUN_FILE = "run.json"
OUTPUT_FILES = ("predictions.jsonl", "results.json", "submission.json")


def _resolved(path: str | None) -> str | None:
    if path is None:
        return None
    p = Path(path)
    return str(p.resolve()) if p.exists() else str(path)


def run_identity(cfg: Any, spec: Any, params: GenerationParams, data_commit: str | None = None) -> dict[str, Any]:
    """The fields of ``run.json`` for a config (see the module docstring).

    Args:
        cfg / spec / params: the run's config, resolved model and generation parameters.
        data_commit: the Hub commit the data came from (``official-test``), if any.
    """
    return {"model": spec.model, "backend": spec.backend,
            "data": _resolved(str(cfg.data)), "data_commit": data_commit,
            "frames_root": _resolved(cfg.frames_root), "split": cfg.split,
            "prompt_mode": cfg.prompt_mode, "generation_params": params.to_dict(),
            "prompts": prompts.prompt_hash("oneshot/oneshot", "judge/caption_judge")}


def claim_out_dir(out_dir: Path, identity: dict[str, Any], overwrite: bool) -> None:
    """Record the run's identity in ``out_dir``; refuse to resume another run's predictions.

    Args:
        out_dir: the eval output folder (created).
        identity: :func:`run_identity` of this run.
        overwrite: discard every output already there (predictions, results, samples, submission).

    Raises:
        InputError: the folder holds predictions of a different run and ``overwrite`` is off.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    run_file = out_dir / RUN_FILE
    if overwrite:
        for name in OUTPUT_FILES:
            (out_dir / name).unlink(missing_ok=True)
        for stale in out_dir.glob("samples_*.jsonl"):
            stale.unlink()
    elif run_file.exists() and (out_dir / "predictions.jsonl").exists():
        previous = load_json(run_file)
        changed = sorted(k for k in identity if previous.get(k) != identity[k])
        if changed:
            raise InputError(f"holds predictions of another run (differs in {', '.join(changed)}); "
                             "use another --out, or --overwrite to discard them", out_dir)
    atomic_write_json(run_file, identity)
