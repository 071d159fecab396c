"""In-process Hugging Face backend: transformers ``generate`` on a local Qwen2.5-VL checkpoint.

Meant for tests (the tiny random model from :mod:`mvbench.testing`), debugging and small CPU runs;
real evaluations use the vLLM backend. The model loads once (on the first request, or
:meth:`HFBackend.load`) and every request runs in one worker thread, so ``generate`` is async and
requests are answered one at a time.

Inputs follow the official inference (medvidbench-format.md §8) through
:mod:`mvbench.qwen_inputs`, the definition training shares: frames are resized with Qwen's
``smart_resize`` under the request's pixel budget and go in as one video whose temporal positions
use :func:`mvbench.inference.timing_fps` of the request's ``video_timing`` (``official``: 2 fps,
``second_per_grid_ts`` 1.0, as the leaderboard's runs) (or as an image list); for region
captioning the start frame is boxed in place, as the official inference does. The inputs always
carry ``mm_token_type_ids`` (without it transformers 5.x silently uses 1-D positions). Decoding is
greedy when ``temperature`` is 0; only the new text is returned.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mvbench.eval.backends.base import GenerationRequest
from mvbench.eval.model_revision import local_model_revision

from mvbench import qwen_inputs
from mvbench.errors import InputError, ServerError

SUPPORTED_MODEL_TYPES = ("qwen2_5_vl",)


class HFBackend:
    """Answer requests with a local Qwen2.5-VL checkpoint through transformers.

    Args:
        model_path: a local directory with config, weights, tokenizer and ``preprocessor_config.json``.
        device: torch device string (``cpu``, ``cuda:0``...).
        dtype: ``float32``, ``bfloat16``, ``float16`` or ``auto``; None means float32 on CPU and
            ``auto`` elsewhere.
        name: the backend's display name (default ``hf:<directory name>``).
    """

    def __init__(self, model_path: str | Path, device: str = "cpu", dtype: str | None = None,
                 name: str | None = None):
        self.model_path = Path(model_path).expanduser().resolve()
        config_path = self.model_path / "config.json"
        if not config_path.is_file():
            raise InputError("not a model directory (no config.json)", path=self.model_path)
        self._config = json.loads(config_path.read_text())
        model_type = self._config.get("model_type")
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise InputError(f"HFBackend runs {', '.join(SUPPORTED_MODEL_TYPES)} checkpoints, "
                             f"got model_type {model_type!r}", path=config_path)
        self.device = device
        self.dtype = dtype or ("float32" if device == "cpu" else "auto")
        self.name = name or f"hf:{self.model_path.name}"
        self._model = None
        self._processor = None
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-backend")

    def fingerprint(self) -> dict:
        """Model directory, its content revision (:func:`~mvbench.eval.model_revision.local_model_revision`:
        retrained weights in the same folder change it), dtype, device, transformers version."""
        import transformers

        return {"backend": "hf", "model": str(self.model_path), "revision": local_model_revision(self.model_path),
                "dtype": self.dtype, "device": self.device, "transformers": transformers.__version__}

    def load(self) -> None:
        """Load the model and processor if not loaded yet (blocking; thread-safe)."""
        with self._load_lock:
            if self._model is not None:
                return
            import torch
            from transformers import Qwen2_5_VLForConditionalGeneration

            dtype = self.dtype if self.dtype == "auto" else getattr(torch, self.dtype)
            try:
                processor = qwen_inputs.load_frames_processor(self.model_path)
                model = Qwen2_5_VLForConditionalGeneration.from_pretrained(self.model_path, dtype=dtype)
            except (OSError, ValueError) as exc:
                raise InputError(f"cannot load model: {exc}", path=self.model_path) from None
            self._model = model.to(self.device).eval()
            self._processor = processor

    async def generate(self, request: GenerationRequest) -> str:
        """Answer one request in the worker thread.

        Raises:
            InputError: a missing or undecodable frame, or a malformed RC box (naming the file).
            ServerError: the model failed on this request (naming the sample).
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._generate_sync, request)

    async def aclose(self) -> None:
        """Drop the model and stop the worker thread."""
        self._executor.shutdown(wait=True)
        self._model = None
        self._processor = None
        gc.collect()

    def encode(self, request: GenerationRequest):
        """Build the model inputs for a request (blocking; loads the model if needed).

        Messages, frame preprocessing and the processor call are :mod:`mvbench.qwen_inputs`, the
        definition training shares, so a trained model is evaluated on its training layout.

        Args:
            request: the sample to encode.

        Returns:
            The processor's ``BatchFeature`` on the device: ``input_ids``, ``attention_mask``,
            ``mm_token_type_ids`` (3-D M-RoPE positions need it) and
            ``pixel_values``/``image_grid_thw`` or ``pixel_values_videos``/``video_grid_thw``/
            ``second_per_grid_ts``.

        Raises:
            InputError: no frames, a missing or undecodable frame, or a malformed RC box.
        """
        self.load()
        params = request.params
        frames = qwen_inputs.load_frames(request.frames, min_pixels=params.min_pixels,
                                         max_pixels=params.max_pixels, rc_frame=request.rc_frame,
                                         rc_box=request.rc_box, uid=request.uid)
        messages = qwen_inputs.chat_messages(request.prompt, frames_as=params.frames_as, n_frames=len(frames),
                                             system=request.system, examples=request.examples)
        inputs = qwen_inputs.encode(self._processor, messages, frames, params=params, record_fps=request.fps)
        return inputs.to(self.device)

    def _generate_sync(self, request: GenerationRequest) -> str:
        self.load()
        inputs = self.encode(request)
        try:
            return self._decode_new(inputs, request)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise ServerError(f"[{request.uid}] transformers generate failed: {exc}") from exc

    def _decode_new(self, inputs, request: GenerationRequest) -> str:
        import torch

        params = request.params
        gen_kwargs = {"max_new_tokens": params.max_tokens}
        if params.temperature > 0:
            gen_kwargs.update(do_sample=True, temperature=params.temperature)
        else:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        torch.manual_seed(params.seed)
        with torch.inference_mode():
            output = self._model.generate(**inputs, **gen_kwargs)
        new_tokens = output[0, inputs["input_ids"].shape[1]:]
        return self._processor.tokenizer.decode(new_tokens, skip_special_tokens=True)
