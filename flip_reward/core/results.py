"""The result base type every judged method returns (why it failed, the judge's reasoning, what it cost), and the
one vocabulary of failure kinds, ``ErrorType``, that every tally counts by."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import Enum


class ErrorType(str, Enum):
    """Why a result has no verdict: every ``error_type`` is one of these (None on success). A ``str`` enum, so a
    member equals its value and JSON output writes the plain string; docs/reference.md ("Error types") lists them.

    Each kind has one name in every tally (``failure``): counted as ``counter`` (the TRL metrics, the service's
    Prometheus counters, ``flip-reward score``'s summary), its share as ``rate`` (``flip-reward inspect``), and
    ``flip_`` + ``failure`` flags it in ``/get_reward``'s logs.

    >>> ErrorType("parse") is ErrorType.PARSE, f"{ErrorType.JUDGE}", ErrorType.INPUT == "input"
    (True, 'judge', True)
    >>> ErrorType.PARSE.counter, ErrorType.JUDGE.counter, ErrorType.INPUT.rate
    ('parse_failures', 'judge_errors', 'input_error_rate')
    """

    INPUT = "input"  # a bad prompt or an empty response: nothing to ask the judge
    JUDGE = "judge"  # the judge request failed after its retries, or the breaker refused it
    PARSE = "parse"  # the judge answered, but nothing usable could be read from the answer
    CONFIG = "config"  # a trainer plugin could not set its reward up (a bad FLIP_* value or option)
    INTERNAL = "internal"  # an unexpected exception in the reward path, caught at a trainer plugin's boundary

    def __str__(self) -> str:
        return self.value

    @property
    def failure(self) -> str:
        """This kind's name in every tally: parse_failure, judge_error, input_error, config_error, internal_error."""
        return "parse_failure" if self is ErrorType.PARSE else f"{self.value}_error"

    @property
    def counter(self) -> str:
        """The name a count of this kind goes by (judge_errors, parse_failures, ...)."""
        return f"{self.failure}s"

    @property
    def rate(self) -> str:
        """The name of this kind's share of the completions (judge_error_rate, ...)."""
        return f"{self.failure}_rate"


JUDGED_FAILURES = (ErrorType.INPUT, ErrorType.JUDGE, ErrorType.PARSE)
"""What a judged method (FlipReward, the baselines) fails with; CONFIG and INTERNAL come only from the trainer plugins
(the open-instruct verifier, verl's reward function), which report them instead of raising into the trainer."""


@dataclass(frozen=True)
class Judgment:
    """What every result carries besides its verdict (FlipResult and the baselines' results extend it).

    ``error`` is None on success, else why the verdict is missing; ``error_type`` is its ErrorType (a judged
    method's own failures are JUDGED_FAILURES). ``latency_s`` is 0 for an answer from the cache.
    """

    reasoning: str | None = None
    error: str | None = None
    error_type: ErrorType | None = None
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False

    def __post_init__(self) -> None:
        if self.error_type is not None:  # a value given as its string ("input") becomes its member
            object.__setattr__(self, "error_type", ErrorType(self.error_type))

    def to_dict(self) -> dict:
        """Every field by name, the verdict's own fields first (the columns of ``flip-reward score`` and eval
        details)."""
        values = asdict(self)
        values["error_type"] = None if self.error_type is None else self.error_type.value
        shared = [field.name for field in fields(Judgment)]
        return {
            **{name: value for name, value in values.items() if name not in shared},
            **{name: values[name] for name in shared},
        }
