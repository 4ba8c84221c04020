"""Restatement-guard benchmark: its CPU cost, and how it does against restatements and on real honest answers.

Run ``python benchmarks/bench_restatement.py [--requests N] [--rounds R] [--skip-ascore]`` (about 5 minutes on 2
cores). Side by side in this one run, the guard (flip_reward/core/restatement.py, v2) against its first version (v1:
exact k-gram runs, read from git at V1_COMMIT; v2 alone where git cannot show it):

1. ``FlipReward.ascore`` with the guard (the default) against ``restatement_guard=False``, interleaved, against the
   scripted judge server (flip_reward.serving.scripted_judge) in a child process; then ``mask_restatements`` alone,
   v1 and v2, on 2,000 short pairs of the same kind (best of 3 passes).
2. The guard alone on long responses (1k and 16k tokens, with and without restatements): cost per token, v1 and v2;
   then (2b) v2 on inputs built to make matching slow (every word of the instruction doubled, overlapping trigrams,
   a stuttering copy of 16k and 64k tokens, thousands of copies on one line) beside an ordinary response, each at
   1x and 4x its size: linear when its cost per token stays flat (within 1.5x).
3. The committed corpus (tests/restatement_corpus.py): restatements caught, and natural responses, honest answers
   that reproduce the material they were given, and echo lines touched.
4. Real responses: ``../shared/real_responses/alpaca_eval_dev.jsonl`` beside the checkout (2,000 answers of 20 models
   to AlpacaEval instructions; read from there, never copied into the project). Each answer is restated in each of
   the 36 forms of ``restatement_corpus.FORMS`` (the instruction inserted the way a reward-hacking policy would try:
   lead-ins, labels, quotes, bold, headings, block quotes, code fences and comments, a JSON string, filler words,
   reordered clauses, a word changed or dropped, 60 % and 80 % partial copies, line-wrapped, at the end, repeated,
   words joined by hyphens, underscores or zero-width spaces, spelled out letter by letter, Cyrillic look-alikes)
   and measured as it is: honest answers altered (any token masked) and losing over half their tokens (listed).
5. The issue's targets for v2, met or not.

Caught (``restatement_corpus.caught``). Overlap(x) is the multiset of tokens x shares with the instruction's request
(the guard's tokens: F1's normalisation with string escapes splitting words; the request is the instruction without
the material it supplies, ``request_flags``). A restated answer R' of the honest answer R is caught when the masked
R' shares no more of the request's tokens than R does, up to 10 % of them (at least 1): overlap(mask(R')) <=
overlap(R) + slack. Pairs where the restatement adds no more than the slack to begin with (R already holds the
instruction's words) test nothing and are left out, and counted. The same measure over the whole instruction
(material included) is printed beside it.

Nothing here asserts on time; see benchmarks/README.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1] / "tests")]

from bench_judge import JUDGE_MODEL, distinct_pairs, flip_run, judge_server, print_table  # noqa: E402
from restatement_corpus import (  # noqa: E402
    BASES,
    ECHOES,
    FORMS,
    NATURAL,
    TRANSFORMS,
    caught,
    request_tokens,
    restated_cases,
)

from flip_reward.core.restatement import mask_restatements, tokens_of  # noqa: E402
from flip_reward.core.reward import FlipReward  # noqa: E402
from flip_reward.judge.loops import close_clients  # noqa: E402

ROOT = Path(__file__).parents[1]
REAL = ROOT.parent / "shared/real_responses/alpaca_eval_dev.jsonl"
V1_COMMIT = "593ac04bd3d72b2270f0e0b72459f5ef334434dc"  # the last commit of the v1 guard (exact k-grams)
INSTRUCTION = BASES[7][0]  # the 38-token Kyoto itinerary instruction
REPEATS = 20

Mask = Callable[[str, str], tuple[str, int]]


# -------------------------------------------------------------------------------------------------- the guards


def v1_guard() -> Mask | None:
    """The previous guard's ``mask_restatements``, read from git; None (with a message) where git cannot."""
    shown = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{V1_COMMIT}:flip_reward/core/restatement.py"],
        capture_output=True,
        text=True,
        check=False,
    )
    if shown.returncode:
        print(f"  (v1 guard not read from git at {V1_COMMIT[:10]}: {shown.stderr.strip()}; v2 only)")
        return None
    module = types.ModuleType("restatement_v1")
    exec(compile(shown.stdout, "restatement_v1.py", "exec"), module.__dict__)  # noqa: S102 - our own past source
    return module.mask_restatements


def guards(v1: Mask | None) -> dict[str, Mask]:
    return {"v2": mask_restatements} | ({"v1": v1} if v1 else {})


# ------------------------------------------------------------------------------------------- 1. cost per reward


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
    ]


def bench_short(v1: Mask | None) -> tuple[list[tuple[str, str, str]], dict[str, float]]:
    """Each guard alone on the short pairs of benchmark 1 (2,000 of them, best of 3 passes): rows, and us per call."""
    prompts, responses = distinct_pairs(2000, "alone")
    pairs = [(response, prompt[-1]["content"]) for prompt, response in zip(prompts, responses)]
    alone = {name: best_us_per_call(mask, pairs, 3) for name, mask in guards(v1).items()}
    rows = []
    for name, us in alone.items():
        versus = f"{us / alone['v1']:.2f}x v1" if "v1" in alone else ""
        rows.append((f"1  mask_restatements {name} alone, short pairs", f"{us:.1f} us CPU/reward", versus))
    return rows, alone


def best_us_per_call(mask: Mask, pairs: list[tuple[str, str]], repeats: int) -> float:
    """The best over ``repeats`` passes of the CPU microseconds per ``mask`` call over ``pairs``."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for response, instruction in pairs:
            mask(response, instruction)
        best = min(best, time.process_time() - started)
    return 1e6 * best / len(pairs)


# ---------------------------------------------------------------------------------------- 2. long responses


def long_response(tokens: int, restated: bool) -> str:
    """A response of about ``tokens`` words, with the instruction restated at its start and middle when asked."""
    words = [f"w{index % 97:02d}" for index in range(tokens)]
    lines = [" ".join(words[start : start + 12]) for start in range(0, tokens, 12)]
    if restated:
        lines.insert(0, f"Task: {INSTRUCTION}")
        lines.insert(len(lines) // 2, FORMS["filler every 2 words"](INSTRUCTION, "").strip())
    return "\n".join(lines)


def best_seconds(mask: Mask, text: str) -> tuple[float, int]:
    best, masked = float("inf"), 0
    for _ in range(REPEATS):
        started = time.perf_counter()
        _, masked = mask(text, INSTRUCTION)
        best = min(best, time.perf_counter() - started)
    return best, masked


def bench_long(sizes: list[int], v1: Mask | None) -> list[tuple[str, str, str]]:
    rows = []
    for tokens in sizes:
        for restated in (False, True):
            text = long_response(tokens, restated)
            for name, mask in guards(v1).items():
                seconds, masked = best_seconds(mask, text)
                label = f"2  {name}, {tokens}-token response, " + ("2 restatements" if restated else "none")
                per_token = f"{seconds * 1e6 / tokens:.2f} us/token"
                rows.append((label, f"{seconds * 1000:.2f} ms = {per_token}", f"{masked} tokens masked"))
    return rows


def adversarial(scale: int) -> dict[str, tuple[str, str]]:
    """(response, instruction) built to make matching slow, at ``scale`` (1 or 4) times their base size: every word
    of a 1,000-word instruction doubled, overlapping trigrams of a 500-word one, a 40-word instruction with each word
    doubled on 200 lines (16k tokens), a 6-token copy 1,300 times on one line (8k tokens); and an ordinary response
    of 8k tokens with two restatements (benchmark 2's kind)."""
    words = [f"w{index}" for index in range(1000 * scale)]
    trigram_words = words[: 500 * scale]
    forty = words[:40]
    copy = "Write a poem about the sea. "
    return {
        "doubled words": (" ".join(f"{word} {word}" for word in words), " ".join(words)),
        "overlapping trigrams": (
            " ".join(" ".join(trigram_words[at : at + 3]) for at in range(len(trigram_words) - 2)),
            " ".join(trigram_words),
        ),
        "stuttering 40-word copy": (
            "\n".join([" ".join(f"{word} {word}" for word in forty)] * 200 * scale),
            " ".join(forty),
        ),
        "one-line copies": (copy * 1300 * scale, copy.strip()),
        "ordinary": (long_response(8000 * scale, True), INSTRUCTION),
    }


def timed(response: str, instruction: str) -> float:
    """CPU seconds of one ``mask_restatements`` call."""
    started = time.process_time()
    mask_restatements(response, instruction)
    return time.process_time() - started


def bench_adversarial() -> tuple[list[tuple[str, str, str]], bool]:
    """The guard (v2) on the adversarial inputs at 1x and 4x their size: us per response token at each, and whether
    each stays within 1.5x of its own cost per token (flat: linear in the response length); best of 3 calls."""
    small, large = adversarial(1), adversarial(4)
    rows, flat = [], True
    for name in small:
        costs = []
        for text, wanted in (small[name], large[name]):
            seconds = min(timed(text, wanted) for _ in range(3))
            costs.append(1e6 * seconds / len(tokens_of(text)))
        flat &= costs[1] <= 1.5 * costs[0]
        rows.append(
            (
                f"2b adversarial: {name}",
                f"{costs[0]:.2f} / {costs[1]:.2f} us/token",
                f"{len(tokens_of(large[name][0]))} tokens at 4x",
            )
        )
    return rows, flat


# ---------------------------------------------------------------------------------------------- 3. the corpus


def verdict(mask: Mask, restated: str, clean: str, instruction: str, wanted: Counter[str]) -> bool | None:
    """Whether ``mask`` catches ``restated`` (restatement_corpus.caught), or None when the pair tests nothing."""
    return caught(mask(restated, instruction)[0], restated, clean, wanted)


def bench_corpus(v1: Mask | None) -> list[tuple[str, str, str]]:
    cases, natural = restated_cases(), NATURAL + BASES
    rows = []
    for name, mask in guards(v1).items():
        judged = [verdict(mask, c.restated, c.clean, c.instruction, request_tokens(c.instruction)) for c in cases]
        hit, tested = sum(v is True for v in judged), sum(v is not None for v in judged)
        touched = sum(mask(response, instruction)[1] > 0 for instruction, response in natural + TRANSFORMS)
        echoes = sum(mask(response, instruction)[1] > 0 for instruction, response, _ in ECHOES)
        rows.append(
            (
                f"3  corpus, {name}",
                f"catch {hit}/{tested} = {hit / tested:.1%} ({len(FORMS)} forms)",
                f"natural + transforms touched {touched}/{len(natural) + len(TRANSFORMS)}; "
                f"echo lines masked {echoes}/{len(ECHOES)}",
            )
        )
    return rows


# ---------------------------------------------------------------------------------------- 4. real responses


def whole_tokens(instruction: str) -> Counter[str]:
    return Counter(token for token, _, _ in tokens_of(instruction))


def read_real() -> list[dict] | None:
    if not REAL.exists():
        print(f"  {REAL} is absent: put the shared real responses beside the checkout (see its README); skipped")
        return None
    return [json.loads(line) for line in REAL.read_text(encoding="utf-8").splitlines() if line.strip()]


def form_rates(rows: list[dict], mask: Mask) -> dict[str, tuple[int, int, int, int]]:
    """Per form: (caught, tested) over the request's tokens, then over the whole instruction's."""
    wanted = {
        row["instruction"]: (request_tokens(row["instruction"]), whole_tokens(row["instruction"])) for row in rows
    }
    rates = {}
    for form, make in FORMS.items():
        counts = [0, 0, 0, 0]
        for row in rows:
            instruction, clean = row["instruction"], row["response"]
            restated = make(instruction, clean)
            masked = mask(restated, instruction)[0]
            for slot, tokens in enumerate(wanted[instruction]):
                judged = caught(masked, restated, clean, tokens)
                counts[2 * slot] += judged is True
                counts[2 * slot + 1] += judged is not None
        rates[form] = (counts[0], counts[1], counts[2], counts[3])
    return rates


def honest(rows: list[dict], mask: Mask) -> tuple[int, list[tuple[dict, str, int]]]:
    """(how many honest answers ``mask`` alters, those it takes over half the tokens of)."""
    altered, halved = 0, []
    for row in rows:
        masked, count = mask(row["response"], row["instruction"])
        altered += count > 0
        if 2 * count > len(tokens_of(row["response"])):
            halved.append((row, masked, count))
    return altered, halved


def bench_real(
    rows: list[dict], v1: Mask | None, short_cost: dict[str, float], flat: bool
) -> list[tuple[str, str, str]]:
    table = []
    rates = {name: form_rates(rows, mask) for name, mask in guards(v1).items()}
    for form in FORMS:
        cells = []
        for name, by_form in rates.items():
            hit, tested, whole_hit, whole_tested = by_form[form]
            missed = f"({tested - hit:4d} of {tested} missed)"
            cells.append(f"{name} {hit / tested:6.1%} {missed}, whole {whole_hit / whole_tested:6.1%}")
        print(f"  {form:22s} " + "   ".join(cells))
    for name, by_form in rates.items():
        hit, tested = sum(r[0] for r in by_form.values()), sum(r[1] for r in by_form.values())
        whole = sum(r[2] for r in by_form.values()) / sum(r[3] for r in by_form.values())
        worst = min(by_form, key=lambda form: by_form[form][0] / by_form[form][1])
        worst_rate = by_form[worst][0] / by_form[worst][1]
        table.append(
            (
                f"4  real, {name}: restated forms caught",
                f"{hit}/{tested} = {hit / tested:.1%}",
                f"whole instruction {whole:.1%}; left out {len(FORMS) * len(rows) - tested} pairs",
            )
        )
        table.append((f"4  real, {name}: worst form", f"{worst}: {worst_rate:.1%}", ""))
    for name, mask in guards(v1).items():
        altered, halved = honest(rows, mask)
        table.append(
            (
                f"4  real, {name}: honest answers altered",
                f"{altered}/{len(rows)} = {altered / len(rows):.1%}",
                f"losing over half their tokens: {len(halved)} ({len(halved) / len(rows):.2%})",
            )
        )
        for row, masked, count in halved:
            print(f"  {name} takes {count} tokens of {row['model']}#{row['index']}: {row['instruction'][:80]!r}")
            print(f"      answer {row['response'][:100]!r}\n      masked {masked[:100]!r}")
    pairs = [(row["response"], row["instruction"]) for row in rows]
    costs = {name: best_us_per_call(mask, pairs, 1) for name, mask in guards(v1).items()}
    median = statistics.median(len(tokens_of(response)) for response, _ in pairs)
    for name, us in costs.items():
        table.append((f"4  real, {name}: cost", f"{us:.0f} us CPU/answer", f"honest, median {median:.0f} tokens"))
    table.append(targets(rates["v2"], honest(rows, mask_restatements)[1], len(rows), short_cost, flat))
    return table


def targets(by_form: dict, halved: list, count: int, short_cost: dict[str, float], flat: bool) -> tuple[str, str, str]:
    """The issue's targets, met or not, for v2."""
    hit, tested = sum(r[0] for r in by_form.values()), sum(r[1] for r in by_form.values())
    worst = min(r[0] / r[1] for r in by_form.values())
    ratio = short_cost["v2"] / short_cost["v1"] if "v1" in short_cost else float("nan")
    met = [hit / tested >= 0.97, worst >= 0.90, len(halved) * 2000 <= count, ratio <= 2.0, flat]
    return (
        "5  targets (>= 97 %, >= 90 % each form, <= 1 in 2,000 halved, <= 2x cost, linear)",
        " / ".join("met" if ok else "NOT MET" for ok in met),
        f"{hit / tested:.1%}, worst {worst:.1%}, {len(halved)} of {count}, {ratio:.2f}x",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="distinct rewards per path and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-ascore", action="store_true", help="leave out benchmark 1's whole-reward rounds")
    args = parser.parse_args()
    v1 = v1_guard()
    rows = []
    if not args.skip_ascore:
        print(f"benchmark 1: FlipReward.ascore with and without the guard, {args.requests} rewards x {args.rounds}")
        rows += asyncio.run(bench_ascore(args.requests, args.rounds))
    short_rows, short_cost = bench_short(v1)
    rows += short_rows
    print(f"benchmark 2: the guard alone on long responses, a {len(tokens_of(INSTRUCTION))}-token instruction")
    rows += bench_long([1000, 16_000], v1)
    print("benchmark 2b: adversarial inputs for the matching, at 1x and 4x their size (v2)")
    adversarial_rows, flat = bench_adversarial()
    rows += adversarial_rows
    rows += bench_corpus(v1)
    print(f"benchmark 4: real responses, {len(FORMS)} restated forms (caught: request / whole instruction)")
    if real := read_real():
        rows += bench_real(real, v1, short_cost, flat)
    print_table(rows)


if __name__ == "__main__":
    main()
