"""Hardening benchmarks: stripping the thinking of a 16k-token response, and the memory of the in-memory answer cache.

Run ``python benchmarks/bench_hardening.py [--tags N] [--cap-s S] [--entries N]``. Both figures are measured in this
one run, side by side: the old think stripper (the regex ``final_answer`` of commit 1cf55d2, reproduced below as
``_old_final_answer``) against ``flip_reward.core.thinking.final_answer``, and ``ResponseCache`` at the old default
bound (100k entries) against the new default (4096). Nothing here asserts on time; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import time
import tracemalloc
from collections.abc import Callable

from flip_reward.core.thinking import final_answer
from flip_reward.judge.cache import DEFAULT_CACHE_SIZE, ResponseCache, request_key

OLD_CACHE_SIZE = 100_000  # ResponseCache's default max_entries before the change
ANSWER_CHARS = 600  # a FLIP judge answer: REASONING + INFERRED INSTRUCTION as JSON
FAST_REPEATS = 20  # best of this many runs for the sub-second timings

# ------------------------------------------------------------------------------ the baseline: commit 1cf55d2

_OLD_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_OLD_ANSWER_BLOCK = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL)


def _old_final_answer(response: str, think_prefilled: bool = False) -> str:
    """``flip_reward/reward.py:final_answer`` at commit 1cf55d2, verbatim: the labelled baseline. The lazy
    ``<think>.*?</think>`` is retried from every ``<think>``, each scan running to the end of the text when no
    ``</think>`` follows, so an unclosed flood of n tags costs O(n^2)."""
    if think_prefilled or "</think>" in response.split("<think>", 1)[0]:
        response = "<think>" + response
    text = _OLD_THINK_BLOCK.sub("", response)
    if "<think>" in text:
        text = text[: text.index("<think>")]
    answer = _OLD_ANSWER_BLOCK.search(text)
    return (answer.group(1) if answer else text).strip()


# ------------------------------------------------------------------------------------------------ 1. thinking


def open_flood(tags: int) -> str:
    return "<think>" * tags + "x"


def close_flood(tags: int) -> str:
    return "</think>" * tags


def normal_response(tokens: int) -> str:
    """A response of about ``tokens`` tokens (~4 bytes each): a closed think block (3/4) then the answer (1/4)."""
    words = [f"w{index % 97:02d}" for index in range(tokens)]  # "w12 ": 4 bytes, about one token
    cut = 3 * tokens // 4
    return "<think>" + " ".join(words[:cut]) + "</think>" + " ".join(words[cut:])


def seconds(function: Callable[[str], str], text: str, repeats: int) -> tuple[float, str]:
    """The best of ``repeats`` wall times of ``function(text)``, and its output."""
    best, output = float("inf"), ""
    for _ in range(repeats):
        started = time.perf_counter()
        output = function(text)
        best = min(best, time.perf_counter() - started)
    return best, output


def old_flood_seconds(tags: int, cap_s: float) -> tuple[list[tuple[int, float, str]], float, bool]:
    """The old stripper on unclosed floods of 1/4, 1/2 and all of ``tags``: the ladder of (tags, seconds, output),
    the figure at ``tags`` and whether it is extrapolated (as n^2, when the next step was predicted past ``cap_s``)."""
    ladder: list[tuple[int, float, str]] = []
    size = max(tags // 4, 1)
    while True:
        secs, output = seconds(_old_final_answer, open_flood(size), 1)
        ladder.append((size, secs, output))
        if size >= tags:
            return ladder, secs, False
        next_size = min(size * 2, tags)
        if secs * (next_size / size) ** 2 > cap_s:
            return ladder, secs * (tags / size) ** 2, True
        size = next_size


def bench_thinking(tags: int, cap_s: float) -> list[tuple[str, str, str]]:
    print(
        f"benchmark 1: think stripping, {tags} tags / a {tags}-token response; fast paths best of "
        f"{FAST_REPEATS}; old flood capped at ~{cap_s:g} s a run",
        flush=True,
    )
    rows = []
    ladder, old_s, extrapolated = old_flood_seconds(tags, cap_s)
    steps = ", ".join(f"{size} tags {secs:.3f} s" for size, secs, _ in ladder)
    growths = ", ".join(f"x{b / a:.1f}" for (_, a, _), (_, b, _) in zip(ladder, ladder[1:]))
    print(f"  old stripper on unclosed floods: {steps}" + (f" (time per x2 tags: {growths})" if growths else ""))
    new_s, new_out = seconds(final_answer, open_flood(tags), FAST_REPEATS)
    size, _, old_out = ladder[-1]
    same = "same output" if old_out == final_answer(open_flood(size)) else "outputs differ"
    old_label = f"{old_s:.2f} s" + (" (EXTRAPOLATED as n^2 from the last step)" if extrapolated else "")
    rows.append(
        (
            f'1  "<think>" * {tags} + "x"',
            f"old {old_label}, new {new_s * 1000:.2f} ms",
            f"speed-up x{old_s / new_s:,.0f}; {same} ({new_out!r}); old is O(n^2)",
        )
    )
    for label, text in (
        (f"1  normal {tags}-token response, one closed block", normal_response(tags)),
        (f'1  "</think>" * {tags}', close_flood(tags)),
    ):
        old_s, old_out = seconds(_old_final_answer, text, FAST_REPEATS)
        new_s, new_out = seconds(final_answer, text, FAST_REPEATS)
        same = (
            "same output"
            if old_out == new_out
            else f"outputs differ: old keeps {len(old_out):,} chars, new {len(new_out):,}"
        )
        rows.append(
            (
                f"{label} ({len(text) / 1000:.0f} KB)",
                f"old {old_s * 1000:.2f} ms, new {new_s * 1000:.2f} ms",
                f"speed-up x{old_s / new_s:.{1 if old_s >= new_s else 2}f}; {same}",
            )
        )
    return rows


# --------------------------------------------------------------------------------------------- 2. cache memory


def flip_answer_text(index: int) -> str:
    """A distinct FLIP judge answer of about ANSWER_CHARS characters."""
    instruction = f"Write a short poem about autumn leaves, number {index}, in the style of a haiku."
    filler = "The reply is a three-line poem with a seasonal word, so the instruction asked for a haiku. "
    reasoning = (filler * (ANSWER_CHARS // len(filler) + 1))[: ANSWER_CHARS - len(instruction) - 50]
    return json.dumps({"REASONING": reasoning, "INFERRED INSTRUCTION": instruction})


def cache_megabytes(max_entries: int, entries: int) -> tuple[float, int]:
    """MB the cache holds (tracemalloc, net of what was freed) after ``entries`` distinct answers, and its length.
    Keys, answers and token counts are created inside the traced region, as a Judge creates them per reward."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache = ResponseCache(max_entries=max_entries)
        for index in range(entries):
            messages = [{"role": "user", "content": f"response {index}"}]
            text = flip_answer_text(index)
            cache.put(
                request_key(["http://127.0.0.1:8000/v1"], "hosted_vllm/judge", messages, {}),
                {"text": text, "prompt_tokens": 900 + index % 1000, "completion_tokens": len(text) // 4},
            )
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return held / 1e6, len(cache)


def bench_cache(entries: int) -> list[tuple[str, str, str]]:
    print(
        f"benchmark 2: in-memory answer cache after {entries} distinct rewards, answers of ~{ANSWER_CHARS} chars",
        flush=True,
    )
    old_mb, old_len = cache_megabytes(OLD_CACHE_SIZE, entries)
    new_mb, new_len = cache_megabytes(DEFAULT_CACHE_SIZE, entries)
    print(
        f"  max_entries {OLD_CACHE_SIZE}: {old_len} held, {old_mb:.1f} MB; "
        f"max_entries {DEFAULT_CACHE_SIZE}: {new_len} held, {new_mb:.1f} MB"
    )
    return [
        (
            f"2  ResponseCache(max_entries={OLD_CACHE_SIZE:_}) (old default)",
            f"{old_mb:.1f} MB, {old_len} entries",
            f"{old_mb * 1e6 / old_len:,.0f} B/entry",
        ),
        (
            f"2  ResponseCache() (new default {DEFAULT_CACHE_SIZE})",
            f"{new_mb:.1f} MB, {new_len} entries",
            f"old/new = {old_mb / new_mb:.1f}",
        ),
    ]


# ------------------------------------------------------------------------------------------------------ main


def print_table(rows: list[tuple[str, str, str]]) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    rule = "-" * (sum(widths) + 6)
    print(rule)
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(rule)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, default=16_000, help="think tags in a flood / tokens in a response")
    parser.add_argument(
        "--cap-s",
        type=float,
        default=60.0,
        help="longest one old-stripper run may take; past it the flood figure is extrapolated",
    )
    parser.add_argument("--entries", type=int, default=100_000, help="distinct answers put in each cache")
    parser.add_argument("--only", choices=("thinking", "cache"), default=None, help="run one benchmark")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    rows = []
    if args.only in (None, "thinking"):
        rows += bench_thinking(args.tags, args.cap_s)
    if args.only in (None, "cache"):
        rows += bench_cache(args.entries)
    print_table(rows)


if __name__ == "__main__":
    main()
