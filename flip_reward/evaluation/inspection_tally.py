"""The figures of ``flip-reward inspect`` gathered in one pass over the samples: per-step tallies (rewards and
lengths as packed floats, counts of error types, restatements and language verdicts) and the k best samples with the
head of their response, so that a file of any length costs a few numbers per sample, never its texts."""

from __future__ import annotations

import heapq
import math
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from flip_reward.evaluation.inspection_input import LineError, Sample

RESPONSE_HEAD = 200


@dataclass
class StepTally:
    """One step's samples as numbers: rewards, response lengths (NaN where unknown), error types, how many were
    restatement-masked, and the language verdicts."""

    rewards: array = field(default_factory=lambda: array("d"))
    chars: array = field(default_factory=lambda: array("d"))
    error_types: Counter = field(default_factory=Counter)
    restated: int = 0
    mismatched: int = 0
    undetermined: int = 0

    def add(self, sample: Sample, language: str | None) -> None:
        """Count ``sample``; ``language`` is "mismatch", "match", "undetermined" or None (the figure does not apply)."""
        self.rewards.append(sample.reward)
        self.chars.append(math.nan if sample.response_chars is None else float(sample.response_chars))
        self.error_types[sample.error_type] += 1
        self.restated += bool(sample.restatement_masked)
        self.mismatched += language == "mismatch"
        self.undetermined += language == "undetermined"

    def extend(self, other: StepTally) -> None:
        self.rewards.extend(other.rewards)
        self.chars.extend(other.chars)
        self.error_types.update(other.error_types)
        self.restated += other.restated
        self.mismatched += other.mismatched
        self.undetermined += other.undetermined


class Tallies:
    """Every step's StepTally and the ``top_k`` highest-reward samples (ties in input order), fed one sample at a
    time. ``language(text)`` is the detector, called only when ``with_language``."""

    def __init__(self, top_k: int, with_language: bool, language: Callable[[str | None], str | None]):
        self.steps: dict[int | None, StepTally] = {}
        self.null_step_lines = array("q")
        self.unseen = 0  # samples whose response length is unknown (eval candidates the judge saw no text of)
        self._top: list[tuple[float, int, Sample]] = []  # a min-heap of (reward, -order, sample)
        self._count = 0
        self._top_k, self._with_language, self._language = top_k, with_language, language

    def add(self, sample: Sample) -> None:
        self._count += 1
        if sample.step is None:
            self.null_step_lines.append(sample.line)
        self.unseen += sample.response_chars is None
        self.steps.setdefault(sample.step, StepTally()).add(sample, self._verdict(sample))
        if self._top_k:
            head = None if sample.response is None else sample.response[:RESPONSE_HEAD]
            entry = (sample.reward, -self._count, replace(sample, response=head, instruction=None))
            if len(self._top) < self._top_k:
                heapq.heappush(self._top, entry)
            elif entry[:2] > self._top[0][:2]:
                heapq.heapreplace(self._top, entry)

    def _verdict(self, sample: Sample) -> str | None:
        if not self._with_language:
            return None
        asked, answered = self._language(sample.instruction), self._language(sample.response)
        if asked is None or answered is None:
            return "undetermined"
        return "mismatch" if asked != answered else "match"

    def settle_steps(self) -> tuple[list[str], list[LineError]]:
        """Notes and errors of null steps: a trace whose steps are all null (a trainer plugin's: they get none) is
        one step 0; a null step among numbered ones is an error for each such line."""
        if not self.null_step_lines:
            return [], []
        if len(self.steps) == 1:
            self.steps = {0: self.steps[None]}
            return ["every step is null (a trainer plugin's trace): all samples are read as one step 0"], []
        return [], [LineError(line, "step", "null while other lines have a step") for line in self.null_step_lines]

    def top(self) -> list[Sample]:
        """The best samples, highest reward first (ties in input order), with a step 0 for a null step."""
        best = sorted(self._top, key=lambda entry: (-entry[0], -entry[1]))
        return [replace(sample, step=0) if sample.step is None else sample for _, _, sample in best]

    def overall(self) -> StepTally:
        every = StepTally()
        for step in sorted(self.steps):
            every.extend(self.steps[step])
        return every
