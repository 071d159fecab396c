"""Training: SFT and MedGRPO on built splits (``mvbench train sft|grpo``, ``mvbench reward-stats``).

- :mod:`~mvbench.training.rewards`: one reward function per task on ``Task.reward`` (caption judge
  hybrid, format penalty), engine-neutral; :mod:`~mvbench.training.verl` adapts them to verl.
- :mod:`~mvbench.training.normalization`: the per-(data_source, task) logistic with frozen statistics
  (:mod:`~mvbench.training.reward_stats` makes them from SFT rollouts).
- :mod:`~mvbench.training.sft`, :mod:`~mvbench.training.grpo`: TRL 1.16 trainers fed the frames as one
  video through :mod:`mvbench.qwen_inputs`, as ``mvbench eval`` feeds them.
- :mod:`~mvbench.training.runner`, :mod:`~mvbench.training.config`: configs (``training/configs``) to
  checkpoints; :mod:`~mvbench.training.simulate`: the normalisation claim without a model.
"""
