"""Shared by the reward and training tests: ground-truth records of the official one-shot examples, and a
fixture-built dataset."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from mvbench.tasks import task_for_qa_type

EXAMPLES = json.loads(resources.files("mvbench.prompts").joinpath(
    "oneshot/medvidbench_oneshot_examples.json").read_text(encoding="utf-8"))
META = {"fps": "1.0", "video_id": "v"}

# qa_type -> (struc_info the official example answer encodes, data_source)
GROUND_TRUTH = {
    "tal": ([{"action": "Disinfect skin", "spans": [{"start": 1.1, "end": 3.0}]}], "NurViD"),
    "stg": ([{"object": "forceps", "start": 1.0, "end": 5.0, "stride": 4,
              "bbox_dict": {"1.0": [235.08, 261.2, 561.58, 1005.62], "5.0": [274.26, 261.2, 561.58, 1005.62]}}],
            "CoPESD"),
    "dense_captioning_gpt": ([[{"start": 36.0, "end": 49.0, "caption": "place an underpad: The clinician ..."}]],
                             "NurViD"),
    "next_action": ([{"next_action": "tying"}], "AVOS"),
    "cvs_assessment": ([{"cvs_scores": {"two_structures": 2, "cystic_plate": 1, "hepatocystic_triangle": 0}}],
                       "Cholec80_CVS"),
    "skill_assessment": ([{"skill_level": "N", "skill_scores": {
        "Respect for tissue": 2, "Suture/needle handling": 1, "Time and motion": 1, "Flow of operation": 2,
        "Overall performance": 1, "Quality of final product": 3}}], "JIGSAWS"),
    "dense_captioning_gemini": ([[{"start": 1.0, "end": 29.0, "caption": "check: The healthcare professional"}]],
                                "NurViD"),
    "video_summary_gpt": ([], "CoPESD"),
    "video_summary_gemini": ([], "CoPESD"),
    "region_caption_gpt": ([], "EgoSurgery"),
    "region_caption_gemini": ([], "EgoSurgery"),
}
TASK_OF = {q: task_for_qa_type(q).name for q in GROUND_TRUTH}
GARBLED = ("", "I cannot tell.", "\x00\ufffd" * 3, "1" * 5000, "seconds: [nan, inf, 1e999]", "tying tying " * 50)


def gt_record(qa_type: str) -> dict:
    """The ground-truth side of the official example of a qa_type (what the ``gt`` column holds)."""
    struc, source = GROUND_TRUTH[qa_type]
    return {"metadata": META, "qa_type": qa_type, "struc_info": struc, "question": EXAMPLES[qa_type]["question"],
            "gnd": EXAMPLES[qa_type]["answer"], "data_source": source}


def answer(qa_type: str) -> str:
    """The official example answer of a qa_type."""
    return EXAMPLES[qa_type]["answer"]


def build_fixture_dataset(root: Path, sources: tuple[str, ...] = ("copesd", "egosurgery")) -> Path:
    """Build fixture sources with the real pipeline into ``root/dataset`` (reused if there)."""
    from mvbench.training.smoke import smoke_data

    return smoke_data(root, seed=0, sources=sources)


def assert_stock_processor_layout(directory: Path) -> None:
    """``directory`` (a checkpoint) holds the processor files stock transformers and vLLM load: the
    stock processor class everywhere, image and video processor configs with one patch layout and
    pixel budget, loadable by the classes that import without torchvision."""
    import transformers
    from transformers import AutoImageProcessor, AutoProcessor
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil
    from transformers.processing_utils import VideosKwargs
    from transformers.video_processing_utils import BaseVideoProcessor

    for name in ("processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json",
                 "tokenizer_config.json"):
        assert json.loads((directory / name).read_text())["processor_class"] == "Qwen2_5_VLProcessor", name
    assert isinstance(getattr(transformers, "Qwen2_5_VLProcessor"), type)
    image = AutoImageProcessor.from_pretrained(directory)
    assert isinstance(image, Qwen2VLImageProcessorPil)
    video, _ = BaseVideoProcessor.get_video_processor_dict(str(directory))
    assert video["video_processor_type"] == "Qwen2VLVideoProcessor" and video["do_sample_frames"] is False
    image_settings = json.loads(image.to_json_string())
    for key in ("size", "patch_size", "temporal_patch_size", "merge_size", "image_mean", "image_std", "resample"):
        assert video[key] == image_settings[key], key
    stock_init = {"video_processor_type", "patch_size", "temporal_patch_size", "merge_size"}
    assert set(video) <= set(VideosKwargs.__annotations__) | stock_init
    # AutoProcessor resolves the stock Qwen2.5-VL processor: it returns it, or (no torchvision here)
    # fails building its stock video processor; never a bare tokenizer.
    try:
        processor = AutoProcessor.from_pretrained(directory)
    except ImportError as e:
        assert "Qwen2VLVideoProcessor" in str(e) and "orchvision" in str(e)
    else:
        assert type(processor).__name__ == "Qwen2_5_VLProcessor"
