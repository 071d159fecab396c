"""`mvbench eval --model M` with no --data: the official test set from a Hugging Face cache the tests
build in the hub's own layout (real test records, a fake testdata.zip), extracted once; truncated and
corrupt archives; --tp/--dp on a launched (fake) vLLM; the missing-vLLM hint; missing --data paths.

Nothing here touches the network: HF_HUB_OFFLINE=1 and every cache lives under tmp_path.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from mvbench.errors import InputError, ServerError
from mvbench.eval.official import (FRAMES_FILE, LEADERBOARD_URL, MARKER, QUESTIONS_FILE, REPO_ID, ensure_extracted,
                                   fetch_official_test)
from mvbench.eval.vllm_launcher import check_gpus, visible_gpus
from mvbench.models import ModelSpec

MAIN = "from mvbench.cli import main; main()"
TEST_DATA = Path(__file__).parent / "data" / "medvidbench-samples"  # the real public test records (CC BY-NC-SA 4.0)
# Not alphabetical, not grouped by task: the submission must follow exactly this order.
ORDER = ["test_stg_cholectrack20.json", "test_tal_avos.json", "test_dvc_gpt_copesd.json",
         "test_rc_gpt_cholectrack20.json"]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO_FOLDER = "datasets--" + REPO_ID.replace("/", "--")


def official_records() -> list[dict]:
    """The real test records, in :data:`ORDER`."""
    return [r for name in ORDER for r in json.loads((TEST_DATA / name).read_text(encoding="utf-8"))]


def _image_bytes(fmt: str, shade: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (shade, 90, 140)).save(buf, format=fmt)
    return buf.getvalue()


def frames_zip(records: list[dict]) -> bytes:
    """testdata.zip as the official one is inferred to be: ``testdata/<path under /root/data>``."""
    paths = []
    for rec in records:
        paths += rec["video"] + ([rec["RC_info"]["start_frame"]] if rec.get("RC_info") else [])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i, path in enumerate(dict.fromkeys(paths)):
            rel = Path(path).relative_to("/root/data")
            zf.writestr(f"testdata/{rel.as_posix()}", _image_bytes("PNG" if path.endswith(".png") else "JPEG", i % 200))
    return buf.getvalue()


def build_hf_cache(cache: Path, files: dict[str, bytes], *, etag_named: set[str] | None = None) -> Path:
    """The hub's cache layout for UII-AI/MedVidBench at :data:`COMMIT` (refs/main without newline).

    Files in ``etag_named`` (default: all, as both official files are LFS) are blobs named by the
    sha256 of ``files[name]`` (a snapshot link to them); others are plain files in the snapshot.
    """
    etag_named = set(files) if etag_named is None else etag_named
    repo = cache / REPO_FOLDER
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snap = repo / "snapshots" / COMMIT
    snap.mkdir(parents=True, exist_ok=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for name, data in files.items():
        if name in etag_named:
            blob = hashlib.sha256(data).hexdigest()
            (repo / "blobs" / blob).write_bytes(data)
            os.symlink(f"../../blobs/{blob}", snap / name)
        else:
            (snap / name).write_bytes(data)
    return snap


def _questions_bytes(records: list[dict]) -> bytes:
    return json.dumps(records, ensure_ascii=False, indent=2).encode("utf-8")


@pytest.fixture
def offline(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    drop = ("OPENAI_API_KEY", "HF_TOKEN", "CUDA_VISIBLE_DEVICES", "MVBENCH_DEBUG")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "hub"), HF_HOME=str(tmp_path / "hf-home"),
               MVBENCH_CACHE=str(tmp_path / "mvbench-cache"))
    env.update(extra)
    return env


def _mvbench(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", MAIN, *args], cwd=tmp_path, capture_output=True, text=True,
                          env=env or _env(tmp_path), timeout=300, check=False)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


# -- the official test set by default -----------------------------------------------------------


def test_eval_without_data_uses_the_cached_official_test_set_and_extracts_once(tmp_path: Path) -> None:
    records = official_records()
    archive = frames_zip(records)
    build_hf_cache(tmp_path / "hub", {QUESTIONS_FILE: _questions_bytes(records), FRAMES_FILE: archive})

    first = _mvbench(tmp_path, "eval", "--model", "baseline:prior")
    assert first.returncode == 0, first.stderr
    out = tmp_path / "runs" / "baseline_prior__official-test"
    submission = json.loads((out / "submission.json").read_text())
    assert [s["id"] for s in submission] == [r["id"] for r in records]  # test-file order
    assert [s["qa_type"] for s in submission] == [r["qa_type"] for r in records]
    assert all(isinstance(s["prediction"], str) and s["prediction"] for s in submission)
    # ends with one line pointing at the leaderboard; no table of dashes
    last = first.stderr.strip().splitlines()[-1]
    assert str(Path("runs") / "baseline_prior__official-test" / "submission.json") in last
    assert "scores come from the MedVidBench leaderboard" in last and LEADERBOARD_URL in last
    assert "—" not in first.stdout and "tag_miou" not in first.stdout
    assert "unpacking testdata.zip" in first.stderr

    results = json.loads((out / "results.json").read_text())
    dataset = results["fingerprint"]["dataset"]
    assert dataset["kind"] == "official-test" and dataset["hub"]["commit"] == COMMIT
    assert dataset["hub"]["revision"] == "main" and dataset["hub"]["repo"] == f"datasets/{REPO_ID}"
    assert dataset["hub"]["files"][FRAMES_FILE]["sha256"] == hashlib.sha256(archive).hexdigest()
    assert dataset["origin"] == f"hf://datasets/{REPO_ID}@{COMMIT}/{QUESTIONS_FILE}"
    assert results["counts"]["answered"] == len(records) and results["counts"]["scored_with_ground_truth"] == 0

    extracted = tmp_path / "mvbench-cache" / "official" / hashlib.sha256(archive).hexdigest()[:16]
    frame = extracted / "testdata" / "AVOS" / "frames_15fps" / "kcOqlifSukA" / "22425.jpg"
    assert frame.is_file() and (extracted / MARKER).is_file()
    assert not list(extracted.parent.glob("*.partial")) and not list(extracted.rglob("*.part"))
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (frame, extracted / MARKER)}

    second = _mvbench(tmp_path, "eval", "--model", "baseline:prior")
    assert second.returncode == 0, second.stderr
    assert "unpacking" not in second.stderr and "already unpacked" in second.stderr
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in before} == before  # nothing extracted again
    again = json.loads((out / "results.json").read_text())
    assert again["counts"]["requested_this_run"] == 0  # the same out folder resumed
    assert json.loads((out / "submission.json").read_text()) == submission


@pytest.mark.parametrize("damage", ["truncated blob named by its Hub sha256", "truncated plain file",
                                    "corrupt member"])
def test_a_damaged_archive_is_reported_in_one_line_and_never_used(tmp_path: Path, offline, damage: str) -> None:
    records = official_records()
    good = frames_zip(records)
    if damage == "corrupt member":
        with zipfile.ZipFile(io.BytesIO(good)) as zf:
            info = zf.infolist()[5]
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        bad = bytearray(good)
        bad[start + 20] ^= 0xFF  # stored member: one flipped byte breaks its CRC
        files, etag_named, match = {FRAMES_FILE: bytes(bad)}, set(), r"corrupt zip archive at member"
    elif damage == "truncated plain file":
        files, etag_named, match = {FRAMES_FILE: good[: len(good) // 2]}, set(), r"truncated or corrupt zip"
    else:
        files, etag_named, match = {FRAMES_FILE: good}, {FRAMES_FILE}, r"damaged download"
    snap = build_hf_cache(tmp_path / "hub", {QUESTIONS_FILE: _questions_bytes(records), **files},
                          etag_named={QUESTIONS_FILE, *etag_named})
    if damage.startswith("truncated blob"):  # an interrupted copy: the blob keeps its name, loses its tail
        blob = Path(os.path.realpath(snap / FRAMES_FILE))
        blob.write_bytes(good[: len(good) - 1000])
    root = tmp_path / "extract"
    with pytest.raises(InputError, match=match) as err:
        fetch_official_test(hf_cache_dir=tmp_path / "hub", extract_root=root)
    assert "\n" not in str(err.value) and FRAMES_FILE in str(err.value) and "download again" in str(err.value)
    assert sorted(p.name for p in root.iterdir()) == [".extract.lock"]  # nothing left to be used

    # the same cache with a good archive works, and is not poisoned by the failed attempt
    (snap / FRAMES_FILE).unlink()
    (snap / FRAMES_FILE).write_bytes(good)
    official = fetch_official_test(hf_cache_dir=tmp_path / "hub", extract_root=root)
    assert official.extracted == len(zipfile.ZipFile(io.BytesIO(good)).infolist())
    assert official.provenance["commit"] == COMMIT


def test_an_interrupted_extraction_resumes_and_a_tampered_one_is_redone(tmp_path: Path) -> None:
    archive = tmp_path / FRAMES_FILE
    archive.write_bytes(frames_zip(official_records()))
    total = len(zipfile.ZipFile(archive).infolist())
    root = tmp_path / "extract"

    def stop_after_three(done: int, _total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ensure_extracted(archive, root, progress=stop_after_three)
    assert [p.name for p in root.iterdir() if p.is_dir()] == [f"{hashlib.sha256(archive.read_bytes()).hexdigest()[:16]}.partial"]
    resumed = ensure_extracted(archive, root)
    assert (resumed.extracted, resumed.reused) == (total - 3, 3)
    assert resumed.frames_root == resumed.root / "testdata"
    assert ensure_extracted(archive, root).extracted == 0

    victim = next(resumed.frames_root.rglob("*.png"))
    victim.write_bytes(b"not the archive's bytes")
    redone = ensure_extracted(archive, root)
    assert redone.extracted == total and victim.read_bytes() != b"not the archive's bytes"


def test_offline_missing_file_says_what_to_download_and_where(tmp_path: Path) -> None:
    line = _one_error_line(_mvbench(tmp_path, "eval", "--model", "baseline:prior"))
    assert f"{QUESTIONS_FILE} ({REPO_ID}@main) is not in the Hugging Face cache {tmp_path / 'hub'}" in line
    assert f"download {REPO_ID} {QUESTIONS_FILE} {FRAMES_FILE} --repo-type dataset --revision main" in line
    assert "HF_HUB_OFFLINE=1" in line and "--frames-root" in line and "--data" in line

    # the questions cached but not the frames: the archive is named
    build_hf_cache(tmp_path / "hub", {QUESTIONS_FILE: _questions_bytes(official_records())})
    line = _one_error_line(_mvbench(tmp_path, "eval", "--model", "baseline:prior"))
    assert f"{FRAMES_FILE} ({REPO_ID}@{COMMIT}) is not in the Hugging Face cache" in line


def test_official_test_with_frames_root_needs_only_the_questions(tmp_path: Path, offline, monkeypatch) -> None:
    import huggingface_hub.constants

    from mvbench.eval.harness import EvalConfig, run_eval

    records = official_records()
    build_hf_cache(tmp_path / "hub", {QUESTIONS_FILE: _questions_bytes(records)})
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    frames = tmp_path / "unpacked"
    with zipfile.ZipFile(io.BytesIO(frames_zip(records))) as zf:
        zf.extractall(frames)
    results = run_eval(EvalConfig(data="official-test", model="baseline:prior", out_dir=tmp_path / "out",
                                  frames_root=str(frames / "testdata"), no_judge=True, cache_dir=None))
    assert results["counts"]["answered"] == len(records)
    assert results["fingerprint"]["dataset"]["hub"]["commit"] == COMMIT
    assert FRAMES_FILE not in results["fingerprint"]["dataset"]["hub"]["files"]


# -- vLLM: --tp/--dp, visible GPUs, missing vLLM ------------------------------------------------

# A stand-in for vLLM's OpenAI server module: records its argv, serves /health, /v1/models and
# chat completions (a fixed TAG answer).
FAKE_API_SERVER = textwrap.dedent("""
    import http.server, json, os, sys
    argv = sys.argv[1:]
    with open(os.environ["FAKE_VLLM_ARGV"], "w") as f:
        json.dump(argv, f)
    port = int(argv[argv.index("--port") + 1])
    served = argv[argv.index("--served-model-name") + 1]

    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, status, payload):
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/health":
                self._send(200, {})
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": served, "object": "model", "owned_by": "fake"}]})
            else:
                self._send(404, {})

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": served,
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": "0.0-1.0 seconds."}}],
                             "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}})

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
""")


def _fake_vllm_python(tmp_path: Path) -> Path:
    """An interpreter wrapper whose Python imports a fake ``vllm`` package (the server above)."""
    pkg = tmp_path / "fake-vllm" / "vllm" / "entrypoints" / "openai"
    pkg.mkdir(parents=True)
    for folder in (pkg.parent.parent, pkg.parent, pkg):
        (folder / "__init__.py").write_text("")
    (pkg / "api_server.py").write_text(FAKE_API_SERVER)
    wrapper = tmp_path / "vllm-python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={tmp_path / "fake-vllm"} exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def test_tp_dp_reach_the_launched_server_and_the_fingerprint(tmp_path: Path) -> None:
    records = official_records()
    build_hf_cache(tmp_path / "hub", {QUESTIONS_FILE: _questions_bytes(records), FRAMES_FILE: frames_zip(records)})
    python = _fake_vllm_python(tmp_path)
    argv_file = tmp_path / "argv.json"
    args = ("eval", "--model", "qwen2.5-vl-7b", "--tp", "2", "--dp", "2", "--vllm-python", str(python),
            "--tasks", "TAG", "--no-judge", "--no-cache", "--out", "out")

    refused = _mvbench(tmp_path, *args, env=_env(tmp_path, CUDA_VISIBLE_DEVICES="0", FAKE_VLLM_ARGV=str(argv_file)))
    assert "--tp 2 --dp 2 needs 4 GPUs (tp × dp), 1 visible (CUDA_VISIBLE_DEVICES='0')" in _one_error_line(refused)
    assert not argv_file.exists()  # checked before launch

    proc = _mvbench(tmp_path, *args, env=_env(tmp_path, CUDA_VISIBLE_DEVICES="0,1,2,3",
                                              FAKE_VLLM_ARGV=str(argv_file)))
    assert proc.returncode == 0, proc.stderr
    argv = json.loads(argv_file.read_text())
    assert argv[:2] == ["--model", "Qwen/Qwen2.5-VL-7B-Instruct"]
    flags = dict(zip(argv[2::2], argv[3::2]))
    assert flags["--tensor-parallel-size"] == "2" and flags["--data-parallel-size"] == "2"
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    spec = results["fingerprint"]["model_spec"]
    assert (spec["tensor_parallel_size"], spec["data_parallel_size"]) == (2, 2)
    assert results["counts"]["answered"] == 1
    assert json.loads((tmp_path / "out" / "submission.json").read_text())[0]["prediction"] == "0.0-1.0 seconds."


def test_visible_gpus_from_cuda_visible_devices_and_nvidia_smi(tmp_path: Path) -> None:
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,1,2"}) == 3
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == 0
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,-1,2"}) == 1  # CUDA stops at the first invalid entry
    assert visible_gpus({"PATH": str(tmp_path)}) is None  # no nvidia-smi
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\n[ \"$1\" = -L ] || exit 2\n"
                   "echo 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-a)'\necho 'GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-b)'\n")
    smi.chmod(0o755)
    assert visible_gpus({"PATH": str(tmp_path)}) == 2
    check_gpus(ModelSpec(model="m", tensor_parallel_size=2), 2)
    with pytest.raises(ServerError, match=r"--tp 1 --dp 4 needs 4 GPUs \(tp × dp\), 2 visible \(nvidia-smi -L\)"):
        check_gpus(ModelSpec(model="m", data_parallel_size=4), 2, {})
    with pytest.raises(ServerError, match=r"needs 2 GPUs, but none can be seen"):
        check_gpus(ModelSpec(model="m", tensor_parallel_size=2), None, {})
    check_gpus(ModelSpec(model="m"), None)  # one GPU (or vLLM's CPU build) is vLLM's own business


def test_tp_without_a_launched_vllm_is_refused(tmp_path: Path) -> None:
    line = _one_error_line(_mvbench(tmp_path, "eval", "--model", "baseline:prior", "--tp", "2"))
    assert "--tp/--dp set the parallelism of a vLLM server that mvbench launches" in line


def _local_official_json(tmp_path: Path) -> Path:
    path = tmp_path / "test.json"
    path.write_bytes(_questions_bytes(official_records()))
    return path


def test_missing_vllm_gives_the_one_line_hint(tmp_path: Path) -> None:
    checkpoint = tmp_path / "my-checkpoint"
    checkpoint.mkdir()
    no_site = tmp_path / "python-without-site-packages"
    no_site.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    no_site.chmod(0o755)
    line = _one_error_line(_mvbench(tmp_path, "eval", "--model", str(checkpoint), "--data",
                                    str(_local_official_json(tmp_path)), "--vllm-python", str(no_site)))
    assert f"vLLM is not importable by {no_site}" in line
    for fix in ("pip install 'mvbench[serve]'", "--vllm-python", "--base-url", "--backend hf"):
        assert fix in line
    assert not (tmp_path / "runs").exists()  # refused before anything was written


def test_missing_vllm_in_this_python_gives_the_hint(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed in this Python: nothing to refuse")
    env = _env(tmp_path, PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin")
    line = _one_error_line(_mvbench(tmp_path, "eval", "--model", "qwen2.5-vl-7b", "--data",
                                    str(_local_official_json(tmp_path)), env=env))
    assert "vLLM is not installed in this Python" in line and "pip install 'mvbench[serve]'" in line


# -- --data that names no local file ------------------------------------------------------------


@pytest.mark.parametrize("data", ["runs/built", "nowhere/test.json", "./someorg/medvidbench", "missing.json"])
def test_missing_local_data_is_file_not_found(tmp_path: Path, data: str, monkeypatch) -> None:
    import datasets

    from mvbench.eval.data import load_eval_data

    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("a local path went to the Hub"))
    with pytest.raises(InputError, match=r"file not found") as err:
        load_eval_data(data)
    assert err.value.path == str(Path(data))


def test_missing_local_data_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    line = _one_error_line(_mvbench(tmp_path, "eval", "--model", "baseline:prior", "--data", "runs/built"))
    assert line.startswith("error: runs/built: file not found") and "Hub" in line
