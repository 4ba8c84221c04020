"""Reward service throughput: rewards/s through ``flip-reward serve`` against ``FlipReward`` in-process, one run.

Run ``python benchmarks/bench_service.py [--rewards N] [--clients C] [--batch B]``. One instant scripted judge (a
test double, flip_reward.serving.scripted_judge, in its own process) answers both sides. In-process: one
``FlipReward.ascore`` over N distinct (prompt, response) pairs. Service: a ``flip-reward serve`` process in front of
the same judge, C concurrent clients posting ``/get_reward`` batches of B ChatML-templated samples (OpenRLHF's
protocol) until N rewards are done. Every pair is distinct, so neither side is helped by the cache. Target: the
service at >= 0.7x the in-process rate. Nothing here asserts on time; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

import aiohttp

from flip_reward.core.reward import FlipReward
from flip_reward.judge.loops import close_clients

JUDGE = "hosted_vllm/scripted"


def pairs(count: int, tag: str) -> list[tuple[str, str]]:
    return [
        (f"Write a short poem about the sea, number {n}.", f"Waves {tag} {n} roll in at night.") for n in range(count)
    ]


def chatml(instruction: str) -> str:
    return f"<|im_start|>user\n{instruction}<|im_end|>\n<|im_start|>assistant\n"


def started(command: list[str]) -> tuple[subprocess.Popen, str]:
    """A subprocess that prints its base URL as its first stdout line, and that URL."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


async def in_process(judge_url: str, count: int) -> float:
    flip = FlipReward(JUDGE, judge_url, cache=False)
    prompts, responses = zip(*pairs(count, "in-process"))
    await flip.ascore(prompts[:64], responses[:64])  # warm-up: clients, imports
    begun = time.perf_counter()
    results = await flip.ascore(prompts, responses)
    seconds = time.perf_counter() - begun
    await close_clients()
    assert all(result.error is None for result in results), results[0]
    return count / seconds


async def through_service(url: str, count: int, clients: int, batch: int) -> float:
    samples = [(chatml(instruction), response) for instruction, response in pairs(count, "service")]
    chunks = [samples[start : start + batch] for start in range(0, count, batch)]
    queue: asyncio.Queue = asyncio.Queue()
    for chunk in chunks:
        queue.put_nowait(chunk)

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            chunk = queue.get_nowait()
            body = {"query": [p + r + "<|im_end|>" for p, r in chunk], "prompts": [p for p, _ in chunk]}
            async with session.post(url + "/get_reward", json=body) as response:
                answer = await response.json()
            assert response.status == 200 and not any(answer["errors"]), answer

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        async with session.post(url + "/get_reward", json={"query": [], "prompts": []}) as warm:
            await warm.read()
        begun = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        return count / (time.perf_counter() - begun)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rewards", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=8, help="concurrent trainer clients of the service")
    parser.add_argument("--batch", type=int, default=64, help="samples per /get_reward request")
    args = parser.parse_args()
    judge, judge_url = started([sys.executable, "-m", "flip_reward.serving.scripted_judge"])
    serve_args = ["--judge", JUDGE, "--api-base", judge_url, "--port", "0", "--cache-size", "0"]
    service, url = started([sys.executable, "-m", "flip_reward.cli", "serve", *serve_args])
    try:
        local = asyncio.run(in_process(judge_url, args.rewards))
        served = asyncio.run(through_service(url, args.rewards, args.clients, args.batch))
    finally:
        service.terminate(), judge.terminate()
        service.wait(), judge.wait()
    print(f"{args.rewards} distinct rewards, instant scripted judge, {args.clients} clients x {args.batch} per request")
    print(f"FlipReward in-process  {local:8.1f} rewards/s")
    print(f"flip-reward serve      {served:8.1f} rewards/s   ratio {served / local:.2f}x (target >= 0.7x)")


if __name__ == "__main__":
    main()
