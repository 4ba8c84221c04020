"""Restatement-guard benchmark: its CPU cost per reward, and its catch / false-positive rates on the corpus.

Run ``python benchmarks/bench_restatement.py [--requests N] [--rounds R]``. Measured side by side in this one run:
``FlipReward.ascore`` with the guard (the default) against ``restatement_guard=False``, interleaved, against the
scripted judge server (flip_reward.serving.scripted_judge) in a child process; ``mask_restatements`` alone on a
16k-token response; and the corpus of tests/restatement_corpus.py under a sweep of the thresholds. Nothing here
asserts on time; see benchmarks/README.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1] / "tests")]

from bench_judge import JUDGE_MODEL, distinct_pairs, flip_run, judge_server, print_table  # noqa: E402
from restatement_corpus import BASES, NATURAL, restated_cases  # noqa: E402

from flip_reward.core.restatement import (  # noqa: E402
    MIN_COVERAGE,
    MIN_RUN,
    mask_restatements,
    restated_runs,
    tokens_of,
    window_size,
)
from flip_reward.core.reward import FlipReward  # noqa: E402
from flip_reward.judge.loops import close_clients  # noqa: E402

INSTRUCTION = BASES[7][0]  # the 38-token Kyoto itinerary instruction
REPEATS = 20


def long_response(tokens: int, restated: bool) -> str:
    """A response of about ``tokens`` words, with the instruction restated at its start and middle when asked."""
    words = [f"w{index % 97:02d}" for index in range(tokens)]
    lines = [" ".join(words[start : start + 12]) for start in range(0, tokens, 12)]
    if restated:
        lines.insert(0, f"Task: {INSTRUCTION}")
        lines.insert(len(lines) // 2, f"> {INSTRUCTION}")
    return "\n".join(lines)


def best_seconds(text: str) -> tuple[float, int]:
    best, masked = float("inf"), 0
    for _ in range(REPEATS):
        started = time.perf_counter()
        _, masked = mask_restatements(text, INSTRUCTION)
        best = min(best, time.perf_counter() - started)
    return best, masked


def bench_guard_alone(tokens: int) -> list[tuple[str, str, str]]:
    rows = []
    for restated in (False, True):
        seconds, masked = best_seconds(long_response(tokens, restated))
        label = f"2  mask_restatements, {tokens}-token response, " + ("2 restatements" if restated else "none")
        rows.append((label, f"{seconds * 1000:.2f} ms (best of {REPEATS})", f"{masked} tokens masked"))
    return rows


async def bench_ascore(requests: int, rounds: int) -> list[tuple[str, str, str]]:
    """Interleaved rounds of ascore with and without the guard, each over fresh distinct pairs."""
    cpu: dict[bool, list[float]] = {True: [], False: []}
    rate: dict[bool, list[float]] = {True: [], False: []}
    with judge_server() as api_base:
        flips = {guard: FlipReward(JUDGE_MODEL, api_base, restatement_guard=guard) for guard in (True, False)}
        for guard, flip in flips.items():
            await flip_run(flip, distinct_pairs(64, f"warm-{guard}"))
        for index in range(rounds):
            for guard, flip in flips.items():
                run = await flip_run(flip, distinct_pairs(requests, f"r{index}-{guard}"))
                cpu[guard].append(run.cpu_us_per_request)
                rate[guard].append(run.per_second)
                print(
                    f"  round {index + 1} guard={guard!s:5} {run.per_second:6.0f} rewards/s, "
                    f"{run.cpu_us_per_request:5.0f} us CPU/reward, {run.errors} errors",
                    flush=True,
                )
        await close_clients()
    on, off = statistics.median(cpu[True]), statistics.median(cpu[False])
    prompts, responses = distinct_pairs(1000, "alone")
    started = time.process_time()
    for prompt, response in zip(prompts, responses):
        mask_restatements(response, prompt[-1]["content"])
    alone = 1e6 * (time.process_time() - started) / len(responses)
    return [
        (
            "1  FlipReward.ascore, restatement_guard=False",
            f"{statistics.median(rate[False]):.0f} rewards/s, {off:.0f} us CPU/reward",
            "baseline",
        ),
        (
            "1  FlipReward.ascore, restatement_guard=True",
            f"{statistics.median(rate[True]):.0f} rewards/s, {on:.0f} us CPU/reward",
            f"CPU on/off = {on / off:.3f} ({on - off:+.0f} us/reward)",
        ),
        ("1  mask_restatements alone, same pairs", f"{alone:.0f} us CPU/reward", f"{alone / off:.1%} of a reward"),
    ]


def corpus_rates(min_run: int, min_coverage: float) -> tuple[int, int, int, int]:
    """(caught, restatements, false positives, natural responses) at these thresholds."""
    cases, natural = restated_cases(), NATURAL + BASES
    caught = 0
    for case in cases:
        masked, count = mask_restatements(case.restated, case.instruction, min_run=min_run, min_coverage=min_coverage)
        wanted = [token for token, _, _ in tokens_of(case.instruction)]
        left = restated_runs(
            [t for t, _, _ in tokens_of(masked)], wanted, window_size(len(wanted), min_run, min_coverage)
        )
        caught += count > 0 and not left
    false = sum(mask_restatements(r, i, min_run=min_run, min_coverage=min_coverage)[1] > 0 for i, r in natural)
    return caught, len(cases), false, len(natural)


def bench_corpus() -> list[tuple[str, str, str]]:
    print("benchmark 3: corpus sweep (min_run x min_coverage: catch rate / false-positive rate)")
    for min_run in (4, 6, 8, 10, 12):
        cells = []
        for coverage in (0.0, 0.3, 0.4, 0.5, 0.6):
            caught, cases, false, natural = corpus_rates(min_run, coverage)
            cells.append(f"{coverage:.1f}: {caught / cases:6.1%} / {false / natural:5.1%}")
        print(f"  min_run {min_run:2d}  " + "  ".join(cells))
    caught, cases, false, natural = corpus_rates(MIN_RUN, MIN_COVERAGE)
    chosen = f"3  corpus at MIN_RUN={MIN_RUN}, MIN_COVERAGE={MIN_COVERAGE}"
    return [
        (
            chosen,
            f"catch {caught}/{cases} = {caught / cases:.1%}",
            f"false positives {false}/{natural} = {false / natural:.1%}",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="distinct rewards per path and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=16_000, help="words in the long response of benchmark 2")
    args = parser.parse_args()
    print(f"benchmark 1: FlipReward.ascore with and without the guard, {args.requests} rewards x {args.rounds} rounds")
    rows = asyncio.run(bench_ascore(args.requests, args.rounds))
    print(
        f"benchmark 2: the guard alone on a {args.tokens}-token response, a {len(tokens_of(INSTRUCTION))}-token "
        "instruction"
    )
    rows += bench_guard_alone(args.tokens)
    rows += bench_corpus()
    on_ms = float(rows[3][1].split()[0])
    print(f"  guard alone on {args.tokens} tokens: {on_ms:.2f} ms = {on_ms * 1000 / args.tokens:.2f} us per token")
    print_table(rows)


if __name__ == "__main__":
    main()
