"""The parts of ``mvbench generate`` on their own: enrichment, visual prompts, rule checks, prices, journal."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from mvbench.builders.base import Event, Track, VideoAnnotation, VideoMeta
from mvbench.errors import InputError
from mvbench.generation.accounting import Budget, check_budget_prices
from mvbench.generation.config import GenerateConfig, Writer
from mvbench.generation.enrich import Enrichment, FrameView, BoxNote, enrich, render_frame
from mvbench.generation.journal import Journal
from mvbench.generation.prices import PriceTable
from mvbench.generation.run import load_dotenv
from mvbench.generation.validate import check_answer, mentions, times_in
from mvbench.records import Record
from mvbench.redact import redact


def _annotation() -> VideoAnnotation:
    meta = VideoMeta("VID01", native_fps=1.0, num_frames=100, duration_s=100.0, width=1280, height=720,
                     frame_files={}, attrs={"procedure": "laparoscopic cholecystectomy"})
    events = [Event("preparation", 10.0, 20.0, "phase"), Event("calot-triangle-dissection", 20.0, 40.0, "phase"),
              Event("hook dissect cystic plate", 22.0, 30.0, "triplet")]
    tracks = [Track("hook", "hook-1", {22.0: (100.0, 100.0, 300.0, 300.0), 24.0: (110.0, 100.0, 310.0, 300.0)})]
    return VideoAnnotation("cholect50", "CholecT50", meta, events, tracks)


def _record(task: str, frames: Path) -> Record:
    video = [f"frames/{i:06d}.jpg" for i in range(10, 40, 2)]  # 15 frames at 0.5 fps from 10 s
    for path in video:
        (frames / path).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (640, 360), (30, 60, 90)).save(frames / path)
    struc = [[{"start": 0.0, "end": 10.0, "caption": "preparation: draft", "action": "preparation"},
              {"start": 10.0, "end": 30.0, "caption": "calot-triangle-dissection: draft",
               "action": "calot-triangle-dissection"}]]
    rc_info = None
    if task == "RC":
        struc = [{"question": "q", "struc_info": {"start": 12.0, "end": 20.0, "object": "hook"}}]
        rc_info = {"start_frame": video[6], "start_frame_bbox": [100.0, 100.0, 300.0, 300.0]}
    qa = {"DVC": "dense_captioning", "VS": "video_summary", "RC": "region_caption"}[task]
    return Record(conversations=[{"from": "human", "value": "<video>\nDescribe."}, {"from": "gpt", "value": "x"}],
                  video=video, metadata={"fps": "0.5", "video_id": "VID01"}, qa_type=qa, data_source="CholecT50",
                  struc_info=struc if task != "VS" else "draft", is_RC=task == "RC", RC_info=rc_info,
                  frame_indices=list(range(10, 40, 2)), clip_start_s=10.0, clip_end_s=40.0, source_video="VID01")


def test_enrichment_places_events_boxes_and_keeps_segment_and_rc_frames(tmp_path):
    enr = enrich(_record("RC", tmp_path), _annotation(), tmp_path, frames_per_call=4, max_side=320)
    assert enr.duration_s == 30.0 and len(enr.frames) == 4
    positions = [f.position for f in enr.frames]
    assert 6 in positions  # the RC start frame (t = 22 s in the source) is always sent
    start = next(f for f in enr.frames if f.position == 6)
    assert start.t_rel == 12.0 and start.t_src == 22.0
    assert ("phase", "calot-triangle-dissection") in start.events and ("triplet", "hook dissect cystic plate") in start.events
    assert [b.target for b in start.boxes] == [False, True] and start.boxes[1].label == "hook"
    assert start.size == (320, 180)  # the 640x360 file, shrunk to max_side
    assert enr.terms == ["hook"] and "- phase: 0.0-10.0 s: preparation" in enr.annotation_lines
    dvc = enrich(_record("DVC", tmp_path), _annotation(), tmp_path, frames_per_call=3, max_side=320)
    mids = {int(5 * 0.5), int(20 * 0.5)}  # each segment's middle frame
    assert mids <= {f.position for f in dvc.frames} and dvc.terms == ["preparation", "calot-triangle-dissection"]


def test_the_rc_target_box_is_drawn_in_green_at_the_scaled_position(tmp_path):
    path = tmp_path / "f.jpg"
    Image.new("RGB", (640, 360), (0, 0, 0)).save(path)
    view = FrameView(path, 0, 0.0, 0.0, boxes=[BoxNote("hook", (400.0, 400.0, 800.0, 600.0), target=True)])
    jpeg = render_frame(view, (1280, 720), max_side=320)
    out = tmp_path / "out.jpg"
    out.write_bytes(jpeg)
    with Image.open(out) as img:
        assert img.size == (320, 180)
        r, g, b = img.convert("RGB").getpixel((100, 125))  # left edge of the box scaled by 0.25: x=100, y 100..150
        assert g > 180 and r < 90 and b < 90
        assert max(img.convert("RGB").getpixel((60, 160))) < 60  # outside the box: untouched


def _enr(task: str, duration: float = 30.0, segments=(), terms=()) -> Enrichment:
    return Enrichment(task, "CholecT50", "q", duration, 1.0, [], [], [dict(s) for s in segments], None, [],
                      list(terms))


SEGS = [{"start": 0.0, "end": 10.0, "caption": "preparation: d", "action": "preparation"},
        {"start": 10.0, "end": 30.0, "caption": "clipping-and-cutting: d", "action": "clipping-and-cutting"}]


def test_dvc_rules_parse_cover_and_rewrite_on_the_annotated_times():
    enr = _enr("DVC", segments=SEGS, terms=["preparation", "clipping-and-cutting"])
    good = ("0.0-9.0 seconds: The team completes preparation of the trocars and the camera.\n"
            "9.0-30.0 seconds: The clipper places clips on the cystic duct before cutting it.")
    c = check_answer(enr, [SEGS], "gemini", good, 0.5, 0.5)
    assert c.reasons == [] and c.scores["dvc_min_iou"] == 0.9
    assert c.answer.splitlines()[0] == ("0.0-10.0 seconds: preparation: The team completes preparation of the "
                                        "trocars and the camera.")
    assert c.struc[0][1]["action"] == "clipping-and-cutting"
    gpt = check_answer(enr, [SEGS], "gpt", good, 0.5, 0.5)
    assert gpt.struc[0][0] == {"start": 0.0, "end": 10.0,
                               "caption": "The team completes preparation of the trocars and the camera."}
    assert check_answer(enr, [SEGS], "gpt", "The clip shows surgery.", 0.5, 0.5).reasons[0].startswith("dvc_segments")
    shifted = "0.0-30.0 seconds: preparation and clipping and cutting all along the clip here."
    assert any("tIoU" in r for r in check_answer(enr, [SEGS], "gpt", shifted, 0.5, 0.5).reasons)
    late = good + "\n30.0-45.0 seconds: more clipping and cutting after the clip ended."
    assert any(r.startswith("timestamps") for r in check_answer(enr, [SEGS], "gpt", late, 0.5, 0.5).reasons)


def test_vs_and_rc_rules_check_mentions_and_length():
    vs = _enr("VS", terms=["preparation", "calot-triangle-dissection"])
    short = check_answer(vs, "draft", "gpt", "Preparation happens.", 0.5, 0.5)
    assert any(r.startswith("length") for r in short.reasons)
    off = check_answer(vs, "draft", "gpt", " ".join(["The weather is nice today in the harbour."] * 4), 0.5, 0.5)
    assert any(r.startswith("mentions") for r in off.reasons) and off.scores["mention_recall"] == 0.0
    ok = check_answer(vs, "draft", "gpt", "After preparation the surgeon performs Calot triangle dissection "
                      "with the hook, exposing the cystic duct and artery before clipping them safely.", 0.5, 0.5)
    assert ok.reasons == [] and ok.struc == ok.answer
    rc = _enr("RC", terms=["specimen bag"])
    assert check_answer(rc, ["rc"], "gpt", "The grasper holds the gallbladder steadily.", 0.5, 0.5).reasons
    assert check_answer(rc, ["rc"], "gpt", "The specimen bag is opened and the gallbladder placed in it.",
                        0.5, 0.5).reasons == []


def test_mentions_and_times():
    assert mentions("In the gallbladder-packaging step", "gallbladder packaging")
    assert not mentions("the grasper retracts", "clipper")
    assert times_in("from 4.0-9.5 seconds and at 12 s") == [4.0, 9.5, 12.0]


def test_prices_from_a_file_and_budget_needs_prices(tmp_path):
    table = tmp_path / "p.toml"
    table.write_text('version = "x"\n[models."local-vlm"]\ninput = 0.1\noutput = 0.2\nbatch_input = 0.05\n'
                     'batch_output = 0.1\n')
    prices = PriceTable.load(table)
    assert prices.cost("local-vlm", 1_000_000, 1_000_000, batch=True) == pytest.approx(0.15)
    with pytest.raises(InputError, match=r"needs a price for \['gpt-4.1'\]"):
        check_budget_prices(prices, [Writer("gpt", "openai", "gpt-4.1")], 1.0)
    check_budget_prices(prices, [Writer("gpt", "openai", "gpt-4.1")], None)  # no budget: no price needed
    (tmp_path / "bad.toml").write_text('[models."m"]\ninput = "cheap"\n')
    with pytest.raises(InputError, match="malformed price table"):
        PriceTable.load(tmp_path / "bad.toml")


def test_budget_reservations_never_pass_the_cap_and_freed_money_is_reserved_again():
    b = Budget(1.0, spent_usd=0.5)
    assert b.reserve(0.3) and not b.reserve(0.3)  # refused while 0.3 is in flight: not the end yet
    assert not b.exhausted and b.in_flight and b.refused == 1
    b.settle(0.3, 0.1)
    assert b.spent == pytest.approx(0.6) and b.reserved == 0.0 and not b.in_flight
    assert b.reserve(0.3)  # the 0.2 given back is used again
    b.settle(0.3, 0.3)
    assert not b.reserve(0.3) and not b.in_flight  # does not fit with nothing in flight: the caller stops
    b.stop()
    assert b.exhausted


def test_live_reservation_waits_for_money_in_flight_then_stops_only_when_nothing_is_left(tmp_path):
    import asyncio

    from mvbench.generation.engine import Engine

    async def scenario() -> list[str]:
        engine = Engine(GenerateConfig(dataset=tmp_path, cache_dir=None), None, None, PriceTable.load(),
                        Budget(1.0), {}, None)
        events: list[str] = []
        assert await engine.reserve(0.6)

        async def second() -> None:
            ok = await engine.reserve(0.6)  # waits: 0.6 is in flight
            events.append(f"second {ok}")
            if ok:
                engine.settle(0.6, 0.6)

        task = asyncio.create_task(second())
        await asyncio.sleep(0)
        events.append("first settles")
        engine.settle(0.6, 0.2)  # 0.4 comes back: the second call fits now
        await task
        events.append(f"third {await engine.reserve(0.6)}")  # 0.8 spent, nothing in flight: stop
        events.append(f"exhausted {engine.budget.exhausted}")
        return events

    assert asyncio.run(scenario()) == ["first settles", "second True", "third False", "exhausted True"]


def test_journal_drops_a_torn_last_line_and_masks_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-journal-secret-0000")
    import asyncio

    j = Journal(tmp_path)

    async def write() -> None:
        await asyncio.gather(*(j.record_success({"call_id": f"a{i}", "uid": "u", "variant": "gpt", "model": "m",
                                                 "via": "live", "text": "echo sk-journal-secret-0000",
                                                 "usage": {}, "cost_usd": 0.5, "attempts": 1}) for i in range(20)))
        await j.record_failure("b", "u", "gemini", "500: key sk-journal-secret-0000")

    asyncio.run(write())
    j.close()
    assert len((tmp_path / "calls.jsonl").read_text().splitlines()) == 20  # group commit loses nothing
    with open(tmp_path / "calls.jsonl", "a") as f:
        f.write('{"call_id": "c", "text": "tor')
    j2 = Journal(tmp_path)
    assert set(j2.calls.entries) == {f"a{i}" for i in range(20)} and j2.spent_usd() == 10.0
    assert "sk-journal-secret" not in (tmp_path / "calls.jsonl").read_text() + (tmp_path / "failures.jsonl").read_text()
    j2.close()


def test_dotenv_sets_missing_keys_and_masks_them(tmp_path, monkeypatch):
    monkeypatch.delenv("MVBENCH_TEST_API_KEY", raising=False)
    monkeypatch.setenv("MVBENCH_PRESET", "kept")
    env = tmp_path / ".env"
    monkeypatch.delenv("MVBENCH_TEST_NOTE", raising=False)
    env.write_text("# keys\nexport MVBENCH_TEST_API_KEY='dotenv-secret-123456' # from the console\n"
                   "MVBENCH_PRESET=overwritten\nMVBENCH_TEST_NOTE=plain # a comment\n")
    assert load_dotenv(env) == ["MVBENCH_TEST_API_KEY", "MVBENCH_TEST_NOTE"]
    import os

    assert os.environ["MVBENCH_TEST_API_KEY"] == "dotenv-secret-123456" and os.environ["MVBENCH_PRESET"] == "kept"
    assert os.environ["MVBENCH_TEST_NOTE"] == "plain"  # "# a comment" is not part of the value
    assert redact("x dotenv-secret-123456 y") == "x [REDACTED] y"
    monkeypatch.delenv("MVBENCH_TEST_API_KEY")
    monkeypatch.delenv("MVBENCH_TEST_NOTE")


@pytest.mark.parametrize("kw, message", [
    ({"tasks": ("TAG",)}, "caption tasks only"),
    ({"limit": 0}, "--limit"),
    ({"budget_usd": 0}, "--budget-usd"),
    ({"image_detail": "ultra"}, "--image-detail"),
    ({"gpt_model": "same", "gemini_model": "same", "openai_base_url": "http://x", "gemini_base_url": "http://x"},
     "the same model"),
    ({"gpt_model": "template"}, "--gpt-model 'template' is not a usable model id"),
    ({"gemini_model": "gemini 2.5"}, "--gemini-model 'gemini 2.5' is not a usable model id"),
    ({"validator_model": "official"}, "--validator 'official' is not a usable model id"),
])
def test_config_rejects_bad_values_saying_what_to_change(kw, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        GenerateConfig(dataset=tmp_path, cache_dir=None, **kw)
