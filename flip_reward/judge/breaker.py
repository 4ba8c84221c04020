"""A circuit breaker for the judge: after N consecutive connection failures, fail fast with one clear message.

Without it a dead judge costs every in-flight request its full timeout and retries, and a training run stalls for
minutes per step. The state is plain numbers and timestamps, so it works from any event loop and thread.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

logger = logging.getLogger("flip_reward")


class JudgeUnavailableError(RuntimeError):
    """The judge is considered down: the breaker is open and no request is sent until its cool-down ends."""


def describe(error: BaseException) -> str:
    """``Type: message`` of an error and of its direct cause (which says e.g. "Cannot connect to host ...")."""
    text = f"{type(error).__name__}: {error}"
    if error.__cause__ is not None:
        text += f" ({type(error.__cause__).__name__}: {error.__cause__})"
    return text[:300]


@dataclass
class CircuitBreaker:
    """Opens after ``threshold`` consecutive unreachable-judge failures; lets one probe through per ``cooldown``."""

    target: str
    threshold: int = 5
    cooldown: float = 30.0
    consecutive_failures: int = 0
    opened_at: float | None = None
    last_error: str = ""
    times_opened: int = field(default=0)
    probing: bool = False

    def check(self) -> None:
        """Raise JudgeUnavailableError while open. Once the cool-down has passed, one request goes through as a
        probe (half-open) and the others are refused until it succeeds, or until another cool-down has passed
        without an answer to it."""
        if self.opened_at is None:
            return
        now = time.monotonic()
        remaining = self.opened_at + self.cooldown - now
        if remaining > 0:
            raise JudgeUnavailableError(
                f"judge {self.target} is unreachable: {self.consecutive_failures} consecutive connection failures, "
                f"the breaker opens after {self.threshold} (last: {self.last_error}); not sending requests for "
                f"another {remaining:.0f}s"
            )
        self.opened_at = now  # the probe's window: the next cool-down
        self.probing = True

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self.opened_at = None
        self.probing = False

    def record_unreachable(self, error: BaseException) -> None:
        """Count a failed connection; open the breaker (logging once) at the threshold, or re-open it after a failed
        probe."""
        self.consecutive_failures += 1
        self.last_error = describe(error)
        if self.probing:
            self.probing = False
            self.opened_at = time.monotonic()
        elif self.opened_at is None and self.consecutive_failures >= self.threshold:
            self.opened_at = time.monotonic()
            self.times_opened += 1
            logger.error(
                "judge %s unreachable after %d consecutive failures (last: %s); failing fast for %.0fs",
                self.target,
                self.consecutive_failures,
                self.last_error,
                self.cooldown,
            )
