"""The builder contract: a reader module only reads; source quirks are declared class attributes
the shared code reads; fixture trees come from ``mvbench.builders.fixtures``."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from typing import ClassVar, get_args, get_origin, get_type_hints

import pytest

from mvbench.builders import BUILTIN_SOURCES, get_builder
from mvbench.builders.base import Event, SourceBuilder, VideoAnnotation, VideoMeta
from mvbench.builders.fixtures import FIXTURES, fixture_sources, make_fixture
from mvbench.builders.generators import GenConfig, plan_video
from mvbench.builders.instances import PlannedInstance, official_id, official_metadata

# attribute → (default, allowed values)
QUIRKS = {
    "id_style": ("dollar", ("dollar", "ampersand", "ampersand_seconds")),
    "clip_metadata": ("frames", ("frames", "seconds")),
    "dvc_struc": ("list", ("list", "dc_segments")),
}


def _source(**quirks) -> type[SourceBuilder]:
    """An unregistered builder class with the given quirks (its data_source is NurViD's on purpose)."""
    return type("QuirkSource", (SourceBuilder,), {"name": "quirk_source", "data_source": "NurViD",
                                                  "tasks": ("TAG", "DVC"), **quirks})


def test_quirks_are_declared_on_source_builder_with_defaults():
    hints = get_type_hints(SourceBuilder)
    for attr, (default, choices) in QUIRKS.items():
        assert vars(SourceBuilder)[attr] == default, attr
        assert get_origin(hints[attr]) is ClassVar, attr
        assert get_args(get_args(hints[attr])[0]) == choices, attr
    assert "primary_kind" in vars(SourceBuilder) and SourceBuilder.primary_kind is None
    assert get_origin(hints["primary_kind"]) is ClassVar


def test_builtin_sources_declare_their_published_style():
    got = {name: (get_builder(name).id_style, get_builder(name).clip_metadata, get_builder(name).dvc_struc,
                  get_builder(name).primary_kind) for name in BUILTIN_SOURCES}
    assert got.pop("nurvid") == ("ampersand_seconds", "seconds", "dc_segments", None)
    assert got.pop("avos") == ("ampersand", "frames", "list", None)
    for name in ("cholect50", "cholectrack20", "cholec80_cvs"):
        assert got.pop(name) == ("dollar", "frames", "list", "phase"), name
    assert set(got.values()) == {("dollar", "frames", "list", None)}  # copesd, egosurgery, jigsaws


@pytest.mark.parametrize("attr", list(QUIRKS))
def test_a_misspelt_quirk_fails_when_the_class_is_defined(attr):
    with pytest.raises(TypeError, match=f"QuirkSource.{attr} is 'frame'; use one of"):
        _source(**{attr: "frame"})


def _instance(data_source: str) -> PlannedInstance:
    return PlannedInstance(key="k", source="quirk_source", data_source=data_source, task="TAG", video_id="v1",
                           clip_start_s=19.5, clip_end_s=75.204, fps=1.0, frame_indices=[585, 586, 2255],
                           question="q", struc_info=[], answer="a")


def test_id_and_metadata_follow_the_class_attributes_not_the_data_source():
    inst = _instance("NurViD")
    assert official_id(inst, _source()) == "1.0$v1$585$2255"
    assert official_id(inst, _source(id_style="ampersand")) == "v1&&585&&2255&&1.0"
    assert official_id(inst, _source(id_style="ampersand_seconds")) == "v1&&19.50&&75.20&&1.0"
    assert official_metadata(inst, _source()) == {"video_id": "v1", "fps": "1.0", "input_video_start_frame": "585",
                                                  "input_video_end_frame": "2255"}
    assert official_metadata(inst, _source(clip_metadata="seconds")) == {
        "video_id": "v1", "fps": "1.0", "input_video_start_time": "19.5", "input_video_end_time": "75.2"}


def _video() -> VideoAnnotation:
    meta = VideoMeta("v1", native_fps=1.0, num_frames=60, duration_s=60.0, width=64, height=48,
                     frame_files={k: Path(f"/nowhere/{k:04d}.jpg") for k in range(60)})
    events = [Event("incision", 2.0, 20.0, kind="action"), Event("closure", 22.0, 40.0, kind="action"),
              Event("preparation", 0.0, 30.0, kind="phase"), Event("dissection", 30.0, 58.0, kind="phase")]
    return VideoAnnotation("quirk_source", "NurViD", meta, events=events,
                           vocab={"action": ["closure", "incision"], "phase": ["dissection", "preparation"]})


def test_dvc_shape_and_main_kind_follow_the_class_attributes():
    config = GenConfig(dvc_window=(20.0, 60.0))
    plain = plan_video(_video(), _source(), ["DVC"], config)
    assert plain and all(isinstance(i.struc_info[0], list) for i in plain)
    assert {s["action"] for i in plain for s in i.struc_info[0]} == {"incision", "closure"}  # first vocab kind
    wrapped = plan_video(_video(), _source(dvc_struc="dc_segments", primary_kind="phase"), ["DVC"], config)
    assert wrapped and all(set(i.struc_info[0]) == {"dc_segments"} for i in wrapped)
    assert {s["action"] for i in wrapped for s in i.struc_info[0]["dc_segments"]} == {"preparation", "dissection"}


# ----- fixtures live apart from the readers ------------------------------------------------------
def test_every_builtin_source_has_its_fixture_writer():
    assert [name for name in fixture_sources() if name in BUILTIN_SOURCES] == list(BUILTIN_SOURCES)
    for name in BUILTIN_SOURCES:
        assert FIXTURES.get(name) is importlib.import_module(f"mvbench.builders.fixtures.{name}").write_fixture


@pytest.mark.parametrize("name", BUILTIN_SOURCES)
def test_reader_modules_only_read(name):
    cls = get_builder(name)
    assert not hasattr(cls, "make_fixture") and not hasattr(SourceBuilder, "make_fixture")
    tree = ast.parse(inspect.getsource(importlib.import_module(cls.__module__)))
    defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    defined |= {t.id for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign))
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
    assert not {d for d in defined if "fixture" in d.lower()}, cls.__module__
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.startswith("mvbench.builders.fixtures")}, cls.__module__


@pytest.mark.parametrize("name", BUILTIN_SOURCES)
def test_each_fixture_is_a_tree_its_reader_detects(name, tmp_path):
    root = make_fixture(name, tmp_path / name, seed=0)
    cls = get_builder(name)
    assert root.is_relative_to(tmp_path / name) and cls.detect(root)
    assert cls(root).list_videos()


def test_an_unknown_fixture_source_lists_the_known_ones(tmp_path):
    with pytest.raises(KeyError, match=r"unknown fixture source 'nurvd'\. Did you mean 'nurvid'\? Known: .*cholect50"):
        make_fixture("nurvd", tmp_path / "raw")
    assert not (tmp_path / "raw").exists()
