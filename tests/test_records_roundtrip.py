"""Lossless round trip: official JSON → records → Parquet → records → official JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mvbench.dataset_io import read_official_json, read_parquet, write_official_json, write_parquet
from mvbench.errors import InputError
from mvbench.records import ARROW_SCHEMA, Record
from mvbench.tasks import OFFICIAL_QA_TYPES

REAL_FILES = ["test_tal_avos.json", "test_stg_cholectrack20.json", "test_rc_gpt_cholectrack20.json",
              "test_dvc_gpt_copesd.json", "trainval_4_records.json", "trainval_dvc_gemini_avos.json"]


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)  # key order matters: no sort_keys


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_records_round_trip(samples_dir: Path, tmp_path: Path, name: str) -> None:
    original = json.loads((samples_dir / name).read_text(encoding="utf-8"))
    records = read_official_json(samples_dir / name)
    write_parquet(records, tmp_path / "shard.parquet")
    back = read_parquet(tmp_path / "shard.parquet")
    assert [r.uid for r in back] == [r.uid for r in records]
    assert _dumps([r.to_official() for r in back]) == _dumps(original)
    write_official_json(back, tmp_path / "out.json")
    assert _dumps(json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))) == _dumps(original)


def test_test_records_have_no_struc_info_key(samples_dir: Path) -> None:
    rec = read_official_json(samples_dir / "test_tal_avos.json")[0]
    assert not rec.has_struc_info and "struc_info" not in rec.to_official()
    assert rec.answer is None and rec.split == "test" and rec.task == "TAG"


def test_nurvid_time_metadata_and_our_fields(samples_dir: Path) -> None:
    recs = read_official_json(samples_dir / "trainval_4_records.json")
    nurvid = next(r for r in recs if r.data_source == "NurViD")
    assert (nurvid.clip_start_s, nurvid.clip_end_s) == (19.5, 75.2)
    assert nurvid.metadata["input_video_start_time"] == "19.5"
    assert nurvid.id == "vR0_BaXYcE4&&19.50&&75.20&&1.0"
    assert nurvid.frame_indices[:3] == [40, 42, 44] and nurvid.source_video == "vR0_BaXYcE4"
    assert nurvid.generator == "official" and nurvid.split == "train"


def test_parquet_schema_is_the_declared_one(samples_dir: Path, tmp_path: Path) -> None:
    write_parquet(read_official_json(samples_dir / "trainval_4_records.json"), tmp_path / "s.parquet")
    schema = pq.read_schema(tmp_path / "s.parquet")
    assert schema.remove_metadata().equals(ARROW_SCHEMA.remove_metadata())


def _record(qa_type: str, struc_info, answer: str, source: str, **extra) -> dict:
    rec = {"sampled_video_frames": [0, 25], "video": ["f/000000.jpg", "f/000025.jpg"],
           "conversations": [{"from": "human", "value": "<video>\nQuestion?"},
                             {"from": "gpt", "value": answer}],
           "id": "1.0$v1$0$50", "train": True, "data_source": source,
           "metadata": {"video_id": "v1", "fps": "1.0", "input_video_start_frame": "0",
                        "input_video_end_frame": "50"},
           "is_RC": False, "RC_info": None, "struc_info": struc_info, "qa_type": qa_type,
           "dataset_name": source}
    rec.update(extra)
    return rec


# qa_types absent from the real samples, written from medvidbench-format.md §2 and §5.
DOC_EXAMPLES = [
    _record("next_action", [{"next_action": "tying"}], "tying", "AVOS"),
    _record("cvs_assessment", [{"cvs_scores": {"two_structures": 2, "cystic_plate": 1,
                                               "hepatocystic_triangle": 0, "total": 3,
                                               "critical_view_achieved": False}}],
            "Two structures: 2, Cystic plate: 1, Hepatocystic triangle: 0", "Cholec80_CVS"),
    _record("skill_assessment", [{"skill_level": "N", "skill_scores": {
        "Respect for tissue": 2, "Suture/needle handling": 1, "Time and motion": 1, "Flow of operation": 2,
        "Overall performance": 1, "Quality of final product": 3}}],
        "Respect for tissue: 2/5, Suture/needle handling: 1/5, Time and motion: 1/5, Flow of operation: 2/5, "
        "Overall performance: 1/5, Quality of final product: 3/5", "JIGSAWS"),
    _record("video_summary_gpt", [], "Forceps retract the flap while the knife dissects.", "CoPESD"),
    _record("video_summary_gemini", [], "The flap is lifted and dissected.", "CoPESD"),
    _record("dense_captioning_gemini", [{"dc_segments": [{"start": 1.0, "end": 29.0,
                                                          "caption": "check: The nurse checks."}]}],
            "1.0-29.0 seconds: check: The nurse checks.", "NurViD"),
    _record("region_caption_gpt", [{"question": "Q", "struc_info": {"start": 0.0, "end": 10.0,
                                                                   "object": "hook"}}],
            "The hook dissects.", "CholecTrack20", is_RC=True,
            RC_info={"start_frame": "f/000000.jpg", "start_frame_bbox": [1, 2, 30, 40]}),
]


def test_doc_examples_round_trip_and_cover_all_qa_types(samples_dir: Path, tmp_path: Path) -> None:
    real = [json.loads((samples_dir / n).read_text(encoding="utf-8")) for n in REAL_FILES]
    all_records = [r for f in real for r in f] + DOC_EXAMPLES
    assert {r["qa_type"] for r in all_records} == set(OFFICIAL_QA_TYPES)
    (tmp_path / "doc.json").write_text(json.dumps(DOC_EXAMPLES), encoding="utf-8")
    records = read_official_json(tmp_path / "doc.json")
    for r in records:
        r.validate()
    write_parquet(records, tmp_path / "doc.parquet")
    back = [r.to_official() for r in read_parquet(tmp_path / "doc.parquet")]
    assert _dumps(back) == _dumps(DOC_EXAMPLES)


def test_unknown_keys_are_kept(tmp_path: Path) -> None:
    rec = _record("next_action", [{"next_action": "tying"}], "tying", "AVOS")
    rec["some_future_field"] = {"a": [1, 2.5]}
    r = Record.from_official(rec)
    write_parquet([r], tmp_path / "x.parquet")
    assert _dumps(read_parquet(tmp_path / "x.parquet")[0].to_official()) == _dumps(rec)


@pytest.mark.parametrize("breakage, message", [
    (lambda r: r.pop("conversations"), "lacks official key"),
    (lambda r: r["metadata"].update(fps=1.0), "metadata values must be strings"),
    (lambda r: r.update(qa_type="not_a_task"), "unknown qa_type"),
    (lambda r: r.update(sampled_video_frames=[1, "2"]), "sampled_video_frames"),
])
def test_bad_records_name_file_and_record(tmp_path: Path, breakage, message: str) -> None:
    rec = _record("next_action", [{"next_action": "tying"}], "tying", "AVOS")
    breakage(rec)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([rec, rec]), encoding="utf-8")
    with pytest.raises(InputError) as e:
        read_official_json(path)
    assert message in str(e.value) and str(path) in str(e.value) and "[0]" in str(e.value)


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[{"a": 1},\n{"b": }]', encoding="utf-8")
    with pytest.raises(InputError, match=r"broken.json: malformed JSON at line 2"):
        read_official_json(path)


def test_duplicate_records_get_unique_uids(tmp_path: Path) -> None:
    rec = _record("next_action", [{"next_action": "tying"}], "tying", "AVOS")
    (tmp_path / "d.json").write_text(json.dumps([rec, rec, rec]), encoding="utf-8")
    uids = [r.uid for r in read_official_json(tmp_path / "d.json")]
    assert len(set(uids)) == 3 and uids[1] == uids[0] + "#1"


def test_a_built_folder_is_read_from_its_listed_shards_only(tmp_path):
    import json as _json

    from mvbench.dataset_io import read_parquet, write_parquet
    from mvbench.errors import InputError as _InputError

    recs = [Record.from_official(r) for r in _json.loads(_json.dumps(DOC_EXAMPLES))]
    write_parquet(recs[:2], tmp_path / "src" / "test-00000.parquet")
    write_parquet(recs[2:], tmp_path / ".generation" / "templates.parquet")  # a drafts snapshot
    write_parquet(recs[2:], tmp_path / "rejects.parquet")
    assert len(read_parquet(tmp_path)) == len(recs)  # no manifest: every file outside hidden folders...
    (tmp_path / "manifest.json").write_text(_json.dumps({"shards": ["src/test-00000.parquet"]}))
    assert [r.uid for r in read_parquet(tmp_path)] == [r.uid for r in recs[:2]]  # ...with one: its shards only
    (tmp_path / "manifest.json").write_text(_json.dumps({"shards": ["src/test-00001.parquet"]}))
    with pytest.raises(_InputError, match="missing"):
        read_parquet(tmp_path)
