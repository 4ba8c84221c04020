"""What one vLLM actor's FLIP verifier tells the trainer's log: failures counted per window, and empty answers.

Upstream logs only the reward, so a judge that fails a share of the requests, or a policy whose answers are empty
once the reasoning is removed, shows as a lower reward and nothing else. Each actor's verifier therefore logs the
first failure of each kind at once, then, at most once per ``window_s`` and only when something failed, one line
with the window's counts and the judge's URL; and a loud warning when most completions of a window were empty once
reasoning was removed (``FLIP_THINK_PREFILLED`` with a template that does not open ``<think>``, or a ``</think>``
that decoding strips). Ray forwards actor logs to the driver, so these lines reach the trainer's log.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

from flip_reward.core.results import ErrorType
from flip_reward.core.reward import EMPTY_ANSWER, FlipResult

logger = logging.getLogger("flip_reward.open_instruct")

WINDOW_S = 60.0
EMPTY_SHARE = 0.5  # a window whose answers are mostly empty once reasoning is removed
MIN_EMPTY_SAMPLES = 8


class ActorLog:
    """Counts of one actor's results and the lines they call for; ``record`` is cheap (no I/O but the log)."""

    def __init__(self, judge: str, window_s: float = WINDOW_S):
        self.judge = judge
        self.window_s = window_s
        self.seen_kinds: set[str] = set()
        self.window: Counter = Counter()
        self.window_start: float | None = None

    def record(self, result: FlipResult, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self.window_start is None:
            self.window_start = now
        self.window["samples"] += 1
        if result.error_type is not None:
            self.window[result.error_type] += 1
            if result.error_type not in self.seen_kinds:
                self.seen_kinds.add(result.error_type)
                logger.warning("general-flip: first %s failure (scored 0.0): %s", result.error_type, result.error)
        if result.error == EMPTY_ANSWER:
            self.window["empty"] += 1
        if now - self.window_start >= self.window_s:
            self.flush(now)

    def flush(self, now: float) -> None:
        """Log the window's lines (if anything failed) and start a new window."""
        counts, seconds = self.window, now - (self.window_start or now)
        other = sum(counts[kind] for kind in ErrorType if kind not in (ErrorType.JUDGE, ErrorType.PARSE))
        if counts[ErrorType.JUDGE] or counts[ErrorType.PARSE] or other:
            logger.warning(
                "general-flip: last %.0f s: %d rewards, %d judge errors, %d parse failures, %d other failures "
                "(each scored 0.0; judge %s)",
                seconds,
                counts["samples"],
                counts[ErrorType.JUDGE],
                counts[ErrorType.PARSE],
                other,
                self.judge,
            )
        if counts["samples"] >= MIN_EMPTY_SAMPLES and counts["empty"] >= EMPTY_SHARE * counts["samples"]:
            logger.error(
                "general-flip: %d of the last %d responses were empty once reasoning is removed (reward 0.0): "
                "check FLIP_THINK_PREFILLED against the chat template, and that the tokenizer does not make </think> "
                "a special token that decoding strips",
                counts["empty"],
                counts["samples"],
            )
        self.window, self.window_start = Counter(), now
