"""Training configs, `mvbench train` without a GPU, the multi-GPU launch command, `mvbench reward-stats`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mvbench.cli import app
from mvbench.errors import InputError
from mvbench.eval.harness import EvalConfig, run_eval
from mvbench.training.config import load_config
from mvbench.training.normalization import POOLED, RewardStats
from tests.training_helpers import build_fixture_dataset

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "training" / "configs").glob("*.yaml"))
PAPER_GRPO = "grpo-qwen2_5_vl-7b-8gpu.yaml"


def test_every_shipped_config_loads_and_the_8gpu_grpo_recipe_has_the_papers_settings():
    assert len(CONFIGS) >= 9
    for path in CONFIGS:
        cfg = load_config(path)
        assert cfg.launch.requires_gpu is (path.name != "smoke.yaml"), path.name
    g = load_config(PAPER_GRPO).grpo  # a shipped name resolves without a path
    assert (g.num_generations, g.learning_rate, g.max_steps, g.epsilon, g.epsilon_high, g.beta) == \
        (8, 5e-7, 5000, 0.2, 0.3, 0.0)
    assert g.scale_rewards == "batch" and g.rewards.tasks == ("TAG", "STG", "VS", "RC")
    assert g.rewards.normalization.k == 3.0 and g.use_vllm and g.vllm_mode == "colocate"
    assert load_config(PAPER_GRPO).launch.num_processes == 8
    assert load_config("grpo-qwen3_vl-4b-8gpu.yaml").video.video_timing == "record"
    assert load_config("sft-qwen2_5_vl-7b-1gpu-lora.yaml").lora.r == 64


def test_overrides_and_mistakes_in_configs():
    cfg = load_config("smoke.yaml", ["grpo.learning_rate=5e-7", "grpo.rewards.tasks=[TAG, STG]", "lora.r=8"],
                      out="x/{stage}")
    assert cfg.grpo.learning_rate == 5e-7 and cfg.grpo.rewards.tasks == ("TAG", "STG") and cfg.lora.r == 8
    assert load_config("smoke.yaml", ["grpo.rewards.tasks=[tag, vs]"]).grpo.rewards.tasks == ("TAG", "VS")
    assert str(cfg.out_dir("grpo")) == "x/grpo"
    for override, message in (("grpo.learnin_rate=1", "unknown key.*grpo.learnin_rate"),
                              ("grpo.num_generations=1", "num_generations must be >= 2"),
                              ("grpo.scale_rewards=group_std", "scale_rewards must be one of"),
                              ("sft.max_steps=two", "sft.max_steps must be int"),
                              ("grpo.rewards.tasks=[TAG, XYZ]", "rewards.tasks must name tasks"),
                              ("grpo.rewards.tasks=[TAG, STG, tag]", "rewards.tasks names a task twice"),
                              ("video.video_timing=fast", "video_timing")):
        with pytest.raises(InputError, match=message):
            load_config("smoke.yaml", [override])
    # LoRA's final merge runs in one process (it would hang under ZeRO-3): multi-process LoRA is refused.
    with pytest.raises(InputError, match="lora with launch.num_processes > 1 is not supported"):
        load_config(PAPER_GRPO, ["lora={r: 8}"])
    assert load_config("sft-qwen2_5_vl-7b-1gpu-lora.yaml").lora is not None
    with pytest.raises(InputError, match="config not found"):
        load_config("no-such-config.yaml")
    with pytest.raises(InputError, match="set data"):
        load_config(PAPER_GRPO).check_inputs()


def test_task_selection_is_case_insensitive_validated_and_never_empty(tmp_path):
    from mvbench.training.runner import run_stage

    cfg = load_config("smoke.yaml", ["tasks=[tag, stg]"])
    assert cfg.tasks == ("TAG", "STG")
    assert cfg.stage_tasks("sft") == ["TAG", "STG"] and cfg.stage_tasks("grpo") == ["TAG", "STG"]
    assert load_config("smoke.yaml").stage_tasks("grpo") == ["TAG", "STG", "VS", "RC"]
    assert load_config("smoke.yaml").stage_tasks("sft") is None
    for override, message in (("tasks=[xyz]", "tasks must be null"), ("tasks=[]", "tasks must be null"),
                              ("tasks=[TAG, tag]", "names a task twice")):
        with pytest.raises(InputError, match=message):
            load_config("smoke.yaml", [override])
    # No rewarded task selected: GRPO refuses before building anything (an empty filter would train on all).
    nap = load_config("smoke.yaml", ["tasks=[nap]"], out=str(tmp_path / "{stage}"))
    with pytest.raises(InputError, match="no rewarded task among tasks"):
        run_stage("grpo", nap)
    assert not any(tmp_path.iterdir())


def test_the_default_grpo_recipe_says_it_needs_a_gpu_and_fails_on_cpu():
    # What `make train-grpo` runs with its defaults.
    proc = subprocess.run([sys.executable, "-m", "mvbench.cli", "train", "grpo", "--config",
                           str(REPO / "training" / "configs" / PAPER_GRPO)], capture_output=True, text=True,
                          cwd=REPO, env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 1
    message = " ".join(proc.stderr.split())
    assert "8 CUDA GPUs" in message and "CONFIG=training/configs/smoke.yaml" in message
    assert "Traceback" not in proc.stderr


def test_a_multi_gpu_config_relaunches_itself_under_accelerate():
    result = CliRunner().invoke(app, ["train", "grpo", "--config", PAPER_GRPO, "--data", "d", "--print-launch",
                                      "--reward-stats", "s.json"])
    assert result.exit_code == 0, result.output
    command = result.output.split()
    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    assert command[command.index("--config_file") + 1].endswith("training/configs/accelerate/zero3-8gpu.yaml")
    assert command[command.index("--num_processes") + 1] == "8"
    assert command[command.index("-m", 3):][:4] == ["-m", "mvbench.cli", "train", "grpo"]
    assert command[-2:] == ["--reward-stats", "s.json"] and "--data" in command
    smoke = CliRunner().invoke(app, ["train", "sft", "--config", "smoke.yaml", "--print-launch"])
    assert "one process" in smoke.output


def test_reward_stats_from_an_eval_run_on_the_train_split(tmp_path):
    dataset = build_fixture_dataset(tmp_path)
    run = tmp_path / "rollouts"
    run_eval(EvalConfig(data=str(dataset), model="baseline:prior", out_dir=run, split="train", no_judge=True,
                        cache_dir=None, tasks=["TAG", "STG", "NAP"]))
    out = tmp_path / "stats.json"
    result = CliRunner().invoke(app, ["reward-stats", str(run), "--out", str(out), "--tasks", "TAG,STG",
                                      "--no-judge"])
    assert result.exit_code == 0, result.output
    stats = RewardStats.load(out)
    assert set(stats.pairs) == {"CoPESD", "EgoSurgery", POOLED}
    for source in ("CoPESD", "EgoSurgery"):
        assert set(stats.pairs[source]) == {"TAG", "STG"}  # NAP was evaluated but is not rewarded
    pooled = stats.get(POOLED, "TAG")
    assert pooled.n == stats.get("CoPESD", "TAG").n + stats.get("EgoSurgery", "TAG").n
    results = json.loads((run / "results.json").read_text())
    (prov,) = stats.provenance["runs"]
    assert prov["model"] == "baseline:prior" and prov["data"]["sha256"] == results["fingerprint"]["dataset"]["sha256"]
    assert prov["data"]["split"] == "train" and stats.provenance["rewarded_tasks"] == ["TAG", "STG"]
    missing = CliRunner().invoke(app, ["reward-stats", str(tmp_path / "nope"), "--out", str(out)])
    assert missing.exit_code != 0


def test_the_printed_eval_command_carries_the_trainings_video_inputs():
    import shlex

    from typer.main import get_command

    from mvbench.cli.train import eval_hint

    eval_cli = get_command(app).get_command(None, "eval")
    for name, backend in (("grpo-qwen3_vl-4b-8gpu.yaml", None), ("smoke.yaml", "hf")):
        cfg = load_config(name, ["video.max_pixels=50176", "video.min_pixels=3136"])
        hint = eval_hint("runs/x/final", cfg)
        words = shlex.split(hint)
        assert words[:2] == ["mvbench", "eval"]
        params = eval_cli.make_context("eval", words[2:]).params  # the flags mvbench eval accepts
        assert params["model"] == "runs/x/final" and params["backend"] == backend
        assert (params["video_timing"], params["max_pixels"], params["min_pixels"], params["frames_as"]) == \
            (cfg.video.video_timing, 50176, 3136, "video")
    assert "--video-timing record" in eval_hint("f", load_config("grpo-qwen3_vl-4b-8gpu.yaml"))


def test_eval_warns_when_a_checkpoint_was_trained_on_other_video_inputs(tmp_path, caplog):
    import logging

    from mvbench.eval.harness import trained_video_mismatch
    from mvbench.inference import GenerationParams
    from mvbench.models import TRAIN_CONFIG_FILE
    from mvbench.testing import build_tiny_qwen2_5_vl
    from mvbench.training.config import dump_yaml

    model = tmp_path / "final"
    build_tiny_qwen2_5_vl(model, seed=0)
    assert trained_video_mismatch(str(model), GenerationParams()) == []  # not a training checkpoint
    trained = load_config("grpo-qwen3_vl-4b-8gpu.yaml")  # video_timing: record
    (model / TRAIN_CONFIG_FILE).write_text(dump_yaml({"stage": "grpo", "config": trained.to_dict()}))
    assert trained_video_mismatch(str(model), GenerationParams()) == \
        ["video_timing: trained record, evaluated official"]
    assert trained_video_mismatch(str(model), GenerationParams(video_timing="record")) == []
    dataset = build_fixture_dataset(tmp_path)
    with caplog.at_level(logging.WARNING, logger="mvbench.eval.harness"):
        run_eval(EvalConfig(data=str(dataset), model=str(model), backend="hf", out_dir=tmp_path / "eval",
                            tasks=["TAG"], limit=1, no_judge=True, cache_dir=None, max_tokens=2, concurrency=1))
    assert "trained on other video inputs (video_timing: trained record, evaluated official)" in caplog.text


def test_no_resume_refuses_an_output_folder_with_checkpoints(tmp_path):
    from mvbench.training.runner import run_stage

    cfg = load_config("smoke.yaml", out=str(tmp_path / "{stage}"))
    (tmp_path / "sft" / "checkpoint-7").mkdir(parents=True)
    with pytest.raises(InputError, match=r"--no-resume, but this folder holds an earlier run's checkpoints "
                                         r"\(checkpoint-7\)"):
        run_stage("sft", cfg, resume=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sft"]  # nothing built or written
    assert [p.name for p in (tmp_path / "sft").iterdir()] == ["checkpoint-7"]


def test_progress_curves_come_from_the_resumed_checkpoint_cut_at_its_step(tmp_path):
    from mvbench.training.progress import CURVES_NAME, ProgressCallback

    out = tmp_path / "out"
    checkpoint = out / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    (out / CURVES_NAME).write_text(json.dumps({"loss": [[s, 9.0] for s in range(1, 6)]}))  # an abandoned run's
    (checkpoint / CURVES_NAME).write_text(json.dumps({"loss": [[1, 3.0], [2, 2.0], [3, 1.5]], "reward": [[2, 0.5]]}))
    assert ProgressCallback(out, "", "sft").history == {}  # a fresh start keeps no old curve
    resumed = ProgressCallback(out, "", "sft", resume_from=str(checkpoint))
    assert resumed.history == {"loss": [(1, 3.0), (2, 2.0)], "reward": [(2, 0.5)]}


def test_extra_trainer_settings_are_checked_before_any_work(tmp_path):
    from mvbench.training.config import GRPO_TRAINER_KEYS, SFT_TRAINER_KEYS, TRAINER_COMMON_KEYS
    from mvbench.training.runner import run_stage, trainer_kwargs

    cfg = load_config("smoke.yaml")
    # The keys mvbench sets are exactly the ones the config refuses in extra.
    assert set(trainer_kwargs("sft", cfg, tmp_path, False)) == {*TRAINER_COMMON_KEYS, *SFT_TRAINER_KEYS}
    assert set(trainer_kwargs("grpo", cfg, tmp_path, False)) == {*TRAINER_COMMON_KEYS, *GRPO_TRAINER_KEYS}
    for override, message in (("grpo.extra={learning_rate: 0.1}", "grpo: extra cannot set learning_rate"),
                              ("sft.extra={max_length: 9, seed: 1}", "sft: extra cannot set max_length, seed"),
                              ("grpo.extra={beta: 0.1}", "extra cannot set beta")):
        with pytest.raises(InputError, match=message):
            load_config("smoke.yaml", [override])
    assert load_config("smoke.yaml", ["grpo.extra={vllm_max_model_length: 1024}"])  # not ours: passed on
    # What TRL itself refuses (an unknown key, a batch G does not divide) fails in one line before any build.
    for override, message in (("sft.extra={no_such_option: 1}", "TRL refuses the sft settings.*no_such_option"),
                              ("grpo.per_device_train_batch_size=3", "TRL refuses the grpo settings")):
        bad = load_config("smoke.yaml", [override], out=str(tmp_path / "{stage}"))
        with pytest.raises(InputError, match=message):
            run_stage(override.split(".")[0], bad)
    assert not (tmp_path / "smoke-assets").exists()


def test_reward_stats_score_nap_with_the_class_lists_training_uses(tmp_path):
    from mvbench.inference import GenerationParams
    from mvbench.training.data import ground_truth_of, load_training_data
    from mvbench.training.normalization import RewardStats
    from mvbench.training.reward_stats import compute_reward_stats
    from mvbench.training.rewards import RewardConfig, RewardSuite

    dataset = build_fixture_dataset(tmp_path)
    data = load_training_data(dataset, stage="grpo", params=GenerationParams(), tasks=["NAP"])
    assert data.contexts().get("NAP")  # EgoSurgery has no official class list: it comes from the records
    # Paraphrased answers: right only when mapped to the nearest class of the list, as the leaderboard does.
    answers = {r.uid: f"The next step is the {json.loads(data.rows[i]['gt'])['gnd'].lower()} phase"
               for i, r in enumerate(data.records)}
    run = tmp_path / "rollouts"
    run.mkdir()
    (run / "predictions.jsonl").write_text("".join(json.dumps({"uid": u, "prediction": a}) + "\n"
                                                   for u, a in answers.items()))
    config = RewardConfig(tasks=("NAP",))
    stats_suite = RewardSuite(config)
    stats = compute_reward_stats([run], stats_suite, data=str(dataset), split="train")
    training = RewardSuite(config, contexts=data.contexts())  # what training scores with
    rewards = training.score([answers[r.uid] for r in data.records], [ground_truth_of(r) for r in data.records])
    values: dict = {}
    for r in rewards:
        if r.raw is not None:
            values.setdefault((r.source, "NAP"), []).append(r.raw)
    expected = RewardStats.from_values(values, {})
    for source in ("CoPESD", "EgoSurgery"):
        got, want = stats.get(source, "NAP"), expected.get(source, "NAP")
        assert (got.n, got.p25, got.p50, got.p75) == (want.n, want.p25, want.p50, want.p75), source
    assert 0.0 < expected.get("EgoSurgery", "NAP").p75  # the class list matters here: some paraphrases map right
    stats_suite.close()
    training.close()


def test_progress_is_logged_and_written_by_the_main_process_only(tmp_path, caplog):
    import logging
    from types import SimpleNamespace

    from transformers import TrainerState

    from mvbench.training.progress import CONFIG_NAME, CURVES_NAME, ProgressCallback

    checkpoint = tmp_path / "checkpoint-1"
    checkpoint.mkdir()
    args = SimpleNamespace(output_dir=str(tmp_path))
    for main in (False, True):
        callback = ProgressCallback(tmp_path, "stage: sft\n", "sft")
        state = TrainerState(global_step=1, max_steps=2, is_world_process_zero=main)
        with caplog.at_level(logging.INFO, logger="mvbench.training"):
            callback.on_train_begin(args, state, None)
            callback.on_log(args, state, None, logs={"loss": 1.5})
            callback.on_save(args, state, None)
            callback.on_train_end(args, state, None)
        written = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
        if not main:  # another rank: no line, no file
            assert callback.history == {} and "step 1/2" not in caplog.text and written == []
    assert callback.history == {"loss": [(1, 1.5)]} and caplog.text.count("step 1/2 | loss 1.5") == 1
    assert {CONFIG_NAME, CURVES_NAME} <= set(written) and (checkpoint / CURVES_NAME).is_file()


def test_the_training_wing_writes_files_atomically_only():
    import ast

    offenders = []
    for path in sorted((REPO / "training").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            call = isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name))
            name = (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) if call else None
            writes_open = name == "open" and any(isinstance(a, ast.Constant) and isinstance(a.value, str)
                                                 and set(a.value) & set("wax") for a in node.args[1:2])
            if name in ("write_text", "write_bytes") or writes_open:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders, "non-atomic writes (use mvbench.dataset_io.atomic_write_*): " + ", ".join(offenders)


def test_make_train_and_demo_need_ffmpeg_only_and_make_test_needs_chromium():
    def planned(target: str) -> str:  # what make would run (-n: nothing runs)
        proc = subprocess.run(["make", "-n", target, "CONFIG=training/configs/smoke.yaml"], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    for target in ("train-sft", "train-grpo", "demo"):
        plan = planned(target)
        assert "ffmpeg" in plan and "chromium" not in plan, target
    for target in ("test", "test-fast"):
        assert "apt-get install -y -qq chromium" in planned(target), target
