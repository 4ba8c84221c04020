"""Judge-client benchmarks: FlipReward throughput against a raw OpenAI loop, and use of a fixed serving capacity.

Run ``python benchmarks/bench_judge.py [--requests N] [--quick] [--profile M]``. Every figure is measured in this
one run, side by side, against the scripted judge server (flip_reward.serving.scripted_judge) running in a
separate process, so the server's CPU is not spent under the client's GIL. Nothing here asserts on wall-clock
time: targets are printed as met or missed. See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import math  # noqa: E402
import pstats  # noqa: E402
import select  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator  # noqa: E402
from contextlib import asynccontextmanager, contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import openai  # noqa: E402

from flip_reward.core.conversation import split_turns  # noqa: E402
from flip_reward.core.reward import FlipReward, final_answer  # noqa: E402
from flip_reward.judge.loops import close_clients  # noqa: E402

JUDGE_MODEL = "hosted_vllm/scripted"
IN_FLIGHT = 64
THROUGHPUT_TARGET = 0.8  # FlipReward rewards/s at least this fraction of the raw loop's
CAPACITY_TARGET = 1.1  # FlipReward wall at most this multiple of the server-bound ideal
CLIENT_BOUND_FRACTION = 0.7  # client CPU per batch >= this fraction of the expected wall: the client sets the pace
SERVER_START_TIMEOUT_S = 30.0
PATHS = ("a_raw_openai", "a2_raw_openai_aiohttp", "b_flip", "c_flip_litellm")

Pairs = tuple[list[list[dict]], list[str]]


# --------------------------------------------------------------------------------------------------- server process


@contextmanager
def judge_server(delay: float = 0.0, capacity: int | None = None) -> Iterator[str]:
    """Run ``python -m flip_reward.serving.scripted_judge`` in a child process; yield its base URL; always kill it
    afterwards."""
    command = [sys.executable, "-m", "flip_reward.serving.scripted_judge", "--port", "0", "--delay", str(delay)]
    if capacity is not None:
        command += ["--capacity", str(capacity)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield _read_base_url(process)
    finally:
        process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _read_base_url(process: subprocess.Popen) -> str:
    """The base URL the server prints on its first stdout line (fails if it exits or stays silent too long)."""
    ready, _, _ = select.select([process.stdout], [], [], SERVER_START_TIMEOUT_S)
    line = process.stdout.readline().strip() if ready else ""
    if not line.startswith("http"):
        raise RuntimeError(f"judge server did not start (exit code {process.poll()}, first line {line!r})")
    return line


# ------------------------------------------------------------------------------------------------------- workloads


def distinct_pairs(count: int, tag: str) -> Pairs:
    """``count`` (prompt, response) pairs, all different from each other and from any other ``tag``'s pairs."""
    prompts, responses = [], []
    for index in range(count):
        prompts.append(
            [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": f"Write a short poem about the sea, variant {tag}-{index}."},
            ]
        )
        responses.append(
            f"<think>The user wants a poem ({tag}-{index}).</think>"
            f"Waves fold over the harbour wall, {tag}-{index};\n"
            "salt on the wind, gulls over the swell,\nthe tide keeps time as the evening falls."
        )
    return prompts, responses


@asynccontextmanager
async def open_flip(
    api_base: str, max_concurrency: int = IN_FLIGHT, use_litellm: bool = False
) -> AsyncIterator[FlipReward]:
    """A FlipReward on the scripted server (in-memory cache on, no disk cache, default retries); the loop's HTTP
    clients are closed on exit."""
    flip = FlipReward(JUDGE_MODEL, api_base, max_concurrency=max_concurrency, cache=True, use_litellm=use_litellm)
    try:
        yield flip
    finally:
        await close_clients()


@dataclass
class Run:
    """One timed pass of a path: requests sent, what went wrong, wall time and this process's CPU time."""

    requests: int
    failures: list[str]
    wall_s: float
    cpu_s: float

    @property
    def errors(self) -> int:
        return len(self.failures)

    @property
    def per_second(self) -> float:
        return self.requests / self.wall_s

    @property
    def cpu_us_per_request(self) -> float:
        return 1e6 * self.cpu_s / self.requests


async def timed(work: Callable[[], Awaitable[list[str]]], requests: int) -> Run:
    """Time ``work`` (which returns why each failed request failed), in wall and client CPU seconds."""
    started, cpu_started = time.perf_counter(), time.process_time()
    failures = await work()
    run = Run(requests, failures, time.perf_counter() - started, time.process_time() - cpu_started)
    if failures:
        print(f"  !! {len(failures)} of {requests} requests failed, first: {failures[0][:300]}", flush=True)
    return run


# ------------------------------------------------------------------------------------------------- the three paths


class RawLoop:
    """Path (a): ``openai.AsyncOpenAI`` with an ``asyncio.Semaphore`` (64), sending FlipReward's own messages;
    path (a2): the same over aiohttp (``openai.DefaultAioHttpClient``); FlipReward posts through aiohttp directly.

    Messages are built before the clock starts, so this is the ceiling of the transport alone.
    """

    def __init__(self, flip: FlipReward, in_flight: int = IN_FLIGHT, aiohttp: bool = False):
        self.flip = flip
        self.in_flight = in_flight
        http_client = openai.DefaultAioHttpClient() if aiohttp else None
        self.client = openai.AsyncOpenAI(
            base_url=flip.judge.endpoint.api_base, api_key="EMPTY", max_retries=0, http_client=http_client
        )
        self.model = flip.judge.endpoint.provider_model
        self.params = flip.judge.config.request_params()

    def build(self, pairs: Pairs) -> list[list[dict]]:
        """The FLIP request for each pair, exactly as FlipReward renders it."""
        return [
            self.flip.judge_messages(split_turns(prompt)[0], final_answer(response)) for prompt, response in zip(*pairs)
        ]

    async def send_all(self, requests: list[list[dict]]) -> list[str]:
        """Send every request, at most ``in_flight`` at once; return why each failed one failed."""
        gate = asyncio.Semaphore(self.in_flight)

        async def one(messages: list[dict]) -> str | None:
            async with gate:
                try:
                    completion = await self.client.chat.completions.create(
                        model=self.model, messages=messages, **self.params
                    )
                except openai.OpenAIError as error:
                    return f"{type(error).__name__}: {error}"
                text = completion.choices[0].message.content
                return None if isinstance(text, str) else "no text in the completion"

        outcomes = await asyncio.gather(*(one(messages) for messages in requests))
        return [outcome for outcome in outcomes if outcome is not None]

    async def run(self, pairs: Pairs) -> Run:
        requests = self.build(pairs)
        return await timed(lambda: self.send_all(requests), len(requests))


async def flip_run(flip: FlipReward, pairs: Pairs) -> Run:
    """Paths (b) and (c): ``FlipReward.ascore`` over the pairs."""

    async def work() -> list[str]:
        results = await flip.ascore(*pairs)
        return [result.error or "cache hit" for result in results if result.error is not None or result.cached]

    return await timed(work, len(pairs[0]))


# ---------------------------------------------------------------------------------------------- benchmark 1: rate


@dataclass
class ThroughputResult:
    """Runs of each path, in the order measured."""

    runs: dict[str, list[Run]] = field(default_factory=lambda: {name: [] for name in PATHS})

    def median(self, path: str) -> float:
        return statistics.median(run.per_second for run in self.runs[path])

    def errors(self, path: str) -> int:
        return sum(run.errors for run in self.runs[path])

    def cpu_us(self, path: str) -> float:
        return statistics.median(run.cpu_us_per_request for run in self.runs[path])


async def throughput(api_base: str, requests: int, rounds: int, warmup: int) -> ThroughputResult:
    """Warm each path up, then ``rounds`` rounds of a, a2, b, c interleaved, each over fresh distinct pairs."""
    async with open_flip(api_base) as flip, open_flip(api_base, use_litellm=True) as flip_litellm:
        raw, raw_aiohttp = RawLoop(flip), RawLoop(flip, aiohttp=True)
        try:
            paths = {
                "a_raw_openai": raw.run,
                "a2_raw_openai_aiohttp": raw_aiohttp.run,
                "b_flip": lambda pairs: flip_run(flip, pairs),
                "c_flip_litellm": lambda pairs: flip_run(flip_litellm, pairs),
            }
            for name, run in paths.items():
                await run(distinct_pairs(warmup, f"warm-{name}"))
            return await interleaved_rounds(paths, requests, rounds)
        finally:
            await raw.client.close()
            await raw_aiohttp.client.close()


async def interleaved_rounds(
    paths: dict[str, Callable[[Pairs], Awaitable[Run]]], requests: int, rounds: int
) -> ThroughputResult:
    """``rounds`` rounds; in each, every path in turn over its own fresh distinct pairs."""
    result = ThroughputResult()
    for round_index in range(rounds):
        for name, run in paths.items():
            measured = await run(distinct_pairs(requests, f"r{round_index}-{name}"))
            result.runs[name].append(measured)
            print(
                f"  round {round_index + 1} {name:15s} {measured.per_second:6.0f} rewards/s "
                f"({measured.wall_s:5.2f} s, client CPU {measured.cpu_us_per_request:5.0f} us/request, "
                f"{measured.errors} errors)",
                flush=True,
            )
    return result


# ------------------------------------------------------------------------------------------ benchmark 2: capacity


@dataclass
class CapacityResult:
    """Wall times of one batch size at one client concurrency against a server of fixed capacity."""

    path: str
    max_concurrency: int
    batch: int
    capacity: int
    delay: float
    walls: list[float]
    cpus: list[float]
    errors: int

    @property
    def ideal_s(self) -> float:
        """The server-bound lower limit: ceil(B / C) waves of D seconds."""
        return math.ceil(self.batch / self.capacity) * self.delay

    @property
    def expected_s(self) -> float:
        """The limit when the client admits fewer requests than the server could process."""
        return math.ceil(self.batch / min(self.capacity, self.max_concurrency)) * self.delay

    @property
    def wall_s(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu_s(self) -> float:
        """Client CPU seconds per batch: near ``expected_s`` means the client's CPU, not the server, sets the pace."""
        return statistics.median(self.cpus)


async def fixed_capacity(
    api_base: str, capacity: int, delay: float, batch: int, max_concurrency: int, repeats: int, raw: bool = False
) -> CapacityResult:
    """Time ``repeats`` batches of ``batch`` distinct requests after one warm-up batch (connections opened),
    through FlipReward.ascore, or through the raw AsyncOpenAI loop when ``raw`` (for reference)."""
    path = "raw AsyncOpenAI" if raw else "FlipReward"
    async with open_flip(api_base, max_concurrency=max_concurrency) as flip:
        loop = RawLoop(flip, in_flight=max_concurrency) if raw else None
        run_batch = loop.run if loop else (lambda pairs: flip_run(flip, pairs))
        try:
            await run_batch(distinct_pairs(max_concurrency, f"warm-cap-{path}-{max_concurrency}"))
            runs = [
                await run_batch(distinct_pairs(batch, f"cap-{path}-{max_concurrency}-{repeat}"))
                for repeat in range(repeats)
            ]
        finally:
            if loop:
                await loop.client.close()
    return CapacityResult(
        path,
        max_concurrency,
        batch,
        capacity,
        delay,
        [run.wall_s for run in runs],
        [run.cpu_s for run in runs],
        sum(run.errors for run in runs),
    )


# ----------------------------------------------------------------------------------------------------- profiling


async def profile_ascore(api_base: str, requests: int, top: int = 25) -> str:
    """cProfile of one ``FlipReward.ascore`` over ``requests`` distinct pairs: top self-time entries overall and in
    flip_reward/* only."""
    async with open_flip(api_base) as flip:
        await flip.ascore(*distinct_pairs(IN_FLIGHT, "warm-profile"))
        pairs = distinct_pairs(requests, "profile")
        profiler = cProfile.Profile()
        profiler.enable()
        await flip.ascore(*pairs)
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
    out.write(f"--- top {top} by self time (all code) ---\n")
    stats.print_stats(top)
    out.write("--- flip_reward/* by self time ---\n")
    stats.print_stats(r"flip_reward|prompts/__init__", top)
    return out.getvalue()


# ------------------------------------------------------------------------------------------------------ reporting


def verdict(met: bool) -> str:
    return "target met" if met else "TARGET MISSED"


def print_throughput(result: ThroughputResult) -> list[tuple[str, str, str]]:
    """Print rewards/s per path and the ratios; return the summary rows."""
    names = PATHS
    a, a2, b, c = (result.median(name) for name in names)
    cpu = {name: f"{result.cpu_us(name):.0f} us CPU/req" for name in names}
    print(
        f"  median rewards/s: a {a:.0f}, a2 {a2:.0f}, b {b:.0f}, c {c:.0f}; errors or cache hits: "
        + ", ".join(f"{name} {result.errors(name)}" for name in names)
    )
    return [
        ("1a raw AsyncOpenAI, 64 in flight", f"{a:.0f} rewards/s, {cpu[names[0]]}", "baseline"),
        (
            "1a2 raw AsyncOpenAI over aiohttp",
            f"{a2:.0f} rewards/s, {cpu[names[1]]}",
            f"b/a2 = {b / a2:.3f} (FlipReward's own overhead on the same HTTP stack)",
        ),
        (
            "1b FlipReward.ascore (openai path)",
            f"{b:.0f} rewards/s, {cpu[names[2]]}",
            f"b/a = {b / a:.3f} (>= {THROUGHPUT_TARGET}: {verdict(b / a >= THROUGHPUT_TARGET)})",
        ),
        ("1c FlipReward.ascore (litellm)", f"{c:.0f} rewards/s, {cpu[names[3]]}", f"c/a = {c / a:.3f} (reference)"),
    ]


def capacity_row(result: CapacityResult, role: str) -> tuple[str, str, str]:
    """A summary row; ``role`` is "target" (checked against the target), "reference" or "informational"."""
    ratio = result.wall_s / result.ideal_s
    label = f"2  {result.path}, max_concurrency {result.max_concurrency}"
    wall = f"{result.wall_s:.3f} s (ideal {result.ideal_s:.3f} s), client CPU {result.cpu_s:.2f} s"
    if role == "target":
        note = f"wall/ideal = {ratio:.3f} (<= {CAPACITY_TARGET}: {verdict(ratio <= CAPACITY_TARGET)})"
    elif role == "reference":
        note = f"wall/ideal = {ratio:.3f} (reference: the transport alone)"
    else:
        note = (
            f"wall/ideal = {ratio:.3f} (expected ~{result.expected_s / result.ideal_s:.2f}: "
            f"client admits {result.max_concurrency} < {result.capacity})"
        )
    if result.cpu_s >= CLIENT_BOUND_FRACTION * result.expected_s:
        note += "; client-CPU-bound"
    return label, wall, note


def print_table(rows: list[tuple[str, str, str]]) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    rule = "-" * (sum(widths) + 6)
    print(rule)
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    print(rule)


# ----------------------------------------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=None, help="requests per throughput run (2000; quick 400)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of a, a2, b, c")
    parser.add_argument("--quick", action="store_true", help="fewer requests and repeats")
    parser.add_argument("--capacity", type=int, default=16, help="requests the fixed-capacity server runs at once")
    parser.add_argument("--delay", type=float, default=0.2, help="seconds per request on that server")
    parser.add_argument("--batch", type=int, default=256, help="requests in one fixed-capacity batch")
    parser.add_argument("--repeats", type=int, default=5, help="fixed-capacity batches per setting (quick: 1)")
    parser.add_argument("--small-concurrency", type=int, default=8, help="max_concurrency of the informational run")
    parser.add_argument("--only", choices=("throughput", "capacity"), default=None, help="run one benchmark")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="M",
        help="also cProfile FlipReward.ascore over M requests on the zero-delay server",
    )
    args = parser.parse_args()
    if args.requests is None:
        args.requests = 400 if args.quick else 2000
    return args


async def benchmark_throughput(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """Benchmark 1 (and the optional profile) against a zero-delay server process; returns the summary rows."""
    print(
        f"benchmark 1: throughput, {args.requests} distinct requests per run, {args.rounds} rounds, "
        f"{IN_FLIGHT} in flight, zero-delay server in a separate process",
        flush=True,
    )
    with judge_server() as api_base:
        rows = print_throughput(await throughput(api_base, args.requests, args.rounds, warmup=2 * IN_FLIGHT))
        if args.profile:
            print(await profile_ascore(api_base, args.profile))
    return rows


async def benchmark_capacity(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """Benchmark 2 against a server process of fixed capacity; returns the summary rows."""
    repeats = 1 if args.quick else args.repeats
    print(
        f"benchmark 2: server capacity {args.capacity}, {args.delay * 1000:.0f} ms per request, batch "
        f"{args.batch} distinct, median of {repeats}",
        flush=True,
    )
    plan = (
        (IN_FLIGHT, False, "target"),
        (IN_FLIGHT, True, "reference"),
        (args.small_concurrency, False, "informational"),
    )
    rows = []
    with judge_server(delay=args.delay, capacity=args.capacity) as api_base:
        for max_concurrency, raw, role in plan:
            result = await fixed_capacity(
                api_base, args.capacity, args.delay, args.batch, max_concurrency, repeats, raw=raw
            )
            print(
                f"  {result.path}, max_concurrency {max_concurrency}: walls "
                f"{', '.join(f'{w:.3f}' for w in result.walls)} s, client CPU "
                f"{', '.join(f'{c:.3f}' for c in result.cpus)} s, {result.errors} errors or cache hits",
                flush=True,
            )
            rows.append(capacity_row(result, role))
    return rows


async def main_async(args: argparse.Namespace) -> None:
    rows = []
    if args.only in (None, "throughput"):
        rows += await benchmark_throughput(args)
    if args.only in (None, "capacity"):
        rows += await benchmark_capacity(args)
    print_table(rows)


def main() -> None:
    asyncio.run(main_async(parse_args()))


if __name__ == "__main__":
    main()
