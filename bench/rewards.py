"""Reward throughput for one GRPO batch: the rule-based rewards, the MiniLM half, the judge at 200 ms.

A batch of 512 completions of mixed tasks (the paper's rewarded TAG, STG, VS and RC, 128 each,
every completion distinct, as G rollouts of a prompt are) is scored by
:class:`mvbench.training.rewards.RewardSuite`, the code training runs:

1. **Rule-based rewards** (TAG, STG; also DVC, SA and CVS on the same kind of batch): parsers and
   IoU/F1 arithmetic of the task modules. Target: >= 5,000 completions/s.
2. **Non-judge time of the batch**: everything but the judge (TAG/STG plus the MiniLM similarity
   half of VS/RC, a numpy encoder run one text at a time).
3. **Whole batch with the judge** on a local OpenAI-compatible server in another process with a
   fixed 200 ms latency (``--server lean``, default: ``bench/_fast_server.py``, canned judge
   replies; ``--server fake``: the test suite's fake, which parses and hashes every body in
   threads), no reply cache. One :class:`~mvbench.training.rewards.RewardSuite` serves every batch,
   as in training; its first batch (judge thread, client and connections set up) is timed apart. Target: <= 1.1 x (judge calls / concurrency x latency)
   + the non-judge time. Checked twice: with the MiniLM embeddings of the batch already cached
   (the judge path alone, whose non-judge time is the rule-based rewards' few ms), and cold (each
   repeat clears the MiniLM cache: a real batch's completions are new texts; the judge batch is
   started first and runs while the embeddings are computed). The cold numbers depend on how
   busy the CPU is (MiniLM is a numpy encoder, one text at a time); the best repeat is kept.

As a baseline measured in the same run, the same number of calls goes through the bare
:class:`mvbench.llm.openai_client.OpenAIChatClient` at the same concurrency: on a busy machine the
client's CPU per call, not the reward code, is what keeps the judge path above ideal. The machine and
its load at the start are printed first.

Usage: ``python bench/rewards.py [--batch 512] [--concurrency 32] [--latency 0.2] [--repeat 3] [--server lean|fake]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.servers, tests.training_helpers
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _fast_server

from mvbench import embedding  # noqa: E402
from mvbench.training.judge_reward import JudgeConfig  # noqa: E402
from mvbench.training.normalization import NormalizationConfig  # noqa: E402
from mvbench.training.rewards import RewardConfig, RewardSuite  # noqa: E402
from tests.training_helpers import gt_record  # noqa: E402

JUDGE_REPLY = "R2: 4\nR3: 3\nR8: 4\nR5: 3\nR4: 4"
WORDS = ("grasper", "retracts", "the", "gallbladder", "clip", "duct", "hook", "dissects", "tissue", "needle",
         "suture", "wound", "nurse", "checks", "forceps", "knife", "flap", "mucosal", "camera", "field")


def _serve_lean(latency_s: float, conn, stop) -> None:
    from _fast_server import serve  # bench/ is this script's folder

    class PortOnly:
        def send(self, value):
            conn.send(int(value.rsplit(":", 1)[1]) if isinstance(value, str) else value)

    serve(latency_s, PortOnly(), stop, answer=JUDGE_REPLY)


def _serve(latency_s: float, conn, stop) -> None:
    from tests.servers.fake_openai import FakeOpenAIServer

    with FakeOpenAIServer(model="judge", respond=lambda body: JUDGE_REPLY, latency_s=latency_s,
                          max_lifetime_s=1800) as srv:
        conn.send(srv.port)
        stop.wait()
        conn.send(srv.stats.calls)


def _sentence(rng: random.Random, n: int = 14) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + f" ({rng.random():.6f})."


def completion(qa_type: str, rng: random.Random) -> str:
    """A plausible, distinct completion for a qa_type (some in the answer format, some not)."""
    if qa_type == "tal":
        a = rng.uniform(0, 5)
        return f"{a:.1f}-{a + rng.uniform(0.5, 4):.1f} seconds." if rng.random() < 0.8 else f"from {a:.1f} to 6.0 s"
    if qa_type == "stg":
        def box() -> str:
            x, y = rng.uniform(200, 300), rng.uniform(200, 300)
            return f"[{x:.2f}, {y:.2f}, {x + rng.uniform(100, 400):.2f}, {y + rng.uniform(300, 800):.2f}]"
        return f"1.0 seconds: {box()} 5.0 seconds: {box()}"
    if qa_type == "dense_captioning_gpt":
        a = rng.uniform(30, 40)
        return f"{a:.1f}-{a + rng.uniform(5, 15):.1f} seconds: {_sentence(rng)}"
    if qa_type == "skill_assessment":
        names = ("Respect for tissue", "Suture/needle handling", "Time and motion", "Flow of operation",
                 "Overall performance", "Quality of final product")
        return ", ".join(f"{n}: {rng.randint(1, 5)}/5" for n in names)
    if qa_type == "cvs_assessment":
        return f"Two structures: {rng.randint(0, 2)}, Cystic plate: {rng.randint(0, 2)}, " \
               f"Hepatocystic triangle: {rng.randint(0, 2)}"
    return _sentence(rng)


async def _bare_client(port: int, calls: int, concurrency: int, seed: int) -> None:
    from mvbench.llm.openai_client import OpenAIChatClient
    from mvbench.llm.retry import ClientOptions

    client = OpenAIChatClient("judge", ClientOptions(base_url=f"http://127.0.0.1:{port}/v1", max_retries=0,
                                                     concurrency=concurrency))
    await asyncio.gather(*(client.complete([{"role": "user", "content": f"baseline {seed} {i}"}], temperature=0.0)
                           for i in range(calls)))
    await client.aclose()


def make_batch(qa_types: tuple[str, ...], size: int, seed: int) -> tuple[list[str], list[str]]:
    """``size`` (completion, gt JSON) pairs cycling over ``qa_types``."""
    rng = random.Random(seed)
    kinds = [qa_types[i % len(qa_types)] for i in range(size)]
    return [completion(q, rng) for q in kinds], [json.dumps(gt_record(q), allow_nan=False) for q in kinds]


def _suite(tasks: tuple[str, ...], judge: JudgeConfig) -> RewardSuite:
    return RewardSuite(RewardConfig(tasks=tasks, judge=judge, normalization=NormalizationConfig(enabled=False)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--server", choices=("lean", "fake"), default="lean",
                        help="lean: bench/_fast_server.py (canned judge replies, little CPU); fake: the test "
                             "suite's fake OpenAI server (parses and hashes every body, in threads)")
    args = parser.parse_args()
    from _machine import describe  # bench/ is this script's folder

    print(describe())
    paper = ("TAG", "STG", "VS", "RC")
    paper_qa = ("tal", "stg", "video_summary_gpt", "region_caption_gemini")
    embedding.encode(["warm up"])  # load MiniLM once, outside the timings

    # 1. rule-based rewards
    rule_tasks = ("TAG", "STG", "DVC", "SA", "CVS")
    rule_qa = ("tal", "stg", "dense_captioning_gpt", "skill_assessment", "cvs_assessment")
    suite = _suite(rule_tasks, JudgeConfig(enabled=False))
    rates = {}
    for name, kinds in (("TAG+STG", paper_qa[:2]), ("TAG+STG+DVC+SA+CVS", rule_qa)):
        best = 0.0
        for r in range(args.repeat):
            completions, gts = make_batch(kinds, args.batch, seed=r)
            start = time.perf_counter()
            values = suite.score(completions, gts)
            best = max(best, args.batch / (time.perf_counter() - start))
            assert all(v.value is not None for v in values)
        rates[name] = best
        print(f"rule-based rewards ({name}): {best:,.0f} completions/s (target >= 5,000)")

    # 2. non-judge time of the paper's batch, 3. the whole batch with the judge
    recv, send = mp.Pipe()
    stop = mp.Event()
    server = mp.Process(target=_serve_lean if args.server == "lean" else _serve, args=(args.latency, send, stop),
                        daemon=True)
    server.start()
    port = recv.recv()
    judge = JudgeConfig(model="judge", base_url=f"http://127.0.0.1:{port}/v1", concurrency=args.concurrency,
                        timeout_s=30, cache_dir=None)
    warm, cold = [], []
    # One suite for the whole run, as training keeps one for all its steps: the judge's client, its
    # event-loop thread and its connections are set up by a first batch, timed apart (a run pays it
    # once, not per step).
    judged = _suite(paper, judge)
    completions, gts = make_batch(paper_qa, args.batch, seed=99)
    embedding._cache.clear()
    start = time.perf_counter()
    judged.score(completions, gts)
    first_batch = time.perf_counter() - start
    print(f"first batch of the run (starts the judge's thread, client and {args.concurrency} connections; "
          f"MiniLM cold): {first_batch:.2f} s, not counted below")
    for r in range(args.repeat):
        completions, gts = make_batch(paper_qa, args.batch, seed=100 + r)
        embedding._cache.clear()
        plain = _suite(paper, JudgeConfig(enabled=False))
        start = time.perf_counter()
        plain.score(completions, gts)
        no_judge_cold = time.perf_counter() - start
        start = time.perf_counter()
        plain.score(completions, gts)  # embeddings cached now: the rule-based rewards and lookups
        no_judge_warm = time.perf_counter() - start
        for label, runs, no_judge, clear in (("warm", warm, no_judge_warm, False), ("cold", cold, no_judge_cold, True)):
            if clear:
                embedding._cache.clear()
            calls_before = judged.judge_calls
            start = time.perf_counter()
            values = judged.score(completions, gts)
            total = time.perf_counter() - start
            calls = judged.judge_calls - calls_before
            assert not any(v.judge_failed for v in values)
            ideal = calls / args.concurrency * args.latency
            bound = 1.1 * ideal + no_judge
            runs.append({"judge_calls": calls, "ideal_judge_s": round(ideal, 3),
                         "non_judge_s": round(no_judge, 3), "total_s": round(total, 3), "bound_s": round(bound, 3),
                         "ratio_to_bound": round(total / bound, 3)})
            print(f"batch {args.batch} (TAG/STG/VS/RC x {args.batch // 4}), MiniLM {label}: non-judge {no_judge:.2f} s "
                  f"({args.batch / no_judge:,.0f} completions/s); with the judge ({calls} calls, "
                  f"concurrency {args.concurrency}, {args.latency * 1000:.0f} ms) {total:.2f} s; bound 1.1 x "
                  f"{ideal:.2f} + {no_judge:.2f} = {bound:.2f} s -> {'OK' if total <= bound else 'OVER'}")
    judged.close()
    # Baseline: the same number of calls through the bare OpenAI-compatible client (no judge, no rewards).
    client_ratios = []
    for r in range(args.repeat):
        start = time.perf_counter()
        asyncio.run(_bare_client(port, warm[0]["judge_calls"], args.concurrency, r))
        client_ratios.append((time.perf_counter() - start) / warm[0]["ideal_judge_s"])
    print(f"bare OpenAIChatClient, same calls and concurrency: {min(client_ratios):.3f} x ideal (best of {args.repeat})")
    stop.set()
    server_calls = recv.recv()
    server.join(timeout=10)
    best_warm = min(warm, key=lambda x: x["ratio_to_bound"])
    best_cold = min(cold, key=lambda x: x["ratio_to_bound"])
    print(json.dumps({"rule_based_completions_per_s": {k: round(v) for k, v in rates.items()}, "batch": args.batch,
                      "concurrency": args.concurrency, "latency_s": args.latency, "server_calls": server_calls,
                      "judge_path_minilm_warm": best_warm, "whole_batch_minilm_cold": best_cold,
                      "bare_client_ratio_to_ideal": round(min(client_ratios), 3)}, allow_nan=False))
    verdict = {"rule-based >= 5,000/s": min(rates.values()) >= 5000,
               "judge path <= bound": best_warm["ratio_to_bound"] <= 1.0,
               "whole batch <= bound": best_cold["ratio_to_bound"] <= 1.0}
    print("targets: " + "; ".join(f"{k} {'OK' if ok else 'MISSED'}" for k, ok in verdict.items()))


if __name__ == "__main__":
    main()
