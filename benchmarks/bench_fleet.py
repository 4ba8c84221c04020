"""Judge-fleet benchmark: FlipReward through vllm-router in front of 4 judges of fixed capacity, vs one judge.

Run ``python benchmarks/bench_fleet.py [--quick]``. Every figure comes from this one run, side by side:

1. rewards/s against one scripted judge (8 slots x 100 ms) directly, and against 4 of them behind vllm-router, for
   each routing policy measured (power_of_two, round_robin, cache_aware), with how the router spread the requests;
2. the same with one of the 4 killed (SIGKILL) a quarter of the way in: every reward is checked;
3. client CPU: FlipReward vs a bare aiohttp OpenAI loop sending the same requests to an instant judge.

The judges are the scripted OpenAI-compatible server (flip_reward.serving.scripted_judge, a test double) in
separate processes; the router is started with ManagedRouter (flip-reward judge route). Nothing asserts on wall-clock
time: targets are printed as met or missed. See benchmarks/README.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import select  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import ExitStack, contextmanager  # noqa: E402

import aiohttp  # noqa: E402

from flip_reward.core.metrics import f1_score  # noqa: E402
from flip_reward.core.reward import FlipReward  # noqa: E402
from flip_reward.serving.judge_server import ManagedRouter  # noqa: E402

JUDGE_MODEL = "hosted_vllm/scripted"
REPLICAS = 4
SLOTS, DELAY_S = 8, 0.1  # each judge's fixed capacity: 8 requests at a time, 100 ms each (80 rewards/s)
IN_FLIGHT = 64
POLICIES = ("power_of_two", "round_robin", "cache_aware")
FLEET_TARGET, DEGRADED_TARGET, CLIENT_TARGET = 3.6, 2.5, 0.85


@contextmanager
def judge_process(delay: float, capacity: int | None) -> Iterator[subprocess.Popen]:
    """A scripted judge (``--echo``) in a child process; ``process.url`` is its base URL. Killed on exit."""
    command = [sys.executable, "-m", "flip_reward.serving.scripted_judge", "--port", "0", "--echo"]
    command += ["--delay", str(delay)] + (["--capacity", str(capacity)] if capacity else [])
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        process.url = process.stdout.readline().strip() if ready else ""
        if not process.url.startswith("http"):
            raise RuntimeError(f"scripted judge did not start (exit code {process.poll()})")
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def served(process: subprocess.Popen) -> int:
    """Chat requests a judge process has received so far (0 once it is dead)."""
    try:
        with urllib.request.urlopen(process.url[: -len("/v1")] + "/requests", timeout=5) as response:
            return json.loads(response.read())["chat_requests"]
    except OSError:
        return 0


def workload(count: int, tag: str) -> tuple[list[str], list[str]]:
    """``count`` distinct (instruction, response) pairs; the echo judge infers ``Inferred: <response>``."""
    prompts = [f"Write a short poem about the sea, variant {tag}-{i}." for i in range(count)]
    responses = [f"Waves fold over the harbour wall, {tag}-{i}; salt on the wind." for i in range(count)]
    return prompts, responses


def wrong_rewards(results: list, prompts: list[str], responses: list[str]) -> int:
    """How many results are not exactly the reward their own response earns from the echo judge."""
    expected = [f1_score(f"Inferred: {response}", prompt)["f1"] for prompt, response in zip(prompts, responses)]
    return sum(result.error is not None or result.reward != want for result, want in zip(results, expected))


async def rewards_per_s(url: str, count: int, tag: str, on_quarter=None) -> tuple[float, int]:  # noqa: ANN001
    """(rewards/s, wrong rewards) of one FlipReward.ascore over ``count`` fresh pairs; ``on_quarter`` is called
    once a quarter of them are done."""
    flip = FlipReward(JUDGE_MODEL, url, max_concurrency=IN_FLIGHT, cache=False)
    prompts, responses = workload(count, tag)
    done = 0

    async def one(prompt: str, response: str):  # noqa: ANN202
        nonlocal done
        result = await flip.ascore_one(prompt, response)
        done += 1
        if done == count // 4 and on_quarter is not None:
            on_quarter()
        return result

    started = time.perf_counter()
    results = await asyncio.gather(*(one(p, r) for p, r in zip(prompts, responses)))
    return count / (time.perf_counter() - started), wrong_rewards(results, prompts, responses)


async def bare_loop_per_s(url: str, count: int, tag: str) -> float:
    """A bare aiohttp OpenAI chat loop (64 in flight) sending the exact requests FlipReward builds."""
    flip = FlipReward(JUDGE_MODEL, url, cache=False)
    prompts, responses = workload(count, tag)
    bodies = [
        json.dumps({"model": "scripted", "messages": flip.judge_messages("", r), **flip.judge.config.request_params()})
        for r in responses
    ]
    gate = asyncio.Semaphore(IN_FLIGHT)
    async with aiohttp.ClientSession(headers={"Content-Type": "application/json"}) as session:

        async def one(body: str) -> str:
            async with gate, session.post(url + "/chat/completions", data=body) as response:
                return (await response.json())["choices"][0]["message"]["content"]

        started = time.perf_counter()
        answers = await asyncio.gather(*(one(body) for body in bodies))
    assert len(answers) == len(prompts)
    return count / (time.perf_counter() - started)


def verdict(ratio: float, target: float) -> str:
    return "target met" if ratio >= target else "TARGET MISSED"


async def fleet_figures(args: argparse.Namespace, stack: ExitStack, run_dir: str) -> None:
    judges = [stack.enter_context(judge_process(DELAY_S, SLOTS)) for _ in range(REPLICAS)]
    await rewards_per_s(judges[0].url, 40, "warm")
    one = statistics.median([(await rewards_per_s(judges[0].url, args.requests, f"one{i}"))[0] for i in range(2)])
    print(f"one judge directly ({SLOTS} slots x {DELAY_S * 1000:.0f} ms): {one:7.1f} rewards/s")
    for policy in POLICIES:
        before = [served(judge) for judge in judges]
        with ManagedRouter([judge.url for judge in judges], f"{run_dir}/{policy}", policy=policy) as router:
            await rewards_per_s(router.url, 40, f"warm-{policy}")
            rate, wrong = await rewards_per_s(router.url, REPLICAS * args.requests, f"fleet-{policy}")
        spread = [served(judge) - b for judge, b in zip(judges, before)]
        share = "/".join(f"{100 * n / sum(spread):.0f}" for n in spread)
        note = f"  {verdict(rate / one, FLEET_TARGET)} (>= {FLEET_TARGET}x)" if policy == POLICIES[0] else ""
        print(f"4 judges behind vllm-router, {policy:12s}: {rate:7.1f} rewards/s = {rate / one:4.2f}x one judge; "
              f"wrong rewards {wrong}; share per judge % {share}{note}")  # fmt: skip
    with ManagedRouter([judge.url for judge in judges], f"{run_dir}/degraded") as router:
        await rewards_per_s(router.url, 40, "warm-degraded")
        rate, wrong = await rewards_per_s(router.url, REPLICAS * args.requests, "degraded", judges[-1].kill)
    print(f"4 judges, one SIGKILLed 1/4 in ({POLICIES[0]}): {rate:7.1f} rewards/s = {rate / one:4.2f}x one judge; "
          f"wrong rewards {wrong}  {verdict(rate / one, DEGRADED_TARGET) if wrong == 0 else 'WRONG REWARDS'} "
          f"(>= {DEGRADED_TARGET}x, every reward right)")  # fmt: skip


async def client_figures(args: argparse.Namespace, stack: ExitStack) -> None:
    instant = stack.enter_context(judge_process(0.0, None))
    await rewards_per_s(instant.url, 200, "warm-client")
    await bare_loop_per_s(instant.url, 200, "warm-bare")
    flip, bare = [], []
    for i in range(args.rounds):
        bare.append(await bare_loop_per_s(instant.url, args.client_requests, f"bare{i}"))
        flip.append((await rewards_per_s(instant.url, args.client_requests, f"client{i}"))[0])
    ratio = statistics.median(flip) / statistics.median(bare)
    print(f"instant judge: bare aiohttp loop {statistics.median(bare):7.1f} req/s, FlipReward "
          f"{statistics.median(flip):7.1f} rewards/s = {ratio:4.2f}x  {verdict(ratio, CLIENT_TARGET)} "
          f"(>= {CLIENT_TARGET}x)")  # fmt: skip


async def main_async(args: argparse.Namespace) -> None:
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench_fleet.") as run_dir:
        if args.only in (None, "fleet"):
            await fleet_figures(args, stack, run_dir)
        if args.only in (None, "client"):
            await client_figures(args, stack)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="rewards per judge and run (fleet runs: x4)")
    parser.add_argument("--client-requests", type=int, default=2000, help="rewards per client-CPU run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved client-CPU rounds (median)")
    parser.add_argument("--quick", action="store_true", help="fewer requests (about a minute)")
    parser.add_argument("--only", choices=("fleet", "client"))
    args = parser.parse_args()
    if args.quick:
        args.requests, args.client_requests, args.rounds = 160, 600, 1
    return args


def main() -> None:
    asyncio.run(main_async(parse_args()))


if __name__ == "__main__":
    main()
