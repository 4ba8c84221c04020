"""The launcher's judge watchdog: a judge unreachable for longer than ``FLIP_MAX_OUTAGE_S`` stops the run.

Inside open-instruct a dead judge does not stop anything: every FLIP reward is 0.0, upstream filters the all-zero
groups and samples again, and the training step never advances, with no error. The verifiers in the vLLM actors
cannot end the run themselves (an exception there only ends an actor's worker thread), so the launcher, which is
the driver process, probes the judge from the head node every ``interval`` seconds (``GET /v1/models``), logs when
it goes down and comes back, and once it has been down for ``max_outage_s`` logs one error line and interrupts the
driver's main thread (``KeyboardInterrupt`` in grpo_fast, which then shuts Ray down); a driver that is still alive
``grace`` seconds later exits with status 3.
"""

from __future__ import annotations

import _thread
import os
import sys
import threading
import time

from flip_reward.exit_codes import EXIT_JUDGE_DOWN
from flip_reward.judge.urls import redact_url
from flip_reward.serving.probe import JudgeProbeError, served_models, vllm_endpoint

GRACE_S = 120.0


class JudgeWatchdog:
    """Probes ``base_url`` from a daemon thread and stops the process after ``max_outage_s`` of failed probes."""

    def __init__(self, base_url: str, max_outage_s: float, interval: float | None = None, grace: float = GRACE_S):
        self.base_url = base_url
        self.shown_url = redact_url(base_url)
        self.max_outage_s = max_outage_s
        self.interval = interval if interval is not None else min(30.0, max(max_outage_s / 10, 0.2))
        self.grace = grace
        self.down_since: float | None = None
        self.last_error = ""
        self.tripped = False
        self._stop = threading.Event()

    def start(self) -> JudgeWatchdog:
        threading.Thread(target=self._watch, name="flip-judge-watchdog", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def observe(self, now: float) -> bool:
        """Probe once and log a change of state; True when the outage has lasted ``max_outage_s``."""
        try:
            served_models(vllm_endpoint(self.base_url), timeout=min(10.0, self.interval * 5))
        except JudgeProbeError as error:
            self.last_error = str(error)
            if self.down_since is None:
                self.down_since = now
                say(
                    f"judge {self.shown_url} is unreachable ({error}); every FLIP reward is 0.0 until it answers; "
                    f"the run stops after {self.max_outage_s:.0f} s of this (FLIP_MAX_OUTAGE_S)"
                )
            return now - self.down_since >= self.max_outage_s
        if self.down_since is not None:
            say(f"judge {self.shown_url} answers again after {now - self.down_since:.0f} s")
            self.down_since = None
        return False

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            if self.observe(time.monotonic()):
                self._stop_the_run()
                return

    def _stop_the_run(self) -> None:
        self.tripped = True
        say(
            f"error: the FLIP judge at {self.shown_url} has been unreachable for {self.max_outage_s:.0f} s "
            f"(FLIP_MAX_OUTAGE_S; last: {self.last_error}); stopping the run, since with every reward 0.0 upstream "
            "resamples without advancing a step. Restart the judge, then resume from the last checkpoint"
        )
        _thread.interrupt_main()
        if not self._stop.wait(self.grace):
            os._exit(EXIT_JUDGE_DOWN)


def say(message: str) -> None:
    """One line on the driver's stderr (the trainer's log), whatever logging grpo_fast has set up."""
    print(f"flip-reward watchdog: {message}", file=sys.stderr, flush=True)
