"""`mvbench publish` / `mvbench materialise` without a network: the dry-run folder loads with
`datasets.load_dataset(DIR, config)` and matches the manifest, frames come back byte for byte and
evaluate like the original, the token is never shown, and an unchanged re-publish plans nothing.

The Hub side of a real publish is a local double (:class:`LocalHub`) that keeps the repository in a
folder and records every call; the real client is exercised up to the network (offline mode).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
# BUILTIN_SOURCES, not fixture_sources(): other test modules register test sources in the same process
from mvbench.builders import BUILTIN_SOURCES
from mvbench.builders.fixtures import make_fixture
from mvbench.builders.manifest import content_hash
from mvbench.builders.pipeline import BuildOptions, build
from mvbench.builders.publish import (
    FileInfo,
    check_hub_limits,
    file_info,
    load_record,
    materialise,
    plan,
    publish,
    record_path,
    stage,
)
from mvbench.eval.harness import EvalConfig, run_eval

from mvbench.dataset_io import read_parquet
from mvbench.errors import InputError
from mvbench.records import Record
from mvbench.tasks import LEADERBOARD_KEYS

TOKEN = "hf_TESTtokenDoNotPrint0123456789abcdef"
REPO_ID = "mvbench-test/medvidbench-fixture"


class LocalHub:
    """A Hub repository kept in a folder: uploads copy the allowed files, deletes remove; calls are recorded."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.calls: list[tuple] = []
        self.commit: str | None = None

    def head(self, repo_id: str) -> str | None:
        return self.commit

    def create_repo(self, repo_id: str, private: bool) -> str:
        self.calls.append(("create_repo", repo_id, private))
        self.folder.mkdir(parents=True, exist_ok=True)
        return f"local://{repo_id}"

    def upload(self, folder: Path, repo_id: str, allow, delete, message: str) -> str:
        self.calls.append(("upload", repo_id, sorted(allow), sorted(delete), message))
        for rel in allow:
            (self.folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / rel, self.folder / rel)
        for rel in delete:
            (self.folder / rel).unlink()
        self.commit = f"commit{len(self.calls)}"
        return self.commit

    def files(self) -> dict[str, FileInfo]:
        return {p.relative_to(self.folder).as_posix(): file_info(p) for p in self.folder.rglob("*") if p.is_file()}


def _build(root: Path, out: Path, sources: list[str]) -> Path:
    roots = [(name, root / "raw" / name / ".root") for name in sources]
    roots = [(name, Path(r.read_text()) if r.is_file() else _fixture(name, root)) for name, r in roots]
    build(roots, BuildOptions(out=out, workers=1))
    return out


def _fixture(name: str, root: Path) -> Path:
    tree = make_fixture(name, root / "raw" / name)
    (root / "raw" / name / ".root").write_text(str(tree))
    return tree


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pub")
    return _build(root, root / "dataset", BUILTIN_SOURCES)


def _cli(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from mvbench.cli import main; main()", *map(str, args)],
                          capture_output=True, text=True, env=env)


def _env(tmp: Path, token: str | None = TOKEN) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE"))}
    env.update({"HF_HOME": str(tmp / "hf-home"), "HF_HUB_OFFLINE": "1"})
    if token:
        env["HF_TOKEN"] = token
    return env


def _no_token_in(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_dry_run_round_trip(dataset: Path, tmp_path: Path) -> None:
    import datasets

    manifest = json.loads((dataset / "manifest.json").read_text())
    dry = tmp_path / "dry"
    proc = _cli("publish", dataset, "--repo-id", REPO_ID, "--dry-run", dry, env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr
    _no_token_in(dry)
    assert proc.stdout.strip() == str(dry) and "plan (no earlier publish recorded): upload" in proc.stderr
    assert not record_path(dataset, REPO_ID).exists()  # a dry run records no publish

    counts = manifest["counts"]
    cache = tmp_path / "hf-datasets"
    for config, select in (("all", lambda s, t: True), ("TAG", lambda s, t: t == "TAG"),
                           ("RC", lambda s, t: t == "RC"), ("nurvid", lambda s, t: s == "nurvid"),
                           ("cholect50", lambda s, t: s == "cholect50")):
        loaded = datasets.load_dataset(str(dry), config, cache_dir=str(cache))
        assert {split: len(ds) for split, ds in loaded.items()} == dict(_sum(counts, select)), config
    default = datasets.load_dataset(str(dry), split="test", cache_dir=str(cache))  # the default config: all
    assert len(default) == _sum(counts, lambda s, t: True)["test"]
    # the records themselves: every TAG test row equals the built record
    built = {r.uid: r for r in read_parquet(dataset)}
    tag = datasets.load_dataset(str(dry), "TAG", split="test", cache_dir=str(cache))
    rows = [Record.from_row(row) for row in tag]
    assert {r.uid for r in rows} == {u for u, r in built.items() if r.task == "TAG" and r.split == "test"}
    assert all(r.to_row() == built[r.uid].to_row() for r in rows)
    frames = datasets.load_dataset(str(dry), "frames", cache_dir=str(cache))
    assert sum(len(ds) for ds in frames.values()) == manifest["frames"]["count"]
    first = frames["test"][0]
    assert first["image"].size[0] > 0 and (dataset / first["path"]).is_file()

    restored = tmp_path / "restored"
    proc = _cli("materialise", dry, "--out", restored, env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert content_hash(read_parquet(restored))[0] == manifest["content_hash"]
    originals = sorted(p.relative_to(dataset) for p in (dataset / "frames").rglob("*.jpg"))
    assert sorted(p.relative_to(restored) for p in (restored / "frames").rglob("*.jpg")) == originals
    assert all((restored / p).read_bytes() == (dataset / p).read_bytes() for p in originals)

    proc = _cli("eval", "--model", "baseline:prior", "--data", restored, "--out", tmp_path / "run-restored",
                "--no-judge", "--no-cache", env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    again = json.loads((tmp_path / "run-restored" / "results.json").read_text())
    original = run_eval(EvalConfig(data=str(dataset), model="baseline:prior", out_dir=tmp_path / "run-original",
                                   no_judge=True, cache_dir=None))
    assert again["fingerprint"]["dataset"]["sha256"] == original["fingerprint"]["dataset"]["sha256"]
    assert again["fingerprint"]["dataset"]["fixture"] is True
    assert {k: again[k] for k in LEADERBOARD_KEYS} == {k: original[k] for k in LEADERBOARD_KEYS}
    assert again["counts"]["samples"] == _sum(counts, lambda s, t: True)["test"]


def _sum(counts: dict, select) -> Counter:
    out: Counter = Counter()
    for src, by_task in counts.items():
        for task, by_split in by_task.items():
            if select(src, task):
                out.update(by_split)
    return out


@pytest.mark.slow
def test_unchanged_republish_plans_zero_uploads(dataset: Path, tmp_path: Path) -> None:
    work = tmp_path / "copy"
    shutil.copytree(dataset, work)
    hub = LocalHub(tmp_path / "hub")
    first = publish(work, REPO_ID, client=hub, private=True)
    assert first.uploaded and first.plan.first and hub.calls[0] == ("create_repo", REPO_ID, True)
    staged_dry = stage(work, tmp_path / "dry", REPO_ID)
    assert hub.files() == staged_dry.files  # the Hub holds exactly what a dry run writes
    assert load_record(work, REPO_ID)["commit"] == "commit2"

    # the same dataset rebuilt (every video resumes, the manifest is rewritten) plans no upload
    roots = [(name, Path(info["root"])) for name, info in json.loads((work / "manifest.json").read_text())["sources"].items()]
    build(roots, BuildOptions(out=work, workers=1))
    calls = len(hub.calls)
    again = publish(work, REPO_ID, client=hub)
    assert again.plan.empty and again.plan.upload == [] and again.plan.delete == [] and not again.uploaded
    assert len(again.plan.unchanged) == len(first.staged.files) and len(hub.calls) == calls  # no create, no upload
    assert plan(stage(work, tmp_path / "dry", REPO_ID).files, load_record(work, REPO_ID)).empty

    # one source fewer: only the card, licence and manifest change; that source's files are deleted
    smaller = _build(tmp_path, tmp_path / "smaller", [s for s in BUILTIN_SOURCES if s != "nurvid"])
    record_path(smaller, REPO_ID).parent.mkdir(parents=True)
    shutil.copyfile(record_path(work, REPO_ID), record_path(smaller, REPO_ID))
    change = publish(smaller, REPO_ID, client=hub)
    assert change.plan.upload == ["LICENSE.md", "README.md", "manifest.json"]
    assert change.plan.delete and all("/nurvid/" in p for p in change.plan.delete)
    assert hub.files() == change.staged.files

    # the repository changed behind the record (reset, edited on the Hub): the record is not trusted
    hub.commit = "someone-else"
    again = publish(smaller, REPO_ID, client=hub)
    assert again.plan.first and again.uploaded and hub.files() == again.staged.files


@pytest.mark.slow
def test_the_token_is_never_shown(dataset: Path, tmp_path: Path) -> None:
    # The real client, offline: it gets as far as the network and fails on one line, token hidden.
    proc = _cli("publish", dataset, "--repo-id", REPO_ID, env=_env(tmp_path))
    assert proc.returncode == 1 and TOKEN not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    assert "Hugging Face Hub: creating" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = _cli("-v", "publish", dataset, "--repo-id", REPO_ID, env=_env(tmp_path))
    assert proc.returncode == 1 and TOKEN not in proc.stdout + proc.stderr
    proc = _cli("publish", dataset, "--repo-id", REPO_ID, env=_env(tmp_path, token=None))
    assert proc.returncode == 1 and "no Hugging Face token" in proc.stderr
    from mvbench.builders.publish import HfHubClient
    assert TOKEN not in repr(HfHubClient(token=TOKEN))
    assert not list(dataset.parent.glob(".mvbench-publish-*"))  # the temporary staging is gone


@pytest.mark.slow
def test_sources_without_clear_terms_need_confirmation(dataset: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    shutil.copytree(dataset, real)
    manifest = json.loads((real / "manifest.json").read_text())
    (real / "manifest.json").write_text(json.dumps({**manifest, "fixture": False}))  # as if built from real data
    hub = LocalHub(tmp_path / "hub")
    with pytest.raises(InputError, match="jigsaws") as info:
        publish(real, REPO_ID, client=hub)
    assert "--confirm-terms" in str(info.value) and hub.calls == []
    assert publish(real, REPO_ID, client=None).plan.upload  # a dry run is always allowed
    assert publish(real, REPO_ID, client=hub, confirm_terms=True).uploaded
    card = (tmp_path / "hub" / "README.md").read_text()
    assert "license: other" in card and "| jigsaws | unknown; research only" in card and "FIXTURE" not in card


def test_hub_limits_and_bad_inputs(tmp_path: Path) -> None:
    crowded = {f"frames/x/test-{i:05d}.parquet": FileInfo(1, "0") for i in range(10_001)}
    with pytest.raises(InputError, match="per folder"):
        check_hub_limits(crowded)
    with pytest.raises(InputError, match="under"):
        check_hub_limits({"frames/x/test-00000.parquet": FileInfo(21 * 1024 ** 3, "0")})
    check_hub_limits({f"records/s{i}/TAG/test-00000.parquet": FileInfo(10, "0") for i in range(100)})
    with pytest.raises(InputError, match="owner/name"):
        stage(tmp_path, tmp_path / "out", "no-slash")


@pytest.mark.slow
def test_staging_refuses_foreign_folders_and_changed_records(dataset: Path, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        stage(dataset, busy, REPO_ID)
    changed = tmp_path / "changed"
    shutil.copytree(dataset, changed)
    shard = next(changed.glob("nurvid/test-*.parquet"))
    shard.unlink()
    with pytest.raises(InputError, match="content hash|is missing"):
        stage(changed, tmp_path / "out", REPO_ID)


@pytest.mark.slow
def test_materialising_one_split_writes_a_manifest_of_that_split(dataset: Path, tmp_path: Path) -> None:
    dry = tmp_path / "dry"
    assert _cli("publish", dataset, "--repo-id", REPO_ID, "--dry-run", dry, env=_env(tmp_path)).returncode == 0
    out = tmp_path / "test-only"
    materialise(dry, out, splits=["test"])
    manifest = json.loads((out / "manifest.json").read_text())
    records = read_parquet(out)
    assert records and {r.split for r in records} == {"test"}
    assert manifest["content_hash"] == content_hash(records)[0] != manifest["subset_of"]["content_hash"]
    assert manifest["records"] == len(records) and manifest["subset_of"]["splits"] == ["test"]
    materialise(dry, out, splits=["test"])  # again into the same folder: the same subset, accepted
