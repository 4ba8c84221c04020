"""RewardBench-2-style evaluation of FLIP and the LLM-as-a-judge baselines: examples, how each method judges one,
and the accuracy definitions that turn judgments into figures (strict, tie-split, RewardBench 2's Ties rule).

- flip, pointwise: every candidate is scored. Strict: correct iff every chosen score is strictly greater than every
  rejected score. Tie-split: the chance that ranking by score, ties broken uniformly at random, puts every chosen
  response above every rejected one (1/k for one chosen tied with k-1 others at the top).
- pairwise: every (chosen, rejected) pair is judged in both orders; a pair is won only if chosen is preferred in
  both. Strict: every pair won. Tie-split: a pair preferred in one order only counts 1/2; credits multiply.
- listwise: all candidates in one prompt, in an order shuffled by a per-example RNG seeded from (seed, id);
  correct iff the pick is a chosen response (any of them when there are several).
- An example with any failed judge call (or an input error) scores 0 under both rules and counts in ``errors``.
- Ties (subset "Ties", ids ``ref:<n>`` / ``tied:<n>``): scored for flip and pointwise by RewardBench 2's own rule
  (``ties_score``); pairwise and listwise leave it out. The overall figure is the mean of subset figures.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TypeVar

from flip_reward.core.results import ErrorType
from flip_reward.core.reward import FlipReward
from flip_reward.data.loading import RowError, check_prompt, field_value, numbered, object_row
from flip_reward.evaluation.baselines import (
    ListwiseJudge,
    PairwiseJudge,
    PointwiseJudgeReward,
)

METHODS = ("flip", "pointwise", "pairwise", "listwise")
SCORE_METHODS = ("flip", "pointwise")
SCORERS = {"flip": FlipReward, "pointwise": PointwiseJudgeReward, "pairwise": PairwiseJudge, "listwise": ListwiseJudge}
TIES_SUBSET = "ties"
TIES_LEFT_OUT = "left out: RewardBench 2 scores Ties from per-response scores, which {method} does not produce"
TIES_UNPAIRED = "left out: no prompt has both its ref: and its tied: row (RewardBench 2's Ties rule needs both)"
_TIES_ID = re.compile(r"(ref|tied):(.+)")
_COUNT_FIELDS = {"chosen": "num_correct", "rejected": "num_incorrect"}  # optional RewardBench 2 columns
Progress = Callable[[int], object]
T = TypeVar("T")


@dataclass(frozen=True)
class Example:
    """One RewardBench-2-shaped row: a prompt, its chosen (correct) and rejected responses, its subset."""

    id: str
    prompt: str | list
    chosen: tuple[str, ...]
    rejected: tuple[str, ...]
    subset: str

    @property
    def candidates(self) -> tuple[str, ...]:
        """Chosen responses first, then rejected ones (a candidate index below ``len(chosen)`` is chosen)."""
        return self.chosen + self.rejected

    @property
    def is_ties(self) -> bool:
        return self.subset.casefold() == TIES_SUBSET


def _responses(row: Mapping, name: str, number: int) -> tuple[str, ...]:
    value = field_value(row, name, number)
    if not isinstance(value, (list, tuple)) or not value:
        raise RowError(number, name, f"must be a non-empty list of strings, got {type(value).__name__}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise RowError(number, name, f"item {index} must be a non-empty string")
    count_field = _COUNT_FIELDS[name]
    if row.get(count_field) is not None and row[count_field] != len(value):
        raise RowError(number, name, f"holds {len(value)} responses but {count_field} is {row[count_field]!r}")
    return tuple(value)


def example_from_row(row: object, number: int) -> Example:
    """The Example of a row, or RowError naming the row and the field at fault."""
    row = object_row(row, number)
    example_id = field_value(row, "id", number)
    if isinstance(example_id, bool) or not isinstance(example_id, (str, int)) or not str(example_id).strip():
        raise RowError(number, "id", "must be a non-empty string or an integer")
    check_prompt(field_value(row, "prompt", number), number)
    subset = field_value(row, "subset", number)
    if not isinstance(subset, str) or not subset.strip():
        raise RowError(number, "subset", "must be a non-empty string")
    example = Example(
        str(example_id), row["prompt"], _responses(row, "chosen", number), _responses(row, "rejected", number), subset
    )
    if example.is_ties and not _TIES_ID.fullmatch(example.id):
        raise RowError(number, "id", "a Ties row needs an id 'ref:<n>' or 'tied:<n>' (RewardBench 2's Ties rule)")
    return example


def read_examples(rows: Sequence[object]) -> tuple[list[Example], list[RowError]]:
    """Every valid row as an Example, and a RowError for every invalid one (duplicate ids included); rows are
    numbered as ``numbered`` does."""
    examples, errors, seen = [], [], set()
    for number, row in numbered(rows):
        try:
            example = example_from_row(row, number)
        except RowError as error:
            errors.append(error)
            continue
        if example.id in seen:
            errors.append(RowError(number, "id", f"duplicate id {example.id!r}"))
        seen.add(example.id)
        examples.append(example)
    return examples, errors


def select(
    examples: Sequence[Example], subsets: Sequence[str] | None = None, limit: int | None = None
) -> list[Example]:
    """Examples of the named subsets (case-insensitive; ValueError for an unknown one), then the first ``limit``."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if subsets:
        present = {example.subset.casefold(): example.subset for example in examples}
        unknown = [name for name in subsets if name.casefold() not in present]
        if unknown:
            raise ValueError(f"unknown subset(s) {', '.join(unknown)}; the data has {', '.join(present.values())}")
        wanted = {name.casefold() for name in subsets}
        examples = [example for example in examples if example.subset.casefold() in wanted]
    return list(examples[:limit] if limit is not None else examples)


def listwise_order(seed: int, example_id: str, count: int) -> list[int]:
    """The candidate indices in the order the listwise judge sees them, from an RNG seeded by (seed, id) only."""
    digest = hashlib.sha256(f"{seed}:{example_id}".encode()).digest()
    order = list(range(count))
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def strict_correct(chosen: Sequence[float | None], rejected: Sequence[float | None]) -> bool:
    """Every chosen score strictly above every rejected score (a missing score is never correct)."""
    if None in chosen or None in rejected:
        return False
    return min(chosen) > max(rejected)


def tie_split_credit(chosen: Sequence[float | None], rejected: Sequence[float | None]) -> float:
    """Chance that ordering by score with random tie-breaking puts every chosen above every rejected response:
    1 or 0 without a tie at the boundary, else 1 / C(c + r, c) for c chosen tied with r rejected there."""
    if None in chosen or None in rejected:
        return 0.0
    worst, best = min(chosen), max(rejected)
    if worst != best:
        return float(worst > best)
    tied_chosen, tied_rejected = chosen.count(worst), rejected.count(best)
    return 1 / math.comb(tied_chosen + tied_rejected, tied_chosen)


@dataclass(frozen=True)
class Verdict:
    """How one method judged one example: strict ``correct``, tie-split ``credit``, cost and the raw judgments."""

    method: str
    example_id: str
    subset: str
    correct: bool
    credit: float
    calls: int
    failed: int
    prompt_tokens: int
    completion_tokens: int
    cached: int
    chosen_scores: tuple[float | None, ...] | None = None
    rejected_scores: tuple[float | None, ...] | None = None
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _verdict(
    method: str, example: Example, judgments: Sequence, correct: bool, credit: float, **extra: object
) -> Verdict:
    """A Verdict in which any failed judgment makes the example incorrect with no credit."""
    failed = sum(judgment.error is not None for judgment in judgments)
    return Verdict(
        method,
        example.id,
        example.subset,
        correct=correct and not failed,
        credit=0.0 if failed else credit,
        calls=sum(judgment.error_type != ErrorType.INPUT for judgment in judgments),
        failed=failed,
        prompt_tokens=sum(judgment.prompt_tokens for judgment in judgments),
        completion_tokens=sum(judgment.completion_tokens for judgment in judgments),
        cached=sum(judgment.cached for judgment in judgments),
        **extra,
    )


async def ticking(awaitable: Awaitable[T], progress: Progress | None) -> T:
    """The result of ``awaitable``, reported to ``progress`` (one step) when it is done."""
    result = await awaitable
    if progress is not None:
        progress(1)
    return result


async def judge_by_scores(
    scorer: FlipReward | PointwiseJudgeReward, method: str, example: Example, progress: Progress | None = None
) -> Verdict:
    """Score every candidate; strict and tie-split verdicts from the scores (failed scores are None)."""
    results = await asyncio.gather(
        *(ticking(scorer.ascore_one(example.prompt, candidate), progress) for candidate in example.candidates)
    )
    scores = [result.reward if result.error is None else None for result in results]
    chosen, rejected = tuple(scores[: len(example.chosen)]), tuple(scores[len(example.chosen) :])
    return _verdict(
        method,
        example,
        results,
        strict_correct(chosen, rejected),
        tie_split_credit(chosen, rejected),
        chosen_scores=chosen,
        rejected_scores=rejected,
        detail={"judgments": [result.to_dict() for result in results]},
    )


def _pair_credit(chosen_first: str | None, rejected_first: str | None) -> float:
    """1 when chosen is preferred in both orders, 1/2 in one, 0 in none."""
    return ((chosen_first == "A") + (rejected_first == "B")) / 2


async def judge_by_pairs(judge: PairwiseJudge, example: Example, progress: Progress | None = None) -> Verdict:
    """Every chosen against every rejected response, chosen shown first (A) and then second (B)."""
    pairs = [(i, j) for i in range(len(example.chosen)) for j in range(len(example.rejected))]
    calls = []
    for i, j in pairs:
        chosen, rejected = example.chosen[i], example.rejected[j]
        calls += [judge.acompare(example.prompt, chosen, rejected), judge.acompare(example.prompt, rejected, chosen)]
    results = await asyncio.gather(*(ticking(call, progress) for call in calls))
    outcomes = [
        {
            "chosen": i,
            "rejected": j,
            "chosen_first": first.winner,
            "rejected_first": second.winner,
            "credit": _pair_credit(first.winner, second.winner),
        }
        for (i, j), first, second in zip(pairs, results[::2], results[1::2])
    ]
    credits = [outcome["credit"] for outcome in outcomes]
    return _verdict(
        "pairwise",
        example,
        results,
        all(credit == 1 for credit in credits),
        math.prod(credits),
        detail={"pairs": outcomes, "judgments": [result.to_dict() for result in results]},
    )


async def judge_by_list(judge: ListwiseJudge, example: Example, seed: int, progress: Progress | None = None) -> Verdict:
    """All candidates in one prompt, shuffled by ``listwise_order``; correct iff the pick is a chosen response."""
    order = listwise_order(seed, example.id, len(example.candidates))
    result = await ticking(judge.apick(example.prompt, [example.candidates[i] for i in order]), progress)
    picked = order[result.index] if result.index is not None else None
    correct = picked is not None and picked < len(example.chosen)
    return _verdict(
        "listwise",
        example,
        [result],
        correct,
        float(correct),
        detail={"seed": seed, "order": order, "picked": picked, "judgment": result.to_dict()},
    )


def judged_examples(method: str, examples: Iterable[Example]) -> list[Example]:
    """The examples ``method`` judges: all of them for score methods, all but Ties rows for the others."""
    return [example for example in examples if method in SCORE_METHODS or not example.is_ties]


def planned_calls(method: str, examples: Sequence[Example]) -> int:
    """How many judge calls ``method`` makes on ``examples`` (the progress bar's total)."""
    judged = judged_examples(method, examples)
    if method in SCORE_METHODS:
        return sum(len(example.candidates) for example in judged)
    if method == "pairwise":
        return sum(2 * len(example.chosen) * len(example.rejected) for example in judged)
    return len(judged)


async def evaluate_method(
    method: str, scorer: object, examples: Sequence[Example], seed: int = 0, progress: Progress | None = None
) -> list[Verdict]:
    """One Verdict per judged example (see ``judged_examples``), in order, all judged concurrently."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")

    def judge_one(example: Example):
        if method in SCORE_METHODS:
            return judge_by_scores(scorer, method, example, progress)
        if method == "pairwise":
            return judge_by_pairs(scorer, example, progress)
        return judge_by_list(scorer, example, seed, progress)

    return list(await asyncio.gather(*(judge_one(example) for example in judged_examples(method, examples))))


@dataclass(frozen=True)
class TiesScore:
    """RewardBench 2's Ties figure: 0.3 tied accuracy + 0.3 ref accuracy + 0.2 correctness_preferred
    + 0.2 correctness_preferred_hard + 0.01 correctness_margin_score."""

    ref_accuracy: float
    tied_accuracy: float
    correctness_preferred: float
    correctness_preferred_hard: float
    correctness_margin_score: float
    score: float


def _ties_stats(verdict: Verdict) -> tuple[bool, float | None, float | None]:
    """(accurate, spread among correct scores or None for one, worst correct - best incorrect) of one Ties row; a
    row with a failed call is inaccurate and has no margin (None)."""
    if verdict.failed or None in verdict.chosen_scores or None in verdict.rejected_scores:
        return False, None, None
    correct, incorrect = verdict.chosen_scores, verdict.rejected_scores
    margin = min(correct) - max(incorrect)
    return margin > 0, max(correct) - min(correct) if len(correct) > 1 else None, margin


def _margin_term(margin: float, spread: float) -> float:
    """tanh(margin / spread - 1) with numpy's division by zero (±inf, or 0 for 0/0) as RewardBench 2 computes it."""
    if spread:
        return math.tanh(margin / spread - 1)
    return math.copysign(1.0, margin) if margin else 0.0


def ties_score(verdicts: Sequence[Verdict]) -> TiesScore | None:
    """RewardBench 2's Ties rule on score verdicts of Ties rows (ids ``ref:<n>``/``tied:<n>``); None when no prompt
    has both rows. Accuracies average every ref (resp. tied) row; the margin terms average the prompts with both,
    a prompt with a failed call adding 0 to each (a failed example scores 0, never less)."""
    stats: dict[str, dict[str, tuple]] = {"ref": {}, "tied": {}}
    for verdict in verdicts:
        kind, prompt_id = _TIES_ID.fullmatch(verdict.example_id).groups()
        stats[kind][prompt_id] = _ties_stats(verdict)
    shared = sorted(set(stats["ref"]) & set(stats["tied"]))
    if not shared:
        return None
    ref_accuracy, tied_accuracy = (sum(s[0] for s in stats[k].values()) / len(stats[k]) for k in ("ref", "tied"))
    judged = [p for p in shared if stats["ref"][p][2] is not None and stats["tied"][p][2] is not None]
    spreads = [stats["tied"][p][1] or 0.0 for p in judged]
    tied_margins = [stats["tied"][p][2] for p in judged]
    hard_margins = [min(stats["ref"][p][2], margin) for p, margin in zip(judged, tied_margins)]
    preferred = sum(m > s for m, s in zip(tied_margins, spreads)) / len(shared)
    preferred_hard = sum(m > s for m, s in zip(hard_margins, spreads)) / len(shared)
    margin_score = sum(map(_margin_term, hard_margins, spreads)) / len(shared)
    score = 0.3 * tied_accuracy + 0.3 * ref_accuracy + 0.2 * preferred + 0.2 * preferred_hard + 0.01 * margin_score
    return TiesScore(ref_accuracy, tied_accuracy, preferred, preferred_hard, margin_score, score)


@dataclass(frozen=True)
class MethodSummary:
    """A method's figures: overall and per-subset accuracy (strict and tie-split), counts and cost.

    ``accuracy`` is the mean of the per-subset figures (RewardBench 2's overall); ``errors`` counts examples with
    a failed call (scored incorrect), ``failed_calls`` the failed judgments, ``failed_subsets`` the subsets where
    every call failed (their 0.0 says nothing of the judge's accuracy); tokens are summed over every call,
    cached answers included, so a rerun from cache reports the same cost.
    """

    method: str
    accuracy: float | None
    accuracy_tie_split: float | None
    per_subset: dict[str, float]
    per_subset_tie_split: dict[str, float]
    n: int
    judge_calls: int
    failed_calls: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cached_calls: int
    excluded: dict[str, str]
    ties: dict | None = None
    seed: int | None = None
    failed_subsets: tuple[str, ...] = ()  # scored subsets whose every judge call failed: their 0 is no accuracy

    def to_dict(self) -> dict:
        return asdict(self)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(method: str, verdicts: Sequence[Verdict], examples: Sequence[Example], seed: int = 0) -> MethodSummary:
    """The figures of ``method`` from its verdicts on ``examples`` (subsets in order of first appearance)."""
    strict: dict[str, float] = {}
    split: dict[str, float] = {}
    excluded: dict[str, str] = {}
    ties = None
    for subset in dict.fromkeys(example.subset for example in examples):
        in_subset = [verdict for verdict in verdicts if verdict.subset == subset]
        if subset.casefold() == TIES_SUBSET:
            ties = ties_score(in_subset) if method in SCORE_METHODS else None
            if ties is None:
                excluded[subset] = TIES_UNPAIRED if method in SCORE_METHODS else TIES_LEFT_OUT.format(method=method)
                continue
            strict[subset] = split[subset] = ties.score
        else:
            strict[subset] = _mean([float(verdict.correct) for verdict in in_subset])
            split[subset] = _mean([verdict.credit for verdict in in_subset])
    return MethodSummary(
        method,
        _mean(list(strict.values())),
        _mean(list(split.values())),
        strict,
        split,
        n=len(verdicts),
        judge_calls=sum(v.calls for v in verdicts),
        failed_calls=sum(v.failed for v in verdicts),
        errors=sum(v.failed > 0 for v in verdicts),
        prompt_tokens=sum(v.prompt_tokens for v in verdicts),
        completion_tokens=sum(v.completion_tokens for v in verdicts),
        cached_calls=sum(v.cached for v in verdicts),
        excluded=excluded,
        ties=asdict(ties) if ties else None,
        seed=seed if method == "listwise" else None,
        failed_subsets=tuple(subset for subset in strict if _every_call_failed(verdicts, subset)),
    )


def _every_call_failed(verdicts: Sequence[Verdict], subset: str) -> bool:
    """Whether the judge calls of ``subset`` all failed (as the command's exit status counts them)."""
    calls = sum(verdict.calls for verdict in verdicts if verdict.subset == subset)
    return calls > 0 and sum(verdict.failed for verdict in verdicts if verdict.subset == subset) >= calls
