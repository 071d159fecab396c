"""Third-party sources register through the `mvbench.builders` entry-point group: a new file, no edits here."""

from __future__ import annotations

import textwrap
from pathlib import Path

import mvbench.builders as builders_pkg
from mvbench.builders import builder_names, get_builder
from mvbench.builders.base import SourceBuilder

PLUGIN = '''
from mvbench.builders.base import Event, SourceBuilder, VideoAnnotation, VideoMeta


class ToySource(SourceBuilder):
    """A third-party source: one video, one event."""

    name = "toy_plugin_source"
    data_source = "NurViD"
    tasks = ("TAG",)

    def list_videos(self):
        return ["v1"]

    def read_video(self, video_id):
        meta = VideoMeta(video_id, native_fps=1.0, num_frames=10, duration_s=10.0, path=self.root / "v1.mp4")
        return VideoAnnotation(self.name, self.data_source, meta, events=[Event("Handwashing", 1.0, 4.0)])
'''


def test_entry_point_plugin_is_registered(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "toy_plugin.py").write_text(PLUGIN, encoding="utf-8")
    dist = tmp_path / "toy_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""
        [mvbench.builders]
        toy_plugin_source = toy_plugin:ToySource
        """), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(builders_pkg, "_loaded", False)
    assert "toy_plugin_source" in builder_names()
    cls = get_builder("toy_plugin_source")
    assert issubclass(cls, SourceBuilder) and cls.tasks == ("TAG",)
    ann = cls(tmp_path).read_video("v1")
    assert ann.events[0].label == "Handwashing"
