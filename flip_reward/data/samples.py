"""Per-sample traces: one JSON line per judged completion, and the writer that appends them without blocking.

A trace line holds the ``step``, the ``prompt``, the ``response`` the judge saw (after thinking was stripped and any
restatement of the instruction masked), ``response_chars`` (the policy response's length) and every field of the
result under the names ``flip-reward score`` writes (``inferred_instruction``, ``reward``, ``f1``, ``error_type``,
``restatement_masked``, ``latency_s``, ...). ``flip-reward inspect`` reads them.

``SampleWriter`` is used from the reward path of a training run (TRL's event loop, a vLLM actor's event loop in
open-instruct): ``put`` only enqueues, a daemon thread does the file I/O, a full queue drops the line (counted), and
no I/O error ever reaches the reward: a file that cannot be written (a full disk) gets one warning, keeps its whole
lines, and the writer stops (later lines are dropped, counted; ``failure`` is the error). The file is bounded: past
``max_bytes`` it is rotated to ``PATH.1`` (one backup kept), so a long run keeps at most twice that on disk.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from pathlib import Path

from flip_reward.data.writing import JsonlFile
from flip_reward.text import json_line

logger = logging.getLogger("flip_reward")

SAMPLES_FILE = "samples.jsonl"
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
QUEUE_SIZE = 10_000


def result_fields(response: object, result: object) -> dict:
    """The fields ``flip-reward score`` writes for one judged response: every result field (``judged_response`` is
    what the judge saw) and ``response_chars``, the policy response's length in characters."""
    return {**result.to_dict(), "response_chars": len(response) if isinstance(response, str) else 0}


def trace_line(step: int | None, prompt: object, response: object, result: object) -> dict:
    """The trace of one judged completion: ``response`` is the policy's text, ``result`` a FlipResult (or a baseline
    result); the judge's view of the response replaces it under ``response`` when the result has one."""
    fields = result_fields(response, result)
    shown = fields.pop("judged_response", None)
    return {
        "step": step,
        "prompt": prompt,
        "response": shown if shown is not None else response,
        "response_chars": fields.pop("response_chars"),
        **fields,
    }


class SampleWriter:
    """Appends trace lines to ``path`` from a background thread; safe to pickle (the thread is made per process)."""

    def __init__(self, path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES):
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes!r}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.dropped = 0
        self._queue: queue.Queue[dict] = queue.Queue(QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._start_lock = threading.Lock()
        self.failure: Exception | None = None  # what stopped the writer (an OutputError for a full disk)

    def __getstate__(self) -> dict:
        return {"path": self.path, "max_bytes": self.max_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def put(self, line: dict) -> None:
        """Queue ``line`` for writing; never blocks and never raises (a full queue, or a writer stopped by a write
        failure, drops it and counts it)."""
        if self.failure is not None:
            self.dropped += 1
            return
        self._ensure_thread()
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self.dropped += 1

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued line is written (or ``timeout`` passes)."""
        if self._thread is None:
            return
        done = threading.Event()
        threading.Thread(target=lambda: (self._queue.join(), done.set()), daemon=True).start()
        done.wait(timeout)

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or self._pid != os.getpid():  # a forked child gets a thread of its own
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._drain, name="flip-sample-writer", daemon=True)
                self._thread.start()

    def _drain(self) -> None:
        while True:
            line = self._queue.get()
            try:
                if self.failure is not None:
                    self.dropped += 1
                else:
                    self._write(json_line(line))
            except (OSError, TypeError, ValueError) as error:  # OutputError is an OSError
                self.failure = error
                self.dropped += 1
                logger.warning("sample log stopped (the run goes on): %s", error)
            finally:
                self._queue.task_done()

    def _write(self, line: str) -> None:
        if self.path.exists() and self.path.stat().st_size + len(line.encode("utf-8")) + 1 > self.max_bytes:
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        with JsonlFile(self.path, append=True) as out:
            out.write_line(line)
