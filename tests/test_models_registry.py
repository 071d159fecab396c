"""The model registry: aliases, Hub ids, local directories, API prefixes, 'did you mean'."""

from __future__ import annotations

import pytest

from mvbench.errors import InputError
from mvbench.inference import GenerationParams
from mvbench.models import MODEL_REGISTRY, ModelSpec, list_aliases, resolve_model


def test_aliases_map_to_their_models_and_backends():
    expected = {
        "qwen2.5-vl-7b": ("Qwen/Qwen2.5-VL-7B-Instruct", "vllm"),
        "qwen3-vl-4b": ("Qwen/Qwen3-VL-4B-Instruct", "vllm"),
        "medgrpo-7b": ("UII-AI/uAI-NEXUS-MedVLM-1.0a-7B-RL", "vllm"),
        "gpt-4.1": ("gpt-4.1", "openai"),
        "gemini-2.5-flash": ("gemini-2.5-flash", "gemini"),
        "baseline:prior": ("baseline:prior", "baseline"),
    }
    assert set(list_aliases()) == set(expected)
    for alias, (model, backend) in expected.items():
        spec = resolve_model(alias)
        assert (spec.model, spec.backend, spec.alias) == (model, backend, alias)


def test_official_serving_defaults():
    spec = resolve_model("medgrpo-7b")
    assert (spec.max_pixels, spec.min_pixels) == (48 * 28 * 28, 8 * 28 * 28)
    assert (spec.temperature, spec.max_tokens, spec.max_model_len) == (0.0, 256, 32768)
    assert spec.limit_mm_per_prompt == {"image": 1, "video": 1}
    assert (spec.tensor_parallel_size, spec.data_parallel_size) == (1, 1)
    assert spec.frames_as == "video" and spec.served_name == "medgrpo-7b"
    assert spec.generation_params(seed=3) == GenerationParams(seed=3)
    assert resolve_model("gpt-4.1").frames_as == "images"


def test_full_hub_id_and_case_resolve_to_the_registry_entry():
    assert resolve_model("UII-AI/uAI-NEXUS-MedVLM-1.0a-7B-RL") is MODEL_REGISTRY["medgrpo-7b"]
    assert resolve_model("uii-ai/uai-nexus-medvlm-1.0a-7b-rl").alias == "medgrpo-7b"
    assert resolve_model("  Qwen2.5-VL-7B ").alias == "qwen2.5-vl-7b"


def test_any_hub_id_defaults_to_vllm():
    spec = resolve_model("OpenGVLab/InternVL3-8B")
    assert (spec.model, spec.backend, spec.alias, spec.served_name) == (
        "OpenGVLab/InternVL3-8B", "vllm", None, "OpenGVLab/InternVL3-8B")
    assert spec.max_tokens == 256


def test_local_directory_and_backend_override(tmp_path):
    checkpoint = tmp_path / "my-ckpt"
    checkpoint.mkdir()
    spec = resolve_model(str(checkpoint))
    assert (spec.model, spec.backend, spec.served_name) == (str(checkpoint.resolve()), "vllm", "my-ckpt")
    assert spec.is_local
    assert resolve_model(str(checkpoint), backend="hf").backend == "hf"
    assert resolve_model(f"hf:{checkpoint}").backend == "hf"


def test_api_prefixes_accept_any_model_name():
    assert resolve_model("openai:gpt-4o-mini") == ModelSpec(
        model="gpt-4o-mini", backend="openai", frames_as="images", limit_mm_per_prompt=None)
    assert resolve_model("gemini:gemini-2.5-pro").backend == "gemini"
    assert resolve_model("openai:gpt-4.1") is MODEL_REGISTRY["gpt-4.1"]


@pytest.mark.parametrize("typo, suggestion", [("qwen25-vl-7b", "qwen2.5-vl-7b"), ("gpt4.1", "gpt-4.1"),
                                              ("medgrpo", "medgrpo-7b")])
def test_unknown_alias_suggests_the_closest(typo, suggestion):
    with pytest.raises(InputError) as err:
        resolve_model(typo)
    message = str(err.value)
    assert f"Did you mean '{suggestion}'" in message
    assert "Known aliases: baseline:prior, gemini-2.5-flash, gpt-4.1, medgrpo-7b, qwen2.5-vl-7b, qwen3-vl-4b" in message


def test_bad_names_and_paths_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="empty model name"):
        resolve_model("")
    missing = str(tmp_path / "no" / "such" / "ckpt")
    with pytest.raises(InputError, match="model directory not found") as err:
        resolve_model(missing)
    assert missing in str(err.value)
    with pytest.raises(InputError, match="unknown backend"):
        ModelSpec(model="x", backend="tgi")  # type: ignore[arg-type]


def test_the_baseline_is_a_registry_model_and_other_baselines_are_refused():
    assert resolve_model("baseline:prior").backend == "baseline"
    with pytest.raises(InputError, match="the rule-based baseline is 'baseline:prior'"):
        resolve_model("baseline:majority")
