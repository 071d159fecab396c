"""The advantages TRL's ``GRPOTrainer`` computes, from a reward matrix, through TRL's own code.

TRL 1.16 computes advantages inline in ``GRPOTrainer._generate_and_score_completions`` (group
mean baseline; ``scale_rewards`` ``group`` / ``batch`` / ``none``; ``multi_objective_aggregation``
``sum_then_normalize`` / ``normalize_then_sum``; a None reward is NaN: it counts 0 in the weighted
sum of ``sum_then_normalize``, and a completion whose every reward is None gets advantage 0).
:func:`trl_advantages` runs that very method, unbound, on a minimal stand-in trainer whose
generation and reward steps return the given rewards, so the simulation
(:mod:`mvbench.training.simulate`) and the tests use the trainer's arithmetic rather than a
re-implementation of it. A test checks it against a real ``GRPOTrainer`` on the tiny model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from types import SimpleNamespace

TESTED_TRL = "1.16"  # the TRL release whose private methods mvbench's trainers extend


def check_trl_version() -> str:
    """The installed TRL version; raises if it is not the release the trainers were written against.

    Raises:
        InputError: another TRL release (the GRPO subclass overrides private methods).
    """
    import trl

    from mvbench.errors import InputError

    if not trl.__version__.startswith(TESTED_TRL + "."):
        raise InputError(f"mvbench's video GRPO/SFT trainers extend TRL {TESTED_TRL}.x (private methods of "
                         f"GRPOTrainer); found TRL {trl.__version__}: pip install 'trl=={TESTED_TRL}.*'")
    return trl.__version__


class _Model:
    training = True
    is_gradient_checkpointing = False


class _Accelerator:
    device = "cpu"
    process_index = 0

    @staticmethod
    def gather(tensor):
        return tensor


def trl_advantages(rewards: Sequence[Sequence[float | None]], num_generations: int, *,
                   scale_rewards: str = "group", aggregation: str = "sum_then_normalize",
                   weights: Sequence[float] | None = None):
    """Advantages as ``GRPOTrainer`` computes them for one generation batch.

    Args:
        rewards: per completion (groups of ``num_generations`` consecutive rows, one prompt each),
            the value of each reward function (None: not applicable).
        num_generations: G.
        scale_rewards: ``group`` (TRL's default), ``batch`` or ``none``.
        aggregation: ``sum_then_normalize`` (default) or ``normalize_then_sum``.
        weights: reward function weights (default 1 each).

    Returns:
        A float tensor of shape (len(rewards),).
    """
    import torch
    from trl import GRPOTrainer

    matrix = torch.tensor([[float("nan") if v is None else float(v) for v in row] for row in rewards],
                          dtype=torch.float32)
    n, n_funcs = matrix.shape
    if n % num_generations:
        raise ValueError(f"{n} completions do not form groups of {num_generations}")
    stand_in = SimpleNamespace(
        accelerator=_Accelerator(), model=_Model(), environment_factories=None, environments=None, tools=[],
        _tokenizer=SimpleNamespace(pad_token_id=0), pad_to_multiple_of=None, mask_truncated_completions=False,
        args=SimpleNamespace(per_device_train_batch_size=n, per_device_eval_batch_size=n, steps_per_generation=1,
                             gradient_accumulation_steps=1, gradient_checkpointing_kwargs=None),
        num_iterations=1, use_vllm=False, vllm_importance_sampling_correction=False, beta=0.0, _is_vlm=False,
        num_generations=num_generations, num_generations_eval=num_generations,
        multi_objective_aggregation=aggregation, scale_rewards=scale_rewards,
        reward_weights=torch.tensor(list(weights) if weights is not None else [1.0] * n_funcs),
        reward_func_names=[f"r{i}" for i in range(n_funcs)], reward_funcs=[None] * n_funcs,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _logs={"images": [], "prompt": [], "completion": [], "rewards": defaultdict(list), "advantages": [],
               "extra": defaultdict(list)},
        _pending_extra_logs=defaultdict(list), _pending_metrics=defaultdict(list), log_multimodal=False)
    prompts = [[{"role": "user", "content": "p"}]] * n
    stand_in._generate = lambda prompts_: ([[1]] * n, [[2]] * n, None, [[{"role": "assistant", "content": "c"}]] * n,
                                           None, {}, None, [])
    stand_in._calculate_rewards = lambda *a: matrix.clone()
    out = GRPOTrainer._generate_and_score_completions(stand_in, [{"prompt": p} for p in prompts])
    return out["advantages"]
