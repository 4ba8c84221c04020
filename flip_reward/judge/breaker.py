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
    down_since: float | None = None

    def check(self) -> None:
        """Raise JudgeUnavailableError while open. Once the cool-down has passed, one request goes through as a
        probe (half-open) and the others are refused until it succeeds, or until another cool-down has passed
        without an answer to it."""
        if self.opened_at is None:
            return
        refusal = self.refusal()
        if refusal is not None:
            raise JudgeUnavailableError(refusal)
        self.opened_at = time.monotonic()  # the probe's window: the next cool-down
        self.probing = True

    def refusal(self) -> str | None:
        """Why requests are refused now (the breaker is open and cooling down), or None; changes nothing, so a
        caller may ask before sending anything (the reward service answers 503 with it)."""
        if self.opened_at is None:
            return None
        remaining = self.opened_at + self.cooldown - time.monotonic()
        if remaining <= 0:
            return None
        return (
            f"judge {self.target} is unreachable: {self.consecutive_failures} consecutive connection failures, "
            f"the breaker opens after {self.threshold} (last: {self.last_error}); not sending requests for "
            f"another {remaining:.0f}s"
        )

    def record_success(self) -> None:
        """Close the breaker; the end of an outage is logged once, as its start was."""
        if self.down_since is not None:
            logger.warning("judge %s answers again after %.0fs down", self.target, time.monotonic() - self.down_since)
            self.down_since = None
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
            self.opened_at = self.down_since = time.monotonic()
            self.times_opened += 1
            logger.error(
                "judge %s unreachable after %d consecutive failures (last: %s); failing fast for %.0fs",
                self.target,
                self.consecutive_failures,
                self.last_error,
                self.cooldown,
            )
