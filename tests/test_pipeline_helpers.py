"""Test-only sources for the pipeline tests, plus unit tests of windows, sampling fit and splits.

``tinyvid`` (data_source AVOS, ``id_style = "ampersand"``: ``&&`` ids) reads video files and
supports all 8 tasks; ``tinyframes`` (data_source CholecTrack20, default ``id_style``: ``$`` ids)
is a frame-folder source whose 25-fps index only has every 25th frame on disk, like CholecTrack20.
Their raw trees come from :func:`write_tinyvid` / :func:`write_tinyframes`, also registered as
fixture writers (``mvbench fixtures make --source tinyvid``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mvbench.builders import BUILDERS
from mvbench.builders.base import (BuilderConfig, Event, Scores, SourceBuilder, Track, VideoAnnotation,
                                   VideoMeta, register_builder)
from mvbench.builders.fixtures import FIXTURES
from mvbench.builders.splits import assign_splits, load_split_file, split_hash
from mvbench.builders.windows import FPS_BINS, choose_fps, clip_indices, covering_windows
from mvbench.errors import InputError
from mvbench.tasks.sa import ASPECTS as SA_ASPECTS
from mvbench.video.synth import make_frame_folder, make_test_video

ANN = "annotations.json"


def _fixture_annotations(seed: int, n_videos: int, fps: float, durations: list[float]) -> dict:
    rng = random.Random(seed)
    videos = {}
    for v in range(n_videos):
        dur = durations[v % len(durations)]
        t, events = 0.0, []
        while t < dur - 6:
            length = rng.uniform(3, 12)
            events.append([rng.choice(["cutting", "tying", "suturing"]), round(t, 2),
                           round(min(dur, t + length), 2)])
            t += length + rng.uniform(0, 4)
        boxes = {f"{s:.1f}": [4 + s % 7, 5, 30 + s % 5, 40] for s in range(2, int(dur) - 2)}
        videos[f"vid{v:02d}"] = {
            "fps": fps, "duration": dur, "events": events,
            "tracks": [{"label": "forceps", "id": "t0", "boxes": boxes}],
            "grs": {"level": "I", "scores": {a: rng.randint(1, 5) for a in SA_ASPECTS}},
            "cvs": {"two_structures": 2, "cystic_plate": 1, "hepatocystic_triangle": 0},
        }
    return videos


class _JsonBuilder(SourceBuilder):
    """Shared reader: ``annotations.json`` + media per video."""

    frame_folder = False

    def _ann(self) -> dict:
        path = self.root / ANN
        if not path.is_file():
            raise InputError("annotation file not found", path)
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"malformed JSON: {e.msg}", path) from None

    def list_videos(self) -> list[str]:
        return sorted(self._ann())

    def read_video(self, video_id: str) -> VideoAnnotation:
        a = self._ann()[video_id]
        if a.get("broken"):
            raise InputError("broken record planted by the test", self.root / ANN, video_id)
        fps, dur = a["fps"], a["duration"]
        if self.frame_folder:
            folder = self.root / "frames" / video_id
            files = {int(p.stem): p for p in folder.glob("*.png")}
            meta = VideoMeta(video_id, 25.0, int(dur * 25), dur, 64, 48, frame_files=files,
                             split=a.get("split"))
        else:
            meta = VideoMeta(video_id, fps, int(round(dur * fps)), dur, 64, 48,
                             path=self.root / "videos" / f"{video_id}.mp4", split=a.get("split"))
        ann = VideoAnnotation(self.name, self.data_source, meta, vocab={"action": ["cutting", "tying", "suturing"]})
        ann.events = [Event(label, s, e, kind="action") for label, s, e in a["events"]]
        ann.tracks = [Track(t["label"], t["id"], {float(k): tuple(v) for k, v in t["boxes"].items()})
                      for t in a["tracks"]]
        ann.scores = [Scores("grs", 0.0, dur, a["grs"]["scores"], level=a["grs"]["level"]),
                      Scores("cvs", 0.0, min(dur, 30.0), a["cvs"])]
        ann.validate()
        return ann

    @classmethod
    def detect(cls, root) -> bool:
        return (Path(root) / ANN).is_file()


@register_builder
class TinyVideoBuilder(_JsonBuilder):
    name = "tinyvid"
    data_source = "AVOS"
    tasks = ("TAG", "STG", "DVC", "VS", "RC", "NAP", "SA", "CVS")
    id_style = "ampersand"
    config_class = BuilderConfig


@register_builder
class TinyFramesBuilder(_JsonBuilder):
    name = "tinyframes"
    data_source = "CholecTrack20"
    tasks = ("TAG", "STG", "RC")
    frame_folder = True


def write_tinyvid(out_dir, seed: int = 0, n_videos: int = 4) -> Path:
    """A ``tinyvid`` raw tree: ``annotations.json`` + 4-fps mp4 videos; returns the root (``out_dir``)."""
    root = Path(out_dir)
    videos = _fixture_annotations(seed, n_videos, 4.0, [40.0, 56.0, 30.0, 48.0])
    for vid, a in videos.items():
        make_test_video(root / "videos" / f"{vid}.mp4", a["duration"], a["fps"], 64, 48, seed=seed)
    (root / ANN).write_text(json.dumps(videos))
    return root


def write_tinyframes(out_dir, seed: int = 0) -> Path:
    """A ``tinyframes`` raw tree: ``annotations.json`` + 1-in-25 PNG frame folders; returns ``out_dir``."""
    root = Path(out_dir)
    videos = _fixture_annotations(seed + 1, 3, 1.0, [36.0, 44.0])
    for vid, a in videos.items():
        n = int(a["duration"])
        make_frame_folder(root / "frames" / vid, n, 1.0, (64, 48),
                          names=[f"{25 * i:06d}.png" for i in range(n)], seed=seed)
    (root / ANN).write_text(json.dumps(videos))
    return root


FIXTURES.register("tinyvid", write_tinyvid)  # so that `mvbench fixtures make --source tinyvid` works
FIXTURES.register("tinyframes", write_tinyframes)


def test_test_builders_registered():
    assert {"tinyvid", "tinyframes"} <= set(BUILDERS)
    assert {"tinyvid", "tinyframes"} <= set(FIXTURES)


# ----- windows and sampling -------------------------------------------------------------------
def test_choose_fps_follows_paper_distribution_for_mid_length_clips():
    rng = random.Random(0)
    draws = [choose_fps(rng, 120.0) for _ in range(4000)]
    share = {f: draws.count(f) / len(draws) for f in FPS_BINS}
    assert 0.59 < share[0.5] < 0.67 and 0.18 < share[1.0] < 0.26 and 0.05 < share[2.0] < 0.10
    assert set(draws) <= set(FPS_BINS)


@pytest.mark.parametrize("duration", [5.0, 20.0, 300.0, 1800.0])
def test_choose_fps_respects_the_frame_budget(duration):
    rng = random.Random(1)
    for _ in range(200):
        fps = choose_fps(rng, duration, min_frames=4, max_frames=256)
        n = int(duration * fps + 1 - 1e-9)
        assert n <= 256
        if duration >= 20:
            assert n >= 4


def test_clip_indices_never_show_a_frame_twice():
    meta = VideoMeta("v", 25.0, 1000, 40.0, frame_files={25 * i: Path(f"{25 * i}.png") for i in range(40)})
    # 2 fps on a 1-fps store would show each stored frame twice (the old snapping: 0, 25, 25, 50 ...)
    assert clip_indices(meta, 0.0, 10.0, 2.0) is None
    assert clip_indices(meta, 0.0, 10.0, 1.0) == [25 * i for i in range(10)]
    assert clip_indices(meta, 1.0, 10.0, 0.5) == [25, 75, 125, 175, 225]
    # a gap of 3 frames: 1 fps cannot show [0, 6) (no frame within 0.5 s of t = 2 and 3) but 0.25 fps can
    gappy = VideoMeta("g", 1.0, 8, 8.0, frame_files={k: Path(f"{k}.png") for k in (0, 1, 4, 5, 6, 7)})
    assert clip_indices(gappy, 0.0, 6.0, 1.0) is None
    assert clip_indices(gappy, 0.0, 8.0, 0.25) == [0, 4]
    # the first frame shown is the frame at the clip start, or the clip cannot be shown
    assert clip_indices(gappy, 2.0, 8.0, 0.25) is None


def test_covering_windows_cover_every_event_including_long_and_zero_length_ones():
    events = [(0, Event("a", 0.0, 10.0)), (1, Event("b", 12.38, 12.38)), (2, Event("c", 50.0, 2500.0)),
              (3, Event("a", 2600.0, 2610.0))]
    windows = covering_windows(events, 3000.0, random.Random(0), 20.0, 300.0)
    covered = {i for w in windows for i in w.covers}
    assert covered == {0, 1, 2, 3}
    assert all(w.length_s <= 1800.0 + 1e-6 for w in windows)
    for w in windows:
        for i in w.covers:
            ev = events[i][1]
            assert ev.start_s >= w.start_s - 1e-6
            assert ev.end_s <= w.end_s + 1e-6 or ev.end_s - ev.start_s > 1800.0


# ----- splits ---------------------------------------------------------------------------------
def test_splits_are_deterministic_and_roughly_85_15():
    vids = [f"v{i}" for i in range(2000)]
    a = assign_splits(vids, "src", seed=3)
    assert a == assign_splits(list(reversed(vids)), "src", seed=3)
    share = sum(s == "test" for s in a.values()) / len(vids)
    assert 0.12 < share < 0.18
    assert a != assign_splits(vids, "src", seed=4)


def test_small_sources_get_both_splits_and_precedence_is_override_official_hash(tmp_path):
    assert set(assign_splits(["a", "b", "c"], "s", seed=0).values()) == {"train", "test"}
    splits = assign_splits(["a", "b", "c", "d"], "s", official={"a": "val", "b": "test"},
                           overrides={"b": "train"})
    assert splits["a"] == "train" and splits["b"] == "train"
    assert assign_splits(["a"], "s", official={"a": "val"}, keep_val=True)["a"] == "val"
    f = tmp_path / "splits.csv"
    f.write_text("video_id,split\nx,test\ny,bogus\n")
    with pytest.raises(InputError, match=r"splits.csv \[row 3\]"):
        load_split_file(f)
    j = tmp_path / "splits.json"
    j.write_text(json.dumps({"tinyvid": {"vid00": "test"}, "other": {"vid00": "train"}}))
    assert load_split_file(j, "tinyvid") == {"vid00": "test"}
    assert 0 <= split_hash("x", "s", 0) < 1
