"""The dataset card (``README.md`` with YAML front matter) and ``LICENSE.md`` of a published dataset.

The YAML lists one Parquet config per task and per source plus ``all`` (the default) and
``frames``, all Parquet (``datasets`` infers one loader type from the first config's files), the
features of ``frames`` (an ``Image`` column), and the licence as ``other`` pointing at
``LICENSE.md``: the sources' terms differ and the Hub has no per-config licence field. The body
has the counts per (source, task, split), the terms per source, how the data were built (builder
versions, prompt versions, generator models, validation thresholds) and the citation.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from mvbench import prompts
from mvbench.records import Record
from mvbench.tasks import TASKS


@dataclass(frozen=True)
class SourceTerms:
    """What a source's holders allow (``source-formats.md`` table; ``None``: unknown).

    Args:
        licence: the licence of the annotations / frames.
        access: how the holders hand it out.
        home: where it comes from.
        redistributable: whether frames and derived annotations may be republished (None: unknown).
    """

    licence: str
    access: str
    home: str
    redistributable: bool | None


SOURCE_TERMS: dict[str, SourceTerms] = {
    "cholect50": SourceTerms("CC BY-NC-SA 4.0", "request form", "github.com/CAMMA-public/cholect50", True),
    "cholectrack20": SourceTerms("CC BY-NC-SA 4.0 + data use agreement", "form, then Synapse syn53182642",
                                 "github.com/CAMMA-public/cholectrack20", None),
    "cholec80_cvs": SourceTerms("annotations: unknown (code MIT); videos: Cholec80 (CAMMA terms)",
                                "figshare 22183885; Cholec80 by request", "github.com/ManuelRios18/CHOLEC80-CVS-PUBLIC",
                                None),
    "copesd": SourceTerms("CC BY 4.0 (new contributions)", "Google Drive", "github.com/gkw0010/CoPESD", True),
    "avos": SourceTerms("unknown", "YouTube videos; no official repository", "arXiv 2112.07219", None),
    "egosurgery": SourceTerms("CC BY-NC-SA 4.0, academic use only", "Google form", "github.com/Fujiry0/EgoSurgery",
                              True),
    "jigsaws": SourceTerms("unknown; research only, no redistribution assumed", "by request",
                           "JHU CIRL (Johns Hopkins) JIGSAWS release", False),
    "nurvid": SourceTerms("CC BY 4.0 + research-only disclaimer", "GitHub release",
                          "github.com/minghu0830/NurViD-benchmark", True),
}
BENCHMARK_LICENCE = "CC BY-NC-SA 4.0"  # the MedVidBench release (UII-AI/MedVidBench)
CITATION = """@article{su2025medgrpo,
  title   = {MedGRPO: Multi-Task Reinforcement Learning for Heterogeneous Medical Video Understanding},
  author  = {Su, Yuhao and Choudhuri, Anwesa and Gao, Zhongpai and Planche, Benjamin and Nguyen, Van Nguyen
             and Zheng, Meng and Shen, Yuhan and Innanje, Arun and Chen, Terrence and Elhamifar, Ehsan
             and Wu, Ziyan},
  journal = {arXiv preprint arXiv:2512.06581},
  year    = {2025}
}"""
FRAME_FEATURES_YAML = [{"name": "path", "dtype": "string"}, {"name": "source", "dtype": "string"},
                       {"name": "video", "dtype": "string"}, {"name": "image", "dtype": "image"}]


def terms_of(source: str) -> SourceTerms:
    """The terms of a source (unknown terms for a source mvbench has no entry for)."""
    return SOURCE_TERMS.get(source, SourceTerms("unknown", "unknown", "unknown", None))


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def configs_yaml(record_files: Sequence[str], frame_files: Sequence[str]) -> list[dict[str, Any]]:
    """The ``configs`` list: ``all`` (default), one per task, one per source, then ``frames``.

    Args:
        record_files: repository paths ``records/<source>/<task>/<split>-NNNNN.parquet``.
        frame_files: repository paths ``frames/<source>/<split>-NNNNN.parquet``.
    """
    layout = [tuple(p.split("/")[1:3]) + (p.split("/")[3].rsplit("-", 1)[0],) for p in record_files]
    split_order = ("test", "train", "val")

    def entry(name: str, pattern: str, splits: set[str], default: bool = False) -> dict[str, Any]:
        item: dict[str, Any] = {"config_name": name}
        if default:
            item["default"] = True
        item["data_files"] = [{"split": s, "path": pattern.format(split=s)}
                              for s in sorted(splits, key=lambda s: (split_order.index(s) if s in split_order else 9, s))]
        return item

    out = [entry("all", "records/*/*/{split}-*.parquet", {s for _, _, s in layout}, default=True)]
    for name, task in TASKS.items():
        splits = {s for _, t, s in layout if t == name}
        if splits:
            out.append(entry(name, f"records/*/{name}/{{split}}-*.parquet", splits))
    for source in sorted({src for src, _, _ in layout}):
        out.append(entry(source, f"records/{source}/*/{{split}}-*.parquet", {s for src, _, s in layout if src == source}))
    frame_splits = {p.split("/")[2].rsplit("-", 1)[0] for p in frame_files}
    if frame_splits:
        out.append(entry("frames", "frames/*/{split}-*.parquet", frame_splits))
    return out


def _counts_table(counts: dict[str, dict[str, dict[str, int]]]) -> list[str]:
    splits = sorted({s for by_task in counts.values() for by_split in by_task.values() for s in by_split},
                    key=lambda s: ("test", "train", "val").index(s) if s in ("test", "train", "val") else 9)
    lines = ["| source | task | " + " | ".join(splits) + " |", "|---|---|" + "---:|" * len(splits)]
    for source, by_task in counts.items():
        for task, by_split in by_task.items():
            lines.append(f"| {source} | {task} | " + " | ".join(str(by_split.get(s, 0)) for s in splits) + " |")
    totals = [sum(by_split.get(s, 0) for by_task in counts.values() for by_split in by_task.values()) for s in splits]
    lines.append("| **all** | | " + " | ".join(f"**{t}**" for t in totals) + " |")
    return lines


def _terms_table(sources: Sequence[str]) -> list[str]:
    lines = ["| config (source) | licence / terms | access | home | may be republished |", "|---|---|---|---|---|"]
    for s in sources:
        t = terms_of(s)
        ok = {True: "yes (with attribution, under its licence)", False: "no (assumed)", None: "unknown"}[t.redistributable]
        lines.append(f"| {s} | {t.licence} | {t.access} | {t.home} | {ok} |")
    return lines


def _generators(records: Sequence[Record]) -> list[str]:
    by_task: dict[str, Counter] = {}
    for r in records:
        by_task.setdefault(r.task, Counter())[r.generator] += 1
    return [f"- {task}: " + ", ".join(f"{g} ({n})" for g, n in sorted(c.items())) for task, c in sorted(by_task.items())]


def _validation(manifest: dict[str, Any], records: Sequence[Record]) -> list[str]:
    """Validation thresholds from the manifest, else what the records' validation fields hold."""
    settings = manifest.get("validation") or (manifest.get("config") or {}).get("validation")
    if settings:
        return [f"- {k}: {v}" for k, v in sorted(settings.items())]
    keys = sorted({k for r in records if r.validation for k in r.validation})
    if keys:
        return [f"- records carry validation scores: {', '.join(keys)} (thresholds not recorded in the manifest)"]
    return ["- none: every answer was written from the source annotations by templates (`generator: template`); "
            "no model-written text needed validating"]


def render_card(manifest: dict[str, Any], records: Sequence[Record], record_files: Sequence[str],
                frame_files: Sequence[str], repo_id: str) -> str:
    """The dataset card: YAML front matter and body.

    Args:
        manifest: the dataset's manifest (as published).
        records: every record published.
        record_files / frame_files: the repository paths of the Parquet files.
        repo_id: ``owner/name`` (for the loading examples).
    """
    sources = list(manifest.get("counts", {}))
    fixture = bool(manifest.get("fixture"))
    front = {
        "pretty_name": "MedVidBench (built with mvbench)" + (" - FIXTURE DATA" if fixture else ""),
        "license": "other", "license_name": "mvbench-per-source-terms", "license_link": "LICENSE.md",
        "language": ["en"],
        "task_categories": ["video-text-to-text", "visual-question-answering", "video-classification"],
        "tags": ["medical", "surgery", "video-understanding", "medvidbench", "mvbench"] + (["fixture"] if fixture else []),
        "size_categories": [_size_category(len(records))],
        "configs": configs_yaml(record_files, frame_files),
        "dataset_info": [{"config_name": "frames", "features": FRAME_FEATURES_YAML}] if frame_files else [],
    }
    if not front["dataset_info"]:
        del front["dataset_info"]
    builders = manifest.get("sources", {})
    config = manifest.get("config", {})
    task_versions = ", ".join(f"{name} v{task.prompt_version}" for name, task in TASKS.items())
    prompt_hashes = sorted({str(b.get("builder_version", "")).rsplit("+p", 1)[-1] for b in builders.values()})
    same_prompts = prompt_hashes == [prompts.prompt_hash()]
    lines = [
        "---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
        f"# MedVidBench, built with mvbench{' (fixture data)' if fixture else ''}", "",
    ]
    if fixture:
        lines += ["> **Fixture data.** These records were built from generated test trees (synthetic videos and "
                  "annotations in each source's real format), not from the real datasets. They exercise the "
                  "tooling; scores on them say nothing about a model.", ""]
    lines += [
        f"MedVidBench-format records (8 tasks, official fields and answer formats) built by mvbench "
        f"{manifest.get('versions', {}).get('mvbench', '?')} from {len(sources)} source(s): {', '.join(sources)}. "
        f"{len(records)} records, {manifest.get('frames', {}).get('count', '?')} frames. Content hash "
        f"`{manifest.get('content_hash', '?')}` (records and frame list, as in `manifest.json`).", "",
        "## Loading", "",
        "```python", "from datasets import load_dataset",
        f'test = load_dataset("{repo_id}", "all", split="test")    # every task and source (the default config)',
        f'tag = load_dataset("{repo_id}", "TAG", split="test")     # one task; or a source: "{sources[0] if sources else "avos"}"',
        f'frames = load_dataset("{repo_id}", "frames", split="test")  # the frames, an Image column', "```", "",
        "Nested official fields (`metadata`, `struc_info`, `RC_info`, `validation`) are JSON text; "
        "`mvbench.records.Record.from_row(row)` turns a row back into a record. A record's `video` list names "
        "its frames by path (`frames/<source>/<video>/<index>.jpg`); the `frames` config holds each frame "
        "once (shared by every record of its video), keyed by the same `path`. To get the folder `mvbench eval` "
        "reads (records plus frame files), then evaluate:", "",
        "```bash", f"mvbench materialise {repo_id} --out medvidbench", "mvbench eval --data medvidbench --model <model> --out runs/<model>", "```", "",
        "## Configs", "",
        "| config | holds |", "|---|---|",
        "| `all` (default) | every record |",
        *(f"| `{name}` | {task.title} records |" for name, task in TASKS.items()
          if any(f"/{name}/" in p for p in record_files)),
        *(f"| `{s}` | records from {builders.get(s, {}).get('data_source', s)} |" for s in sources),
        "| `frames` | the frames (`path`, `source`, `video`, `image`) |", "",
        "## Counts per source, task and split", "", *_counts_table(manifest.get("counts", {})), "",
        "## Licences and terms", "",
        f"The sources' terms differ, so the repository licence is `other` (see `LICENSE.md`). The MedVidBench "
        f"release itself is {BENCHMARK_LICENCE}; each config's frames and annotations stay under their "
        "source's terms below, and the most restrictive terms of the sources you use apply. Check them, and "
        "that you obtained each source from its holders, before using or republishing.", "",
        *_terms_table(sources), "",
        "## How it was built", "",
        f"- mvbench {manifest.get('versions', {}).get('mvbench', '?')}, record schema "
        f"{manifest.get('schema_version', '?')}, build seed {config.get('seed')}, split rule: official splits "
        f"where the source has them{', val kept' if config.get('keep_val') else ', val counted as train'}.",
        "- builder versions (package + builder + generators + prompt-file hash):",
        *(f"  - {s}: `{b.get('builder_version')}` ({b.get('videos_built')} videos)" for s, b in builders.items()),
        f"- prompt files: hash {', '.join(f'`{h}`' for h in prompt_hashes)}"
        + (f"; task prompt versions {task_versions}" if same_prompts else
           " (differs from this mvbench's prompts, whose task versions are not the build's)"),
        f"- generator options: `{json.dumps(config.get('generators', {}), sort_keys=True, allow_nan=False)}`",
        "- who wrote the answers (generator per task, with record counts):", *(f"  {g}" for g in _generators(records)),
        "- validation thresholds:", *(f"  {v}" for v in _validation(manifest, records)),
        f"- frames: JPEG quality {config.get('jpeg_quality')}, max side {config.get('max_side') or 'unchanged'}", "",
        "## Citation", "", "```bibtex", CITATION, "```", "",
    ]
    return "\n".join(lines)


def render_licence(sources: Sequence[str]) -> str:
    """``LICENSE.md``: the per-source terms the card links to."""
    lines = ["# Licences and terms of this dataset", "",
             f"This repository republishes records and frames derived from {len(sources)} source dataset(s) whose "
             f"terms differ. The MedVidBench benchmark release is {BENCHMARK_LICENCE}. The frames and annotations "
             "of each source remain under that source's terms:", "", *_terms_table(sources), "",
             "Where the terms are unknown or forbid redistribution, do not republish that source's data without "
             "the holders' permission.", ""]
    return "\n".join(lines)
