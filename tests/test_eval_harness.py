"""End-to-end `mvbench eval` on official-format data with generated frames, against a local
OpenAI-protocol server: oracle answers, injected 500s and timeouts, permanent failures, kill -9 + resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from mvbench.eval.harness import EvalConfig, run_eval
from tests.servers.fake_openai import FakeOpenAIServer, last_user_text

from tests.test_records_roundtrip import DOC_EXAMPLES

REAL = ["trainval_4_records.json", "trainval_dvc_gemini_avos.json"]


def make_eval_dataset(samples_dir: Path, root: Path, frames_per_record: int = 3) -> tuple[Path, dict[str, str]]:
    """Official-format records (real trainval ones + doc examples for the other qa_types) with tiny
    generated frames at relative paths. Returns the JSON path and question → ground-truth answer."""
    records = [r for name in REAL for r in json.loads((samples_dir / name).read_text(encoding="utf-8"))]
    records += json.loads(json.dumps(DOC_EXAMPLES))
    answers: dict[str, str] = {}
    for i, rec in enumerate(records):
        rec["conversations"][0]["value"] += f" (sample {i})"  # unique questions for the oracle
        frames = [f"frames/{i}/{k:06d}.jpg" for k in range(frames_per_record)]
        rec["video"], rec["sampled_video_frames"] = frames, list(range(frames_per_record))
        if rec.get("RC_info"):
            rec["RC_info"]["start_frame"] = frames[0]
        for f in frames:
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (64, 48), (20 * (i % 10), 80, 120)).save(root / f)
        answers[rec["conversations"][0]["value"][len("<video>\n"):]] = rec["conversations"][1]["value"]
    path = root / "eval.json"
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path, answers


def oracle(answers: dict[str, str], fail_marker: str | None = None):
    def respond(body: dict) -> str:
        question = last_user_text(body)
        if fail_marker and fail_marker in question:
            raise RuntimeError("this sample always fails")  # the server drops the connection
        return answers[question]
    return respond


def _cfg(data: Path, out: Path, base_url: str, **kw) -> EvalConfig:
    return EvalConfig(data=str(data), model="openai:fake-model", out_dir=out, base_url=base_url, no_judge=True,
                      cache_dir=kw.pop("cache_dir", None), concurrency=kw.pop("concurrency", 4),
                      timeout_s=kw.pop("timeout_s", 5.0), max_retries=kw.pop("max_retries", 3), **kw)


def test_oracle_answers_score_perfectly_and_outputs_are_complete(samples_dir: Path, tmp_path: Path) -> None:
    data, answers = make_eval_dataset(samples_dir, tmp_path)
    with FakeOpenAIServer(respond=oracle(answers)) as srv:
        results = run_eval(_cfg(data, tmp_path / "out", srv.base_url))
    out = tmp_path / "out"
    assert results["tag_miou_0.3"] == 1.0 and results["tag_miou_0.5"] == 1.0
    assert results["stg_miou"] == 1.0 and results["nap_acc"] == 1.0
    assert results["sa_acc"] == 1.0 and results["cvs_acc"] == 1.0 and results["dvc_f1"] == 1.0
    assert results["vs_llm"] is None and results["judge_skipped_reason"] == "--no-judge"
    assert results["counts"]["answered"] == len(answers) and results["counts"]["failed"] == 0
    fp = results["fingerprint"]
    assert fp["backend"]["model"] == "fake-model" and fp["dataset"]["sha256"] and fp["packages"]["mvbench"]
    assert fp["generation_params"]["max_pixels"] == 48 * 28 * 28
    submission = json.loads((out / "submission.json").read_text())
    original = json.loads(data.read_text())
    assert [s["id"] for s in submission] == [r["id"] for r in original]  # test-file order
    assert {p.name for p in out.glob("samples_*.jsonl")} >= {"samples_TAG.jsonl", "samples_STG.jsonl",
                                                             "samples_DVC.jsonl", "samples_RC.jsonl"}
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == len(answers)


def test_credentials_in_a_base_url_reach_no_output_file(samples_dir: Path, tmp_path: Path) -> None:
    data, answers = make_eval_dataset(samples_dir, tmp_path)
    secret = "evalsecret-4242-pw"
    with FakeOpenAIServer(respond=oracle(answers)) as srv:
        url = srv.base_url.replace("http://", f"http://evaluser:{secret}@")
        results = run_eval(_cfg(data, tmp_path / "out", url))
    assert results["counts"]["answered"] == len(answers)
    assert results["config"]["base_url"] == srv.base_url  # the endpoint, without its credentials
    assert results["fingerprint"]["backend"]["base_url"] == srv.base_url
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(encoding="utf-8", errors="replace"), path


def test_injected_500s_and_timeouts_are_retried_to_the_same_results(samples_dir: Path, tmp_path: Path) -> None:
    data, answers = make_eval_dataset(samples_dir, tmp_path)
    with FakeOpenAIServer(respond=oracle(answers), script=["500", "hang", "500", "429"], hang_s=3.0) as srv:
        results = run_eval(_cfg(data, tmp_path / "out", srv.base_url, timeout_s=1.0, concurrency=1,
                                    max_retries=5))
        assert srv.stats.errors == 3 and srv.stats.hangs == 1
    assert results["counts"]["failed"] == 0
    assert results["tag_miou_0.3"] == 1.0 and results["stg_miou"] == 1.0


def test_permanent_failures_are_counted_and_scored_like_the_submission(samples_dir: Path, tmp_path: Path) -> None:
    from mvbench.eval.score import LEADERBOARD_KEYS, load_score_input, score_records

    data, answers = make_eval_dataset(samples_dir, tmp_path)
    with FakeOpenAIServer(respond=oracle(answers, fail_marker="(sample 2)")) as srv:
        results = run_eval(_cfg(data, tmp_path / "out", srv.base_url, max_retries=1))
    assert results["counts"]["failed"] == 1 and results["counts"]["answered"] == len(answers) - 1
    assert results["failures"][0]["qa_type"] == "tal" and "ServerError" in results["failures"][0]["error"]
    assert results["complete"] is False and results["counts"]["failed_scored_as_empty"] == 1
    submission = json.loads((tmp_path / "out" / "submission.json").read_text())
    assert submission[2]["prediction"] == ""
    # results.json equals what the leaderboard computes from submission.json (failed = empty answer)
    site = score_records(load_score_input(tmp_path / "out" / "submission.json", ground_truth=data)).summary
    assert {k: results[k] for k in LEADERBOARD_KEYS} == {k: site[k] for k in LEADERBOARD_KEYS}
    assert results["tag_miou_0.3"] == 0.0 and results["stg_miou"] == 1.0


def test_a_dead_server_stops_the_run_early_with_answers_saved(samples_dir: Path, tmp_path: Path) -> None:
    data, answers = make_eval_dataset(samples_dir, tmp_path)
    with FakeOpenAIServer(respond=oracle(answers), script=["ok", "ok"], fail_rate=1.0) as srv:
        with pytest.raises(Exception, match=r"stopped after \d+ consecutive failed requests .* 2 answers are saved"):
            run_eval(_cfg(data, tmp_path / "out", srv.base_url, max_retries=0, concurrency=1, abort_after=3))
        assert srv.stats.calls <= 2 + 3 + 2 < len(answers)  # stopped early, not one failure per sample
    with pytest.raises(Exception, match=r"cannot use the server at http://127.0.0.1:9/v1"):
        run_eval(_cfg(data, tmp_path / "o2", "http://127.0.0.1:9/v1"))


def test_server_model_name_is_discovered(samples_dir: Path, tmp_path: Path) -> None:
    data, answers = make_eval_dataset(samples_dir, tmp_path)
    # a vLLM serving the Hub id while the user names the registry alias
    with FakeOpenAIServer(model="Qwen/Qwen2.5-VL-7B-Instruct", respond=oracle(answers)) as srv:
        results = run_eval(EvalConfig(data=str(data), model="qwen2.5-vl-7b", out_dir=tmp_path / "o",
                                      base_url=srv.base_url, no_judge=True, cache_dir=None, tasks=["NAP"]))
        assert srv.requests[-1]["model"] == "Qwen/Qwen2.5-VL-7B-Instruct" and results["nap_acc"] == 1.0


def test_request_cache_makes_a_rerun_free(samples_dir: Path, tmp_path: Path) -> None:
    data, answers = make_eval_dataset(samples_dir, tmp_path)
    cache = tmp_path / "cache"
    with FakeOpenAIServer(respond=oracle(answers)) as srv:
        first = run_eval(_cfg(data, tmp_path / "a", srv.base_url, cache_dir=cache))
        calls = srv.stats.calls
        second = run_eval(_cfg(data, tmp_path / "b", srv.base_url, cache_dir=cache))
        assert srv.stats.calls == calls  # every answer came from the cache
    assert second["counts"]["cache_hits_this_run"] == len(answers)
    assert {k: first[k] for k in ("tag_miou_0.3", "stg_miou", "dvc_f1")} == \
        {k: second[k] for k in ("tag_miou_0.3", "stg_miou", "dvc_f1")}


def test_oneshot_mode_puts_the_official_example_in_a_system_instruction(samples_dir: Path, tmp_path: Path) -> None:
    data, answers = make_eval_dataset(samples_dir, tmp_path)
    with FakeOpenAIServer(respond=oracle(answers)) as srv:
        run_eval(_cfg(data, tmp_path / "out", srv.base_url, prompt_mode="oneshot", tasks=["NAP", "CVS"]))
        bodies = list(srv.requests)
    by_question = {last_user_text(b): b for b in bodies}
    nap = next(b for q, b in by_question.items() if answers[q] == "tying")
    system = nap["messages"][0]
    assert nap["messages"][0]["role"] == "system" and [m["role"] for m in nap["messages"]][1:] == ["user"]
    assert "--- Example ---" in system["content"] and "Answer: tying" in system["content"]
    cvs = next(b for q, b in by_question.items() if answers[q].startswith("Two structures"))
    assert "Answer: Two structures: " in cvs["messages"][0]["content"]  # synthetic, per-sample CVS example


@pytest.mark.slow
def test_kill_9_then_resume_requests_only_missing_samples(samples_dir: Path, tmp_path: Path) -> None:
    data, answers = make_eval_dataset(samples_dir, tmp_path)
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "from mvbench.cli import main; main()", "eval", "--data", str(data),
           "--model", "openai:fake-model", "--out", str(out), "--no-judge", "--no-cache", "--concurrency", "1"]
    with FakeOpenAIServer(respond=oracle(answers), latency_s=0.4) as srv:
        proc = subprocess.Popen(cmd + ["--base-url", srv.base_url], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        preds = out / "predictions.jsonl"
        deadline = time.time() + 60
        while time.time() < deadline and (not preds.exists() or len(preds.read_text().splitlines()) < 3):
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before = len(preds.read_text().splitlines())
        assert 3 <= done_before < len(answers)
        calls_before = srv.stats.calls
        subprocess.run(cmd + ["--base-url", srv.base_url], check=True, capture_output=True)
        assert srv.stats.calls - calls_before == len(answers) - done_before
    with FakeOpenAIServer(respond=oracle(answers)) as srv:
        reference = run_eval(_cfg(data, tmp_path / "ref", srv.base_url))
    resumed = json.loads((out / "results.json").read_text())
    for key in ("tag_miou_0.3", "tag_miou_0.5", "stg_miou", "dvc_f1", "nap_acc", "sa_acc", "cvs_acc"):
        assert resumed[key] == reference[key], key
    assert json.loads((out / "submission.json").read_text()) == \
        json.loads((tmp_path / "ref" / "submission.json").read_text())


def test_missing_frame_names_the_sample(samples_dir: Path, tmp_path: Path) -> None:
    data, _ = make_eval_dataset(samples_dir, tmp_path)
    (tmp_path / "frames" / "1" / "000002.jpg").unlink()
    with pytest.raises(Exception, match=r"frame not found: frames/1/000002.jpg"):
        run_eval(EvalConfig(data=str(data), model="baseline:prior", out_dir=tmp_path / "o", no_judge=True,
                            cache_dir=None))


JUDGE_REPLY = "R2: 4\nR3: 3\nR8: 4\nR5: 5\nR4: 4"


def test_judge_via_local_openai_compatible_server_and_its_cache(samples_dir: Path, tmp_path: Path) -> None:
    data, answers = make_eval_dataset(samples_dir, tmp_path)
    with FakeOpenAIServer(respond=oracle(answers)) as model_srv, \
            FakeOpenAIServer(model="judge-model", respond=lambda body: JUDGE_REPLY, script=["500"]) as judge_srv:
        cfg = dict(judge="judge-model", judge_base_url=judge_srv.base_url, cache_dir=tmp_path / "cache")
        results = run_eval(EvalConfig(data=str(data), model="openai:fake-model", out_dir=tmp_path / "a",
                                      base_url=model_srv.base_url, timeout_s=5.0, **cfg))
        judged_calls = judge_srv.stats.calls
        again = run_eval(EvalConfig(data=str(data), model="openai:fake-model", out_dir=tmp_path / "b",
                                    base_url=model_srv.base_url, timeout_s=5.0, **cfg))
        assert judge_srv.stats.calls == judged_calls  # judge answers came from its cache
    mean = (4 + 3 + 4 + 5 + 4) / 5
    assert results["vs_llm"] == pytest.approx(mean) and results["rc_llm"] == pytest.approx(mean)
    assert results["dvc_llm"] == pytest.approx(mean)
    assert results["judge"]["model"] == "judge-model" and results["judge_skipped_reason"] is None
    assert results["semantic_similarity"]["vs"] == pytest.approx(1.0, abs=1e-5)  # oracle answer = reference
    assert again["vs_llm"] == results["vs_llm"]


def test_official_test_file_with_frames_root_and_no_ground_truth(samples_dir: Path, tmp_path: Path) -> None:
    official = samples_dir / "test_tal_avos.json"
    rec = json.loads(official.read_text(encoding="utf-8"))[0]
    frames_root = tmp_path / "testdata"
    for path in rec["video"]:  # /root/data/AVOS/frames_15fps/<id>/<n>.jpg -> testdata/AVOS/frames_15fps/...
        target = frames_root / Path(path).relative_to("/root/data")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 24)).save(target)
    results = run_eval(EvalConfig(data=str(official), model="baseline:prior", out_dir=tmp_path / "out",
                                  frames_root=str(frames_root), no_judge=True, cache_dir=None))
    assert results["counts"]["answered"] == 1 and results["counts"]["scored_with_ground_truth"] == 0
    assert results["tag_miou_0.3"] is None
    submission = json.loads((tmp_path / "out" / "submission.json").read_text())
    assert submission == [{"id": rec["id"], "qa_type": "tal", "prediction": submission[0]["prediction"]}]
    assert submission[0]["prediction"].endswith("seconds.")


def test_hub_dataset_id_is_loaded_through_datasets(samples_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import datasets

    from mvbench.dataset_io import read_official_json, records_to_table
    from mvbench.eval.data import load_eval_data

    records = read_official_json(samples_dir / "trainval_4_records.json", split="test")
    table = records_to_table(records)
    calls = []

    def fake_load_dataset(repo_id, split):  # the Hub is out of reach here; the rows are real
        calls.append((repo_id, split))
        return datasets.Dataset(table)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = load_eval_data("someorg/medvidbench-built", split="test")
    assert calls == [("someorg/medvidbench-built", "test")] and data.kind == "hub"
    assert [r.to_official() for r in data.records] == [r.to_official() for r in records]


def test_out_dir_of_another_run_is_not_resumed_silently(samples_dir: Path, tmp_path: Path) -> None:
    data, answers = make_eval_dataset(samples_dir, tmp_path)
    out = tmp_path / "out"
    run_eval(EvalConfig(data=str(data), model="baseline:prior", out_dir=out, no_judge=True, cache_dir=None))
    with pytest.raises(Exception, match=r"another run \(differs in generation_params\)"):
        run_eval(EvalConfig(data=str(data), model="baseline:prior", out_dir=out, no_judge=True, cache_dir=None,
                            max_tokens=64))
    again = run_eval(EvalConfig(data=str(data), model="baseline:prior", out_dir=out, no_judge=True, cache_dir=None,
                                max_tokens=64, overwrite=True))
    assert again["counts"]["requested_this_run"] == len(answers)
    same = run_eval(EvalConfig(data=str(data), model="baseline:prior", out_dir=out, no_judge=True, cache_dir=None,
                               max_tokens=64, tasks=["TAG"]))
    assert same["counts"]["requested_this_run"] == 0  # a narrower selection resumes


def test_empty_answers_are_retried_and_make_the_run_incomplete(samples_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mvbench.cli import app

    data, answers = make_eval_dataset(samples_dir, tmp_path)
    out = tmp_path / "out"
    empty_once = {"(sample 1)", "(sample 3)"}

    def flaky(body: dict) -> str:
        question = last_user_text(body)
        marker = next((m for m in empty_once if m in question), None)
        if marker:
            empty_once.discard(marker)
            return "  \n"  # whitespace only: an empty answer
        return answers[question]

    args = ["eval", "--data", str(data), "--model", "openai:fake-model", "--out", str(out), "--no-judge",
            "--no-cache"]
    with FakeOpenAIServer(respond=flaky) as srv:
        first = CliRunner().invoke(app, args + ["--base-url", srv.base_url])
        assert first.exit_code == 1, first.output
        assert "2 answers are empty" in first.output
        results = json.loads((out / "results.json").read_text())
        assert results["complete"] is False and results["submission_complete"] is False
        assert results["counts"]["empty_answers"] == 2 and len(results["empty_answers"]) == 2
        calls = srv.stats.calls
        second = CliRunner().invoke(app, args + ["--base-url", srv.base_url])
        assert second.exit_code == 0, second.output
        assert srv.stats.calls - calls == 2  # only the two empty answers were requested again
    results = json.loads((out / "results.json").read_text())
    assert results["complete"] is True and results["counts"]["empty_answers"] == 0
    assert results["empty_answers"] == [] and results["tag_miou_0.3"] == 1.0


def test_a_run_whose_every_answer_is_empty_fails(samples_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mvbench.cli import app

    data, answers = make_eval_dataset(samples_dir, tmp_path)
    with FakeOpenAIServer(respond=lambda body: "") as srv:
        result = CliRunner().invoke(app, ["eval", "--data", str(data), "--model", "openai:fake-model", "--out",
                                          str(tmp_path / "out"), "--no-judge", "--no-cache", "--base-url",
                                          srv.base_url])
    assert result.exit_code == 1
    assert f"every answer ({len(answers)}) is empty" in result.output
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["complete"] is False and results["counts"]["empty_answers"] == len(answers)


def test_an_aborted_run_writes_results_marked_incomplete_with_the_failures(samples_dir: Path, tmp_path: Path) -> None:
    data, answers = make_eval_dataset(samples_dir, tmp_path)
    out = tmp_path / "out"
    with FakeOpenAIServer(respond=oracle(answers), script=["ok", "ok"], fail_rate=1.0) as srv:
        with pytest.raises(Exception, match=r"stopped after \d+ consecutive .*/results.json lists the failures"):
            run_eval(_cfg(data, out, srv.base_url, max_retries=0, concurrency=1, abort_after=3))
    results = json.loads((out / "results.json").read_text())
    assert results["complete"] is False and results["submission_complete"] is False
    assert results["aborted"].startswith("stopped after ") and "consecutive failed requests" in results["aborted"]
    assert results["counts"]["answered"] == 2 and results["counts"]["failed"] == len(answers) - 2
    errors = [f["error"] for f in results["failures"]]
    requested = [e for e in errors if not e.startswith("not requested: the run stopped early (stopped after")]
    assert 3 <= len(requested) < len(answers) - 2  # stopped early; the failed requests each with its error
    assert all(e.startswith("ServerError") for e in requested)
    assert results["judge_skipped_reason"] == "the run stopped early"
    assert results["fingerprint"]["generation_params"]["frame_encoding"] == "png"
    assert "PNG (lossless)" in results["fingerprint"]["frames_rule"]
    assert len(json.loads((out / "submission.json").read_text())) == len(answers)
    # the rerun resumes: only what is missing is requested, and the run completes
    with FakeOpenAIServer(respond=oracle(answers)) as srv:
        results = run_eval(_cfg(data, out, srv.base_url))
        assert srv.stats.calls == len(answers) - 2
    assert results["complete"] is True and results["aborted"] is None and results["failures"] == []
