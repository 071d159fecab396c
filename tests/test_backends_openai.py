"""OpenAIBackend: message layout (video, images, RC, one-shot) and a round trip to a fake server."""

from __future__ import annotations

import asyncio
import base64
import io

import pytest
from PIL import Image

from mvbench.errors import InputError
from mvbench.eval.backends.base import Backend, GenerationParams, GenerationRequest
from mvbench.eval.backends.openai_backend import OpenAIBackend, build_messages, load_request_images
from mvbench.llm.retry import ClientOptions
from tests.servers.fake_openai import FakeOpenAIServer, media_parts


def _frames(tmp_path, n=3, size=(640, 360)):
    paths = []
    for i in range(n):
        p = tmp_path / f"f{i}.png"
        Image.new("RGB", size, (60 * i, 100, 200)).save(p)
        paths.append(str(p))
    return tuple(paths)


def _decode(b64_text: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64_text)))


def _user_content(request):
    return build_messages(request, load_request_images(request))[-1]["content"]


def test_video_is_one_frame_list_padded_to_even(tmp_path):
    req = GenerationRequest(uid="u", prompt="When does it start?", frames=_frames(tmp_path, 3))
    content = _user_content(req)
    assert [p["type"] for p in content] == ["video_url", "text"]
    url = content[0]["video_url"]["url"]
    prefix = "data:video/jpeg;base64,"
    assert url.startswith(prefix)
    pieces = url[len(prefix):].split(",")
    assert len(pieces) == 4 and pieces[3] == pieces[2]  # last frame repeated
    assert pieces[0] != pieces[1]
    first = _decode(pieces[0])
    assert first.format == "PNG" and first.size == (224, 112)  # 640x360 on the official frame grid (56); lossless
    assert content[1] == {"type": "text", "text": "When does it start?"}


def test_images_mode_sends_one_image_part_per_frame(tmp_path):
    req = GenerationRequest(uid="u", prompt="Q", frames=_frames(tmp_path, 3),
                            params=GenerationParams(frames_as="images"))
    content = _user_content(req)
    assert [p["type"] for p in content] == ["image_url"] * 3 + ["text"]
    assert all(p["image_url"]["url"].startswith("data:image/png;base64,") for p in content[:3])


def test_rc_start_frame_is_boxed_in_place_inside_the_video(tmp_path):
    frames = _frames(tmp_path, 2)
    req = GenerationRequest(uid="u", prompt="Describe the region.", frames=frames,
                            rc_frame=frames[1], rc_box=(40, 30, 120, 100), params=GenerationParams(frames_as="images"))
    content = _user_content(req)
    assert [p["type"] for p in content] == ["image_url", "image_url", "text"]  # no extra image
    first, second = (_decode(p["image_url"]["url"].split(",", 1)[1]).convert("RGB") for p in content[:2])
    r, g, b = second.getpixel((42, 60))  # left edge of the box, raw coordinates
    assert g > 200 and r < 60 and b < 60
    r, g, b = first.getpixel((42, 60))
    assert not (g > 200 and r < 60 and b < 60)


def test_rc_frame_not_in_the_clip_gets_no_box(tmp_path):
    frames = _frames(tmp_path, 2)
    plain = load_request_images(GenerationRequest(uid="u", prompt="Q", frames=frames))
    other = load_request_images(GenerationRequest(uid="u", prompt="Q", frames=frames,
                                                  rc_frame=str(tmp_path / "elsewhere.jpg"), rc_box=(1, 1, 9, 9)))
    assert other == plain  # as the official code: no match, no box


def test_one_shot_examples_become_prior_text_turns(tmp_path):
    req = GenerationRequest(uid="u", prompt="Q", frames=_frames(tmp_path, 2), system="sys",
                            examples=(("example question", "example answer"),))
    frames = load_request_images(req)
    messages = build_messages(req, frames)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "example question"
    assert messages[2]["content"] == "example answer"


def test_missing_frame_raises_input_error_naming_it(tmp_path):
    req = GenerationRequest(uid="u", prompt="Q", frames=(str(tmp_path / "nope.jpg"),))
    with pytest.raises(InputError, match="nope.jpg"):
        load_request_images(req)


@pytest.mark.parametrize("frames_as,kinds,has_mm", [("video", ["video_url"], True),
                                                    ("images", ["image_url"] * 2, False)])
def test_generate_round_trip(tmp_path, frames_as, kinds, has_mm):
    params = GenerationParams(temperature=0.0, max_tokens=64, seed=3, frames_as=frames_as)
    req = GenerationRequest(uid="clip1", prompt="Which phase?", frames=_frames(tmp_path, 2),
                            fps=0.5, params=params)
    with FakeOpenAIServer() as srv:
        backend = OpenAIBackend("qwen", ClientOptions(base_url=srv.base_url, retry_base_delay_s=0.01))
        assert isinstance(backend, Backend)

        async def go():
            try:
                return await backend.generate(req)
            finally:
                await backend.aclose()

        assert asyncio.run(go()).startswith("ECHO: Which phase?")
        body = srv.requests[-1]
        assert media_parts(body) == kinds
        assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.0, 64, 3)
        assert ("mm_processor_kwargs" in body) is has_mm
        if has_mm:  # the leaderboard's video timing (2 fps), not the sample's 0.5 fps, stated twice
            assert body["mm_processor_kwargs"]["fps"] == 2.0
            assert body["media_io_kwargs"] == {"video": {"fps": 2.0, "num_frames": -1}}
    fp = backend.fingerprint()
    assert fp["model"] == "qwen" and fp["base_url"] == srv.base_url and fp["backend"] == "openai"


def test_record_video_timing_sends_the_samples_fps(tmp_path):
    params = GenerationParams(frames_as="video", video_timing="record")
    req = GenerationRequest(uid="c", prompt="q", frames=_frames(tmp_path, 2), fps=0.5, params=params)
    body = OpenAIBackend("qwen", ClientOptions(base_url="http://127.0.0.1:9/v1")).request_params(req)["extra_body"]
    assert body["mm_processor_kwargs"]["fps"] == 0.5 and body["media_io_kwargs"]["video"]["fps"] == 0.5


def test_a_local_checkpoint_served_by_vllm_is_fingerprinted_by_its_content(tmp_path):
    from mvbench.eval.backends.factory import ServeOptions, open_backend
    from mvbench.eval.model_revision import local_model_revision
    from mvbench.models import ModelSpec
    from mvbench.testing import build_tiny_qwen2_5_vl

    model = tmp_path / "final"
    build_tiny_qwen2_5_vl(model, seed=0)
    spec = ModelSpec(model=str(model), backend="vllm", served_name="fake-model")

    async def fingerprint(base_url):
        async with open_backend(spec, ServeOptions(base_url=base_url)) as session:
            return session.backend.fingerprint()

    with FakeOpenAIServer() as srv:
        first = asyncio.run(fingerprint(srv.base_url))
        assert first["revision"] == local_model_revision(model)
        build_tiny_qwen2_5_vl(model, seed=1)  # retrained into the same folder
        assert asyncio.run(fingerprint(srv.base_url))["revision"] != first["revision"]
        hosted = OpenAIBackend("qwen", ClientOptions(base_url=srv.base_url)).fingerprint()
    assert "revision" not in hosted  # hosted models keep their cache keys
