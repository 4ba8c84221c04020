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

``PluginTrace`` is the ``FLIP_SAMPLE_LOG`` trace of a trainer plugin (the open-instruct verifier, verl's reward
function): one file per process, every N-th judged sample, its step unknown (null).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from flip_reward.data.writing import JsonlFile
from flip_reward.text import json_line

if TYPE_CHECKING:
    from flip_reward.core.settings import FlipSettings

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


def process_id() -> str:
    """This process's Ray actor id (a vLLM engine, a reward worker), or ``pid<N>`` outside a Ray actor."""
    try:
        import ray

        if ray.is_initialized():
            actor = ray.get_runtime_context().get_actor_id()
            if actor:
                return str(actor)
    except Exception:  # noqa: BLE001  (no Ray, or no runtime context: fall back to the process id)
        pass
    return f"pid{os.getpid()}"


class PluginTrace:
    """A trainer plugin's trace in this process: every ``every``-th judged sample (counted from the first, which is
    traced), as a trace line with a null ``step`` and its ``sample`` number, to ``path`` with the process id before
    its suffix (``samples.jsonl`` -> ``samples.<actor>.jsonl``) so that processes never share a file."""

    def __init__(self, path: str | os.PathLike, every: int = 1, max_mb: int = 256):
        path = Path(path)
        self.writer = SampleWriter(path.with_name(f"{path.stem}.{process_id()}{path.suffix or '.jsonl'}"), max_mb << 20)
        self.every = every
        self.judged = 0

    def record(self, prompt: object, response: object, result: object) -> None:
        """Count one judged sample and queue its trace when it is an ``every``-th one."""
        self.judged += 1
        if (self.judged - 1) % self.every == 0:
            self.writer.put({**trace_line(None, prompt, response, result), "sample": self.judged})

    def flush(self) -> None:
        self.writer.flush()


def plugin_trace(settings: FlipSettings) -> PluginTrace | None:
    """The trace ``FLIP_SAMPLE_LOG`` asks for (``FLIP_SAMPLE_EVERY``, ``FLIP_SAMPLE_LOG_MAX_MB``), None when unset."""
    if not settings.sample_log:
        return None
    return PluginTrace(settings.sample_log, settings.sample_every, settings.sample_log_max_mb)
