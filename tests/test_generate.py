"""``mvbench generate`` end to end against the local fake OpenAI and Gemini servers (no network).

One small fixture build (CholecT50: 3 DVC, 3 VS, 1 RC drafts) is generated live, in batch mode,
under injected faults, after kill -9, under a budget and as an estimate; every run writes to its
own folder, so the built dataset itself is never modified.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from mvbench.dataset_io import read_parquet
from mvbench.generation.config import GenerateConfig
from mvbench.generation.run import run_generate
from tests.servers.captions import gemini_captions, off_topic, openai_captions
from tests.servers.fake_gemini import FakeGeminiServer, last_user_text as gemini_text
from tests.servers.fake_openai import FakeOpenAIServer

CLI = [sys.executable, "-c", "from mvbench.cli import main; main()"]
CAPTION_QA = {"DVC": "dense_captioning", "VS": "video_summary", "RC": "region_caption"}
N_DRAFTS = 7  # 3 DVC + 3 VS + 1 RC in the CholecT50 fixture


@pytest.fixture(scope="module")
def raw_root(tmp_path_factory) -> Path:
    from mvbench.builders.fixtures import make_fixture

    return make_fixture("cholect50", tmp_path_factory.mktemp("raw"))


@pytest.fixture(scope="module")
def dataset(raw_root, tmp_path_factory) -> Path:
    from mvbench.builders.pipeline import BuildOptions, build

    out = tmp_path_factory.mktemp("built") / "ds"
    build([("cholect50", raw_root)], BuildOptions(out=out, workers=1))
    return out


def _cfg(dataset: Path, out: Path, o, g, **kw) -> GenerateConfig:
    kw.setdefault("cache_dir", None)
    kw.setdefault("retry_base_delay_s", 0.01)
    kw.setdefault("poll_interval_s", 0.02)
    return GenerateConfig(dataset=dataset, out=out, openai_base_url=o.base_url, gemini_base_url=g.base_url, **kw)


def _servers(**kw):
    return (FakeOpenAIServer(respond=kw.pop("openai", openai_captions), **kw.pop("o", {})),
            FakeGeminiServer(respond=kw.pop("gemini", gemini_captions), **kw.pop("g", {})))


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory) -> dict:
    """An uninterrupted live run: what every interrupted or batch run must reproduce."""
    out = tmp_path_factory.mktemp("ref") / "gen"
    o, g = _servers()
    with o, g:
        summary = run_generate(_cfg(dataset, out, o, g))
    return {"summary": summary, "out": out, "content_hash": summary["content_hash"]}


def _records(out: Path) -> list:
    return [r for r in read_parquet(out / "cholect50")]


def test_live_run_writes_gpt_and_gemini_records_with_scores_and_a_manifest(reference):
    out = reference["out"]
    assert reference["summary"]["counts"]["cholect50"] == {
        "DVC": {"accepted": 3, "rejected": 0, "failed": 0, "pending": 0},
        "RC": {"accepted": 1, "rejected": 0, "failed": 0, "pending": 0},
        "VS": {"accepted": 3, "rejected": 0, "failed": 0, "pending": 0}}
    records = _records(out)
    captions = [r for r in records if r.task in CAPTION_QA]
    assert len(captions) == 2 * N_DRAFTS and not [r for r in captions if r.generator == "template"]
    for task, base in CAPTION_QA.items():
        mine = [r for r in captions if r.task == task]
        assert {r.qa_type for r in mine} == {f"{base}_gpt", f"{base}_gemini"}
        assert {r.generator for r in mine if r.qa_type.endswith("_gpt")} == {"gpt-4.1"}
        assert {r.generator for r in mine if r.qa_type.endswith("_gemini")} == {"gemini-2.5-flash"}
    for r in captions:
        r.validate()
        v = r.validation
        assert v["generated_from"] and v["pair"] and v["agreement"] >= 0.3 and v["checks"]["mention_recall"] >= 0.5
        assert r.uid.split("/")[2] == v["generated_from"].split("/")[2]  # same digest as the draft
    dvc_gemini = next(r for r in captions if r.qa_type == "dense_captioning_gemini")
    segs = dvc_gemini.struc_info[0]
    assert all(s["caption"].startswith(f"{s['action']}: ") for s in segs)  # the published Gemini style
    manifest = json.loads((out / "manifest.json").read_text())
    gen = manifest["generation"]
    assert [w["model"] for w in gen["writers"]] == ["gpt-4.1", "gemini-2.5-flash"]
    assert gen["prompt_versions"]["generation/dvc_gpt"] == "1" and gen["thresholds"]["agreement"] == 0.3
    assert gen["counts"]["cholect50"]["VS"]["accepted"] == 3
    acc = gen["accounting"]["gpt:gpt-4.1"]
    assert acc["calls"] == N_DRAFTS and acc["input_tokens"] > 0 and acc["cost_usd"] > 0
    assert manifest["counts"]["cholect50"]["DVC"] == {"test": 2, "train": 4}  # two records per draft
    assert pq.read_table(out / "rejects.parquet").num_rows == 0
    assert (out / "frames").is_symlink()


def test_estimate_makes_no_call_and_writes_nothing(dataset, tmp_path):
    o, g = _servers()
    with o, g:
        est = run_generate(_cfg(dataset, tmp_path / "gen", o, g, estimate=True))["estimate"]
        assert o.stats.calls == 0 and g.stats.calls == 0
    assert not (tmp_path / "gen").exists()
    assert est["instances"] == N_DRAFTS and est["by_task"] == {"DVC": 3, "RC": 1, "VS": 3}
    gpt, gemini = est["writers"]
    assert (gpt["model"], gpt["calls"], gemini["calls"]) == ("gpt-4.1", N_DRAFTS, N_DRAFTS)
    assert gpt["images"] > 0 and gpt["input_tokens"] > gpt["images"] * 85
    assert 0 < gpt["batch_cost_usd"] < gpt["cost_usd"] and est["total_cost_usd"] > 0


def test_faults_end_every_instance_accepted_rejected_or_failed_and_a_rerun_retries_only_failures(dataset, tmp_path):
    def gemini(body: dict) -> str:
        text = gemini_text(body)
        if "video summary" in text.lower() or "summarising" in text:
            return off_topic(body)
        if "The object in question" in text:
            raise RuntimeError("this RC request always fails")
        return gemini_captions(body)

    out = tmp_path / "gen"
    # the hung call is held until its client gives up (timeout 1 s) and is then never answered, so
    # no answer reaches the server's count after the run: no timing in the assertion below
    o, g = _servers(gemini=gemini, o={"script": ["429", "500", "malformed", "empty", "hang", "503"],
                                      "fault_headers": {"Retry-After": "0"}, "hang_s": 120.0})
    with o, g:
        summary = run_generate(_cfg(dataset, out, o, g, timeout_s=1.0, max_retries=6, concurrency=2))
        assert o.stats.hangs == 1 and o.stats.abandoned == 1 and o.stats.malformed == 1
        assert o.stats.repeated() == 0
    counts = summary["counts"]["cholect50"]
    assert counts["DVC"]["accepted"] == 3 and counts["VS"]["rejected"] == 3 and counts["RC"]["failed"] == 1
    assert sum(sum(c.values()) for c in counts.values()) == N_DRAFTS  # none lost
    assert summary["failed_calls"] == 1
    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    assert len(rejects) == 3 and all(any(r.startswith("agreement") for r in row["reasons"]) for row in rejects)
    assert all(any("gemini: mentions" in r for r in row["reasons"]) for row in rejects)
    records = _records(out)
    assert [r.generator for r in records if r.task == "RC"] == ["template"]  # the draft is kept
    assert not [r for r in records if r.task == "VS"]  # rejected: only in rejects.parquet
    failures = [json.loads(line) for line in (out / ".generation" / "failures.jsonl").read_text().splitlines()]
    assert [f["variant"] for f in failures] == ["gemini"] and "respond() raised" in failures[0]["error"]

    o2, g2 = _servers()  # healthy servers: only the failed call is asked again
    with o2, g2:
        again = run_generate(_cfg(dataset, out, o2, g2))
        assert o2.stats.calls == 0 and g2.stats.calls == 1
    assert again["counts"]["cholect50"]["RC"]["accepted"] == 1 and again["failed_calls"] == 0
    assert again["counts"]["cholect50"]["VS"]["rejected"] == 3


def _upper_bounds(cfg: GenerateConfig, batch: bool = False) -> list[float]:
    from mvbench.generation.accounting import upper_bound_cost
    from mvbench.generation.plan import make_plan
    from mvbench.generation.prices import PriceTable

    prices = PriceTable.load()
    return [upper_bound_cost(prices, c.writer, c.est_input_tokens, cfg.max_tokens, batch=batch)
            for c in make_plan(cfg)[0].calls]


def test_budget_stops_cleanly_at_the_cap_and_a_larger_budget_finishes(dataset, tmp_path, reference):
    out = tmp_path / "gen"
    cap = 0.03  # the whole run costs about $0.027 at list prices, a GPT call reserves up to $0.021
    o, g = _servers()
    with o, g:
        cfg = _cfg(dataset, out, o, g, budget_usd=cap, concurrency=1)
        summary = run_generate(cfg)
        calls = o.stats.calls + g.stats.calls
    assert summary["stopped"] == "budget" and 0 < summary["spent_usd"] <= cap
    # money freed by calls that cost less than their reservation is used again: the run stops only
    # when even the smallest remaining call's upper bound no longer fits
    assert cap - summary["spent_usd"] < max(_upper_bounds(cfg))
    assert 0 < calls < 2 * N_DRAFTS
    counts = summary["counts"]["cholect50"]
    assert sum(c["pending"] for c in counts.values()) > 0
    journal = (out / ".generation" / "calls.jsonl").read_text().splitlines()
    assert len(journal) == calls  # everything paid for is kept
    o2, g2 = _servers()
    with o2, g2:
        done = run_generate(_cfg(dataset, out, o2, g2, budget_usd=5.0))
        assert o2.stats.calls + g2.stats.calls == 2 * N_DRAFTS - calls
    assert done["stopped"] is None and done["content_hash"] == reference["content_hash"]


def test_batch_mode_requeues_expired_and_failed_lines(dataset, tmp_path, reference):
    out = tmp_path / "gen"
    o, g = _servers(o={"batch_outcomes": ("expire",)}, g={"batch_outcomes": ("fail",), "script": ["ok", "500"]})
    with o, g:
        summary = run_generate(_cfg(dataset, out, o, g, batch=True))
        assert o.stats.batch_creates == 2 and o.stats.file_uploads == 2  # the expired half went again
        assert g.stats.batch_creates == 3  # failed validation, then one failed line requeued
        assert o.stats.repeated() == 0 and g.stats.repeated() == 0
        assert o.stats.batch_lines_ok == N_DRAFTS and g.stats.batch_lines_ok == N_DRAFTS
    assert summary["failed_calls"] == 0 and summary["content_hash"] == reference["content_hash"]
    acc = summary["accounting"]["gpt:gpt-4.1"]
    assert acc["batch"] == N_DRAFTS and acc["live"] == 0
    run = summary["this_run"]["gpt:gpt-4.1"]
    assert (run["batch"], run["live"], run["failed"]) == (N_DRAFTS, 0, N_DRAFTS // 2 + 1)  # expired half, requeued
    assert run["cost_usd"] == acc["cost_usd"] > 0
    live = reference["summary"]["accounting"]["gpt:gpt-4.1"]
    assert abs(acc["cost_usd"] - live["cost_usd"] / 2) < 1e-6  # batch prices are half


def test_gemini_batch_through_an_uploaded_file_and_cache_reuse(dataset, tmp_path, reference):
    cache = tmp_path / "cache"
    o, g = _servers()
    with o, g:
        run_generate(_cfg(dataset, tmp_path / "a", o, g, batch=True, gemini_inline_bytes=1, cache_dir=cache))
        assert g.stats.file_uploads == 1 and g.stats.batch_creates == 1  # the resumable upload path
        second = run_generate(_cfg(dataset, tmp_path / "b", o, g, cache_dir=cache))  # live, same cache
        assert o.stats.calls == N_DRAFTS and g.stats.calls == N_DRAFTS  # no new call: all cached
    assert second["accounting"]["gpt:gpt-4.1"]["cached"] == N_DRAFTS
    assert second["content_hash"] == reference["content_hash"]


def test_an_llm_validator_rejects_pairs_it_scores_low(dataset, tmp_path):
    o, g = _servers()
    with o, g, FakeOpenAIServer(respond=lambda body: "A: 2\nB: 5") as v:
        summary = run_generate(_cfg(dataset, tmp_path / "gen", o, g, tasks=("RC",), validator_model="judge",
                                    validator_base_url=v.base_url))
        assert v.stats.calls == 1
    assert summary["counts"]["cholect50"]["RC"]["rejected"] == 1
    row = pq.read_table(tmp_path / "gen" / "rejects.parquet").to_pylist()[0]
    assert row["reasons"] == ["gpt: validator: score 2 < 3"]


def test_limit_and_tasks_scope_a_run_and_a_wider_run_keeps_earlier_answers(dataset, tmp_path):
    out = tmp_path / "gen"
    o, g = _servers()
    with o, g:
        first = run_generate(_cfg(dataset, out, o, g, tasks=("DVC",), limit=1))
        assert o.stats.calls == 1 and g.stats.calls == 1
        assert first["counts"]["cholect50"]["DVC"] == {"accepted": 1, "rejected": 0, "failed": 0, "pending": 2}
        assert first["counts"]["cholect50"]["VS"]["pending"] == 3
        wider = run_generate(_cfg(dataset, out, o, g, tasks=("DVC",)))
        assert o.stats.calls == 3 and o.stats.repeated() == 0
    assert wider["counts"]["cholect50"]["DVC"]["accepted"] == 3


def test_a_dataset_without_annotation_files_is_enriched_from_the_raw_tree(dataset, raw_root, tmp_path):
    import shutil

    from mvbench.generation.plan import make_plan

    bare = tmp_path / "bare"
    shutil.copytree(dataset, bare, ignore=shutil.ignore_patterns("annotations", "frames"))
    with pytest.raises(Exception, match="no annotation file"):
        make_plan(GenerateConfig(dataset=bare, cache_dir=None, raw_roots={"cholect50": tmp_path / "missing"}))
    plan, _ = make_plan(GenerateConfig(dataset=bare, cache_dir=None, raw_roots={"cholect50": raw_root}))
    reference, _ = make_plan(GenerateConfig(dataset=dataset, cache_dir=None))
    assert [c.call_id for c in plan.calls] == [c.call_id for c in reference.calls]
    assert [i.enrichment.annotation_lines for i in plan.instances] == \
        [i.enrichment.annotation_lines for i in reference.instances]


def test_call_identity_follows_the_rendered_prompt_and_only_its_own_writers_options(dataset, monkeypatch):
    from mvbench import prompts
    from mvbench.generation.plan import make_plan

    def ids(**kw) -> dict[str, str]:
        cfg = GenerateConfig(dataset=dataset, cache_dir=None, tasks=("VS",), limit=1, **kw)
        return {c.writer.variant: c.call_id for c in make_plan(cfg)[0].calls}

    before = ids()
    low, thinking = ids(image_detail="low"), ids(gemini_thinking_budget=128)
    assert low["gpt"] != before["gpt"] and low["gemini"] == before["gemini"]  # detail is OpenAI's option
    assert thinking["gemini"] != before["gemini"] and thinking["gpt"] == before["gpt"]
    assert ids(max_tokens=2048)["gemini"] != before["gemini"]  # shared decoding options change both
    real = prompts.load

    def patched(edit):
        def load(name: str):
            data = dict(real(name))
            if name == "generation/vs_gpt":
                edit(data)
            return data
        return load

    # a new declared version with the same text asks nothing again; an edit without a new version does
    monkeypatch.setattr(prompts, "load", patched(lambda d: d.update(version="2")))
    assert ids() == before
    monkeypatch.setattr(prompts, "load", patched(lambda d: d.update(system=d["system"] + " Be brief.")))
    edited = ids()
    assert edited["gpt"] != before["gpt"] and edited["gemini"] == before["gemini"]


# ----- kill -9 ---------------------------------------------------------------------------------
def _wait(condition, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _journal_lines(out: Path) -> int:
    path = out / ".generation" / "calls.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


def _generate_cmd(dataset: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return [*CLI, "generate", str(dataset), "--out", str(out), "--cache-dir", str(cache), "--concurrency", "1",
            "--json", *extra]


def _env(o, g) -> dict:
    return {**os.environ, "OPENAI_BASE_URL": o.base_url, "GOOGLE_GEMINI_BASE_URL": g.base_url,
            "HF_HUB_OFFLINE": "1"}


def test_kill9_mid_live_run_then_rerun_repeats_no_paid_call(dataset, tmp_path, reference):
    out, cache = tmp_path / "gen", tmp_path / "cache"
    o, g = _servers(o={"latency_s": 0.3}, g={"latency_s": 0.3})
    with o, g:
        proc = subprocess.Popen(_generate_cmd(dataset, out, cache), env=_env(o, g), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            _wait(lambda: o.stats.ok + g.stats.ok >= 4 or proc.poll() is not None, what="first answers")
            o.hold(), g.hold()
            _wait(lambda: o.inflight == 0 and g.inflight == 0 and _journal_lines(out) == o.stats.ok + g.stats.ok,
                  what="answers in flight to be journalled")
            assert proc.poll() is None, "the run ended before it could be killed"
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
            o.release(drop=True), g.release(drop=True)
        answered = o.stats.ok + g.stats.ok
        assert 4 <= answered < 2 * N_DRAFTS
        rerun = subprocess.run(_generate_cmd(dataset, out, cache), env=_env(o, g), capture_output=True, text=True,
                               timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        assert o.stats.repeated() == 0 and g.stats.repeated() == 0  # no successful call was paid twice
        assert o.stats.ok == N_DRAFTS and g.stats.ok == N_DRAFTS
    assert json.loads(rerun.stdout)["content_hash"] == reference["content_hash"]


def _kill9_once_both_batch_jobs_are_submitted(dataset: Path, out: Path, cache: Path, o, g) -> None:
    """Run ``mvbench generate --batch`` and kill -9 it once both jobs are recorded as submitted."""
    def submitted() -> bool:
        path = out / ".generation" / "batches.json"
        jobs = json.loads(path.read_text())["jobs"] if path.is_file() else []
        return len(jobs) == 2 and all(j["status"] == "submitted" for j in jobs)

    proc = subprocess.Popen(_generate_cmd(dataset, out, cache, "--batch", "--poll-interval", "0.05"),
                            env=_env(o, g), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: submitted() or proc.poll() is not None, what="both batch jobs")
        assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_kill9_while_batch_jobs_run_then_rerun_collects_the_same_jobs(dataset, tmp_path, reference):
    out, cache = tmp_path / "gen", tmp_path / "cache"
    gate = threading.Event()
    o, g = _servers(o={"batch_gate": gate}, g={"batch_gate": gate})

    with o, g:
        _kill9_once_both_batch_jobs_are_submitted(dataset, out, cache, o, g)
        gate.set()
        rerun = subprocess.run(_generate_cmd(dataset, out, cache, "--batch", "--poll-interval", "0.05"),
                               env=_env(o, g), capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        assert o.stats.batch_creates == 1 and g.stats.batch_creates == 1  # collected, not submitted again
        assert o.stats.batch_lines_ok == N_DRAFTS and g.stats.batch_lines_ok == N_DRAFTS
        assert o.stats.repeated() == 0 and g.stats.repeated() == 0
    assert json.loads(rerun.stdout)["content_hash"] == reference["content_hash"]


def test_a_job_created_before_its_id_was_saved_is_adopted_not_paid_twice(dataset, tmp_path, reference):
    """The crash window between ``batches.create`` and saving the job id."""
    import asyncio

    from mvbench.generation.batch import BatchState
    from mvbench.generation.plan import make_plan
    from mvbench.generation.requests import RequestBuilder
    from mvbench.llm.openai_client import OpenAIChatClient
    from mvbench.llm.retry import ClientOptions

    out = tmp_path / "gen"
    o, g = _servers()
    with o, g:
        cfg = _cfg(dataset, out, o, g, batch=True)
        plan, _ = make_plan(cfg)
        client = OpenAIChatClient("gpt-4.1", ClientOptions(base_url=o.base_url))
        builder = RequestBuilder(cfg, {"gpt": client})
        calls = [(inst, inst.calls["gpt"]) for inst in plan.instances]
        lines = []
        for inst, call in calls:
            req = builder.build(inst, call)
            lines.append(client.batch_line(call.call_id, req.messages, **req.params))

        async def submit():
            try:
                return await client.submit_batch(lines, {"mvbench_job": "mvbench-crashed"})
            finally:
                await client.aclose()

        asyncio.run(submit())  # the job exists; the process "died" before saving its id:
        state = BatchState(out / ".generation")
        out.joinpath(".generation").mkdir(parents=True, exist_ok=True)
        state.jobs = [{"token": "mvbench-crashed", "variant": "gpt", "model": "gpt-4.1", "job_id": None,
                       "status": "submitting", "call_ids": [c.call_id for _, c in calls],
                       "keys": {c.call_id: None for _, c in calls}, "reserved_usd": 0.0}]
        state.save()
        summary = run_generate(cfg)
        assert o.stats.batch_creates == 1 and o.stats.batch_lines_ok == N_DRAFTS
    assert summary["content_hash"] == reference["content_hash"]


def _journal(out: Path) -> list[dict]:
    path = out / ".generation" / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def test_a_narrower_rerun_over_open_batch_jobs_journals_every_answer_they_paid_for(dataset, tmp_path, reference):
    """Kill -9 while both jobs run, rerun with --tasks RC: the jobs' DVC and VS answers are kept too."""
    out, cache = tmp_path / "gen", tmp_path / "cache"
    gate = threading.Event()
    o, g = _servers(o={"batch_gate": gate}, g={"batch_gate": gate})

    with o, g:
        _kill9_once_both_batch_jobs_are_submitted(dataset, out, cache, o, g)
        gate.set()
        narrow = run_generate(_cfg(dataset, out, o, g, batch=True, tasks=("RC",)))
        assert len(_journal(out)) == 2 * N_DRAFTS  # every paid answer, in scope or not
        # and assembled: answers of drafts outside the scope under this run's call ids are judged too
        assert narrow["counts"]["cholect50"] == reference["summary"]["counts"]["cholect50"]
        full = run_generate(_cfg(dataset, out, o, g, batch=True))
        assert o.stats.batch_creates == 1 and g.stats.batch_creates == 1  # nothing paid again
        assert o.stats.batch_lines_ok == N_DRAFTS and g.stats.batch_lines_ok == N_DRAFTS
    assert full["content_hash"] == reference["content_hash"]


def test_batch_mode_under_a_budget_pays_both_answers_of_an_instance_or_neither(dataset, tmp_path):
    out = tmp_path / "gen"
    cap = 0.02  # an instance reserves about $0.0125 at batch prices (GPT $0.0104 + Gemini $0.0022)
    o, g = _servers()
    with o, g:
        cfg = _cfg(dataset, out, o, g, batch=True, budget_usd=cap)
        summary = run_generate(cfg)
    entries = _journal(out)
    by_variant = {v: {e["uid"] for e in entries if e["variant"] == v} for v in ("gpt", "gemini")}
    assert by_variant["gpt"] == by_variant["gemini"] and by_variant["gpt"]  # pairs, never one writer alone
    counts = summary["counts"]["cholect50"]
    assert sum(c["accepted"] for c in counts.values()) == len(by_variant["gpt"]) >= 2  # freed money reused
    assert summary["stopped"] == "budget" and 0 < summary["spent_usd"] <= cap
    assert summary["spent_usd"] == pytest.approx(sum(e["cost_usd"] for e in entries), abs=1e-6)
    bounds = _upper_bounds(cfg, batch=True)
    assert cap - summary["spent_usd"] < max(a + b for a, b in zip(bounds[::2], bounds[1::2]))


@pytest.mark.parametrize("fault", ["lose", "refuse"])
def test_a_batch_create_whose_reply_is_lost_is_looked_up_not_created_twice(dataset, tmp_path, reference, fault):
    """``lose``: the server created the job but answered 500; ``refuse``: 500 and no job. The client
    cannot tell them apart: it looks the job up by its token; not found, the job stays open (it may
    still appear) and the next run looks again before anything is submitted twice."""
    out = tmp_path / "gen"
    o, g = _servers(o={"batch_create_faults": (fault,)}, g={"batch_create_faults": (fault,)})

    def statuses() -> list[str]:
        return [j["status"] for j in json.loads((out / ".generation" / "batches.json").read_text())["jobs"]]

    with o, g:
        summary = run_generate(_cfg(dataset, out, o, g, batch=True))
        for server in (o, g):
            assert server.stats.batch_create_requests == 1  # never retried blindly
        if fault == "refuse":
            assert statuses() == ["submitting", "submitting"] and o.stats.batch_creates == 0
            assert summary["counts"]["cholect50"]["DVC"]["pending"] == 3
            summary = run_generate(_cfg(dataset, out, o, g, batch=True))  # looked up, not found: sent again
            assert statuses() == ["abandoned", "abandoned", "collected", "collected"]
        else:
            assert statuses() == ["collected", "collected"]
        for server in (o, g):
            assert server.stats.batch_creates == 1  # one job per writer, paid once
            assert server.stats.batch_lines_ok == N_DRAFTS and server.stats.repeated() == 0
    assert summary["content_hash"] == reference["content_hash"]


def test_expired_batch_lines_never_count_as_a_failure_streak(dataset, tmp_path, reference, monkeypatch):
    from mvbench.generation.engine import Engine

    monkeypatch.setattr(Engine, "abort_after", property(lambda self: 2))  # a real job expires thousands
    o, g = _servers(o={"batch_outcomes": ("expire",)}, g={"batch_outcomes": ("fail",)})
    with o, g:
        summary = run_generate(_cfg(dataset, tmp_path / "gen", o, g, batch=True))  # no ServerError
        assert o.stats.batch_creates == 2 and g.stats.batch_creates == 2
    assert summary["stopped"] is None and summary["content_hash"] == reference["content_hash"]


def test_recollecting_a_partly_journalled_job_journals_nothing_twice(dataset, tmp_path, reference):
    out = tmp_path / "gen"
    o, g = _servers()
    with o, g:
        run_generate(_cfg(dataset, out, o, g, batch=True))
        state = out / ".generation" / "batches.json"
        jobs = json.loads(state.read_text())
        for job in jobs["jobs"]:  # the process died after journalling, before saving "collected"
            job["status"] = "submitted"
        state.write_text(json.dumps(jobs))
        again = run_generate(_cfg(dataset, out, o, g, batch=True, budget_usd=1.0))
        assert o.stats.batch_creates == 1 and g.stats.batch_creates == 1
    lines = (out / ".generation" / "calls.jsonl").read_text().splitlines()
    assert len(lines) == 2 * N_DRAFTS
    assert again["spent_usd"] == pytest.approx(sum(e["cost_usd"] for e in _journal(out)), abs=1e-6)
    assert again["content_hash"] == reference["content_hash"]


def test_the_validator_is_paid_within_the_budget_and_counted(dataset, tmp_path):
    o, g = _servers()
    with o, g, FakeOpenAIServer(respond=lambda body: "A: 5\nB: 5") as v:
        def run(out: Path, cap: float) -> dict:
            return run_generate(_cfg(dataset, out, o, g, budget_usd=cap, concurrency=1, validator_model="gpt-4.1",
                                     validator_base_url=v.base_url))

        full = run(tmp_path / "full", 0.06)  # room for every writer call and every verdict
        assert v.stats.calls == N_DRAFTS
        capped = run(tmp_path / "capped", 0.03)  # the writers reach the cap: no verdict is bought after it
        assert v.stats.calls == N_DRAFTS
    entries = _journal(tmp_path / "full")
    verdicts = [e for e in entries if e["variant"] == "validator"]
    assert len(verdicts) == N_DRAFTS and all(e["cost_usd"] > 0 for e in verdicts)
    assert full["spent_usd"] == pytest.approx(sum(e["cost_usd"] for e in entries), abs=1e-6)  # verdicts included
    assert full["this_run"]["validator:gpt-4.1"]["live"] == N_DRAFTS
    assert full["accounting"]["validator:gpt-4.1"]["calls"] == N_DRAFTS
    assert capped["stopped"] == "budget" and capped["spent_usd"] <= 0.03
    est = run_generate(_cfg(dataset, tmp_path / "est", o, g, estimate=True, validator_model="gpt-4.1",
                            validator_base_url="http://127.0.0.1:9"))["estimate"]
    validator_row = next(w for w in est["writers"] if w["variant"] == "validator")
    assert validator_row["calls"] == N_DRAFTS and validator_row["cost_usd"] > 0
    assert est["total_cost_usd"] == pytest.approx(sum(w["cost_usd"] for w in est["writers"]), abs=1e-3)


def test_a_rerun_with_other_scope_or_options_keeps_earlier_accepted_records(dataset, tmp_path):
    out = tmp_path / "gen"
    o, g = _servers()
    with o, g:
        first = run_generate(_cfg(dataset, out, o, g, tasks=("DVC",)))
        assert first["counts"]["cholect50"]["DVC"]["accepted"] == 3
        second = run_generate(_cfg(dataset, out, o, g, tasks=("RC",), max_tokens=2048))
        with FakeOpenAIServer(respond=lambda body: "A: 5\nB: 5") as v:
            third = run_generate(_cfg(dataset, out, o, g, tasks=("RC",), validator_model="judge",
                                      validator_base_url=v.base_url))
    for summary in (second, third):
        assert summary["counts"]["cholect50"]["DVC"] == {"accepted": 3, "rejected": 0, "failed": 0, "pending": 0}
        assert summary["counts"]["cholect50"]["RC"]["accepted"] == 1
    dvc = [r for r in _records(out) if r.task == "DVC"]
    assert len(dvc) == 6 and {r.generator for r in dvc} == {"gpt-4.1", "gemini-2.5-flash"}


def test_an_interrupted_in_place_assemble_loses_no_record(dataset, tmp_path, reference, monkeypatch):
    """A crash between the shards and the manifest, when the shard count changes, then a rerun."""
    import shutil

    import mvbench.generation.assemble as assemble_module
    from mvbench.generation.plan import read_dataset

    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds, symlinks=True)
    manifest = json.loads((ds / "manifest.json").read_text())
    manifest["config"]["shard_size"] = 5  # generated records outnumber drafts: more shards than before
    (ds / "manifest.json").write_text(json.dumps(manifest))
    before = read_dataset(ds)

    def crash(*args, **kwargs):
        raise RuntimeError("killed before the manifest")

    o, g = _servers()
    with o, g:
        monkeypatch.setattr(assemble_module, "write_manifest", crash)
        with pytest.raises(RuntimeError, match="killed"):
            run_generate(_cfg(ds, ds, o, g))
        old = json.loads((ds / "manifest.json").read_text())
        assert all((ds / s).is_file() for s in old["shards"])  # the old manifest is whole
        assert [r.uid for r in read_dataset(ds)[1]] == [r.uid for r in before[1]]
        monkeypatch.undo()
        summary = run_generate(_cfg(ds, ds, o, g))
        assert o.stats.repeated() == 0 and g.stats.repeated() == 0
    new = json.loads((ds / "manifest.json").read_text())
    listed = {(ds / s).resolve() for s in new["shards"]}
    on_disk = {p.resolve() for p in ds.glob("*/*.parquet") if not p.parent.name.startswith(".")}
    assert on_disk == listed  # stale shards gone, every listed one there
    assert new["records"] == json.loads((reference["out"] / "manifest.json").read_text())["records"]
    assert summary["content_hash"] == reference["content_hash"]


def test_an_in_place_dataset_without_its_drafts_snapshot_is_refused_not_rewritten(dataset, tmp_path):
    import shutil

    from mvbench.errors import InputError
    from mvbench.generation.journal import Journal

    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds, symlinks=True)
    o, g = _servers()
    with o, g:
        run_generate(_cfg(ds, ds, o, g, tasks=("RC",)))
    calls = ds / ".generation" / "calls.jsonl"
    lines = calls.read_text().splitlines()
    calls.write_text("\n".join([lines[0], "{damaged", *lines[1:]]) + "\n")
    with pytest.raises(InputError, match="remove that one line") as damaged:
        Journal(ds / ".generation")
    assert "delete" not in str(damaged.value)
    shutil.rmtree(ds / ".generation")  # what no message advises any more
    manifest = (ds / "manifest.json").read_text()
    with pytest.raises(InputError, match="templates.parquet"):
        run_generate(_cfg(ds, ds, o, g))
    assert (ds / "manifest.json").read_text() == manifest  # nothing rewritten


def test_the_endpoint_is_part_of_the_cache_key_and_credentials_in_it_are_never_written(dataset, tmp_path):
    cache = tmp_path / "cache"
    o, g = _servers()
    with o, g:
        run_generate(_cfg(dataset, tmp_path / "a", o, g, cache_dir=cache, tasks=("RC",)))
    o2, g2 = _servers(o={"action_for": lambda body: "500"})  # another server under the same model name
    with o2, g2:
        secret = "pw-in-url-98765"
        url = o2.base_url.replace("http://", f"http://someone:{secret}@")
        cfg = _cfg(dataset, tmp_path / "b", o2, g2, cache_dir=cache, tasks=("RC",), max_retries=0)
        cfg.openai_base_url = cfg.writers[0].base_url.replace(o2.base_url, url)
        summary = run_generate(cfg)
        assert g2.stats.calls == 1 and o2.stats.calls == 1  # nothing replayed from the first server's answers
    assert summary["failed_calls"] == 1
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["generation"]["writers"][0]["endpoint"] == o2.base_url
    failures = (tmp_path / "b" / ".generation" / "failures.jsonl").read_text()
    assert o2.base_url in failures
    for path in [*(tmp_path / "b").rglob("*"), *cache.rglob("*")]:
        if path.is_file() and not path.is_symlink():
            assert secret not in path.read_bytes().decode("utf-8", errors="replace"), path


# ----- secrets ---------------------------------------------------------------------------------
def test_keys_reach_no_output_file_log_or_cache(dataset, tmp_path):
    openai_key, gemini_key = "sk-gen-SECRET-111111111111", "AIza-gen-SECRET-222222222222"
    out, cache = tmp_path / "gen", tmp_path / "cache"
    # the RC call of each writer fails for good with its credentials echoed; the rest pass
    def echo_rc(text_of):
        return lambda body: "echo_auth" if "green box" in text_of(body) else None

    from tests.servers.fake_openai import last_user_text as openai_text

    o, g = _servers(o={"action_for": echo_rc(openai_text)}, g={"action_for": echo_rc(gemini_text)})
    with o, g:
        env = {**_env(o, g), "OPENAI_API_KEY": openai_key, "GEMINI_API_KEY": gemini_key}
        proc = subprocess.run([*_generate_cmd(dataset, out, cache), "--max-retries", "2"], env=env,
                              capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "incomplete" in proc.stderr  # two calls failed for good
    failures = (out / ".generation" / "failures.jsonl").read_text()
    assert "[REDACTED]" in failures and "Bearer" in failures and "x-goog-api-key" in failures
    texts = [proc.stdout, proc.stderr]
    for root in (out, cache):
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink() and "frames" not in path.parts:
                texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    assert len(texts) > 8
    for text in texts:
        assert openai_key not in text and gemini_key not in text


# ----- the build shortcut, scored like official records -------------------------------------------
def test_build_generate_yields_records_that_score_like_official_ones(raw_root, tmp_path, monkeypatch):
    from mvbench.builders.export import export_medvidbench
    from mvbench.cli import app

    out = tmp_path / "built"
    o, g = _servers()
    with o, g:
        monkeypatch.setenv("OPENAI_BASE_URL", o.base_url)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", g.base_url)
        monkeypatch.setenv("MVBENCH_CACHE", str(tmp_path / "cache"))
        refused = CliRunner().invoke(app, ["build", "--source", "cholect50", "--root", str(raw_root), "--out",
                                           str(out), "--budget-usd", "1"])
        assert refused.exit_code == 2 and "--generate" in refused.output and not out.exists()
        result = CliRunner().invoke(app, ["build", "--source", "cholect50", "--root", str(raw_root), "--out",
                                          str(out), "--workers", "1", "--generate", "--budget-usd", "1"])
        assert result.exit_code == 0, result.output
        assert o.stats.ok == N_DRAFTS and g.stats.ok == N_DRAFTS
        assert json.loads((out / "manifest.json").read_text())["generation"]["budget_usd"] == 1.0
        first_hash = json.loads((out / "manifest.json").read_text())["content_hash"]
        again = CliRunner().invoke(app, ["generate", str(out)])  # in place again: drafts come from the snapshot
        assert again.exit_code == 0, again.output
        assert o.stats.calls == N_DRAFTS and g.stats.calls == N_DRAFTS  # nothing asked twice
        assert json.loads((out / "manifest.json").read_text())["content_hash"] == first_hash
    qa_types = {r.qa_type for r in read_parquet(out)}
    assert {f"{b}_{v}" for b in CAPTION_QA.values() for v in ("gpt", "gemini")} <= qa_types
    gt = export_medvidbench(out, tmp_path / "export", split="all", with_answers=True, frames=False)
    records = [r for r in json.loads(gt.read_text()) if r["qa_type"].endswith(("_gpt", "_gemini"))]
    gt_file = tmp_path / "gt.json"
    gt_file.write_text(json.dumps(records))
    submission = [{"id": r["id"], "qa_type": r["qa_type"], "prediction": r["conversations"][1]["value"]}
                  for r in records]
    (tmp_path / "sub.json").write_text(json.dumps(submission))
    scored = CliRunner().invoke(app, ["score", str(tmp_path / "sub.json"), "--ground-truth", str(gt_file),
                                      "--no-judge", "--output", str(tmp_path / "scores.json")])
    assert scored.exit_code == 0, scored.output
    scores = json.loads((tmp_path / "scores.json").read_text())
    flat = json.dumps(scores)
    assert '"dvc_f1": 1.0' in flat  # each generated DVC answer matches its own segments exactly
