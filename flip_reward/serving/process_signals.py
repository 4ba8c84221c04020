"""The stop signals (SIGINT, SIGTERM, SIGHUP) of a supervising process: turned into SystemExit, held across a step that
must not be split, or ignored while stopping."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def exit_on_signals(signals: Sequence[int] = (signal.SIGTERM, signal.SIGHUP)) -> None:
    """Turn ``signals`` into SystemExit(128 + signal) so that ``finally`` blocks and context managers run."""

    def handler(number: int, frame: object) -> None:
        raise SystemExit(128 + number)

    for number in signals:
        signal.signal(number, handler)


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def signals_held(numbers: Sequence[int] = STOP_SIGNALS) -> Iterator[None]:
    """Hold ``numbers`` while the block runs (a Popen and the record of its PID, which must not be split): each one
    that arrives is raised again once the block ends. Only the main thread has signal handlers; elsewhere a no-op."""
    if not in_main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {number: signal.signal(number, lambda number, frame: arrived.append(number)) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in dict.fromkeys(arrived):
            signal.raise_signal(number)


@contextmanager
def signals_ignored(numbers: Sequence[int] = STOP_SIGNALS) -> Iterator[None]:
    """Ignore ``numbers`` while the block runs (stopping is not interrupted by a second Ctrl-C)."""
    if not in_main_thread():
        yield
        return
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
