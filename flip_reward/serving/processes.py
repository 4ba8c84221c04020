"""Process supervision: the services a run needs (judge servers, vllm-router, the reward service) and its trainer as
process groups, started in order, waited for until healthy, and stopped in order on every way out.

Every process runs in its own session and process group and logs to its own file; its PID (= its process group)
goes to the PID file with its start time (``flip_reward.serving.pid_files``: private directory, no symbolic link,
owner and identity checks) before anything else happens, so that an interrupted start never leaves a process
nobody can stop. A ``Supervisor`` is a context manager that owns the SIGINT, SIGTERM and SIGHUP handlers while its
block runs (each says "received SIGNAL: stopping" in one line, then ends the block as KeyboardInterrupt or
SystemExit(128 + N); the previous handlers are restored when it ends). When its block ends (normally, by an
exception or by one of those signals) it stops the trainer first (SIGINT, TERM after a grace period, KILL after
another; then what the trainer left running outside its process group, which this process adopts as a child
subreaper), then the services, the last started first (TERM, KILL after a grace period). A service that exits
while the trainer runs stops the trainer (exit status 3: the judge is down). ``detach()`` leaves the started
services running instead (``flip-reward judge serve``; ``flip-reward judge stop`` stops them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from flip_reward.exit_codes import EXIT_JUDGE_DOWN
from flip_reward.net import DIRECT, connect_error
from flip_reward.serving import pid_files
from flip_reward.serving.orphans import reap, set_child_subreaper, still_ours, suppress_gone
from flip_reward.serving.process_signals import (
    STOP_SIGNALS,
    in_main_thread,
    signals_held,
    signals_ignored,
)

TRAINER_INT_GRACE_S = 30.0  # SIGINT (a clean shutdown), then TERM to a trainer that outlived it by this long
TRAINER_TERM_GRACE_S = 15.0  # TERM, then KILL
SERVICE_STOP_GRACE_S = pid_files.STOP_GRACE_S  # TERM to a service, then KILL
LOG_TAIL_LINES = 30  # lines of a failing service's log shown with the error
HEALTH_TIMEOUT_S = 2.0  # one GET of a health URL
POLL_S = 0.2
PORT_CHECK_TIMEOUT_S = 1.0  # one TCP connect to a service's port before it starts
Log = Callable[[str], None]


@dataclass(frozen=True)
class Service:
    """A long-running process a run needs before its trainer: ``name`` names it in messages ("judge", "replica 1",
    "router"); ready once GET ``health_url`` answers 2xx; its output goes to ``log_file``; ``env`` is added to
    ``os.environ`` for it. ``after_healthy``: started only once every service before it answers (the router, which
    wants its replicas up)."""

    name: str
    command: tuple[str, ...]
    health_url: str
    log_file: Path
    env: Mapping[str, str] = field(default_factory=dict)
    after_healthy: bool = False


class StartError(RuntimeError):
    """A service died or was not healthy in time; the message names it and ends with the last lines of its log."""


def healthy(url: str, timeout: float = HEALTH_TIMEOUT_S) -> bool:
    """Whether GET ``url`` answers 2xx, asked directly: the health URL is a process this machine started, whatever
    address it binds, so no proxy stands between (whether the trainer reaches it through its proxy is the judge
    probe's question, ``flip_reward.serving.probe``)."""
    try:
        with DIRECT.open(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def log_tail(log_file: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``log_file`` ('' when it cannot be read)."""
    try:
        with open(log_file, "rb") as file:
            file.seek(max(0, os.fstat(file.fileno()).st_size - 64 * 1024))
            text = file.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def exit_status(returncode: int) -> int:
    """A shell's exit status for a Popen return code (killed by signal N: 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


class Supervisor:
    """Starts services and a trainer as process groups and stops every one it started when its block ends.

    ``pid_file`` (None: none kept) records each service's process group and the trainer's; ``start_timeout`` bounds
    the wait for health (seconds, per batch of services started together); ``log`` receives every message (one line
    each). The grace periods: ``stop_grace`` (a service: TERM, then KILL), ``trainer_int_grace`` (the trainer:
    SIGINT, then TERM) and ``trainer_term_grace`` (then KILL).
    """

    def __init__(
        self,
        pid_file: Path | None,
        start_timeout: float,
        log: Log,
        *,
        stop_grace: float = SERVICE_STOP_GRACE_S,
        trainer_int_grace: float = TRAINER_INT_GRACE_S,
        trainer_term_grace: float = TRAINER_TERM_GRACE_S,
    ):
        self.pid_file = pid_file
        self.start_timeout = start_timeout
        self.log = log
        self.stop_grace = stop_grace
        self.trainer_int_grace = trainer_int_grace
        self.trainer_term_grace = trainer_term_grace
        self.services: list[tuple[Service, subprocess.Popen]] = []
        self.trainer: subprocess.Popen | None = None
        self.service_down: str | None = None  # the line that said a service exited while the trainer ran
        self.detached = False
        self._prepared = False
        self._start_times: dict[int, int] = {}
        self._previous_handlers: dict[int, object] = {}
        self._lineage: set[int] = set()  # every process seen as the trainer's descendant or adopted from it
        self._children_before: set[int] = set()  # this process's children when the trainer started

    def __enter__(self) -> Supervisor:
        if in_main_thread():
            self._previous_handlers = {number: signal.getsignal(number) for number in STOP_SIGNALS}
            for number in STOP_SIGNALS:
                signal.signal(number, self._stopping)
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            for number, handler in self._previous_handlers.items():
                signal.signal(number, handler)

    def _stopping(self, number: int, frame: object) -> None:
        """Ctrl-C, TERM or HUP: said in one line, the others ignored from then on, the block ended."""
        self.log(f"received {signal.Signals(number).name}: stopping")
        for other in STOP_SIGNALS:
            signal.signal(other, signal.SIG_IGN)
        if number == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + number)

    # --- services ----------------------------------------------------------------------------------------------
    def start(self, services: Sequence[Service]) -> None:
        """Start ``services`` in order and wait until every health URL answers (a service with ``after_healthy``
        waits for those before it); StartError when a service's port is in use already (its health URL would answer
        for another server), when one exits first or the timeout passes, PidFileError when the PID file or a log
        file is refused. Whatever ends a start early (those, Ctrl-C, SIGTERM) stops every service started so far
        before it goes on."""
        self.prepare(services)
        check_ports_free(services)
        try:
            waiting: list[tuple[Service, subprocess.Popen]] = []
            for service in services:
                if service.after_healthy and waiting:
                    self._wait_healthy(waiting)
                    waiting = []
                waiting.append(self._launch(service))
            self._wait_healthy(waiting)
        except BaseException:
            self.stop_services()
            raise

    def prepare(self, services: Sequence[Service]) -> None:
        """Check the PID file and the log files of ``services`` (the first time: make the PID file an empty one of
        this user's); PidFileError when one cannot be trusted or the PID file names a process that still runs."""
        log_files = [service.log_file for service in services]
        if self.pid_file is None:
            return
        if self._prepared:
            pid_files.check_log_files(log_files)
        else:
            pid_files.prepare(self.pid_file, log_files, self.log)
            self._prepared = True

    def _launch(self, service: Service) -> tuple[Service, subprocess.Popen]:
        """Start ``service`` in its own session, its PID recorded before any signal can intervene."""
        self.log(f"starting: {' '.join(service.command)} (log: {service.log_file})")
        log_fd = pid_files.open_log(service.log_file)
        try:
            with signals_held():
                try:
                    process = subprocess.Popen(
                        service.command,
                        stdin=subprocess.DEVNULL,
                        stdout=log_fd,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        env={**os.environ, **service.env},
                    )
                except OSError as error:
                    raise StartError(f"the {service.name} could not be started: {error}") from None
                self.services.append((service, process))
                self._record(process.pid)
        finally:
            os.close(log_fd)
        return service, process

    def _record(self, pid: int) -> None:
        """Keep process group ``pid``'s start time (for ``_may_signal``) and write it to the PID file."""
        self._start_times[pid] = pid_files.start_time(pid) or 0
        if self.pid_file is not None:
            pid_files.record(self.pid_file, pid)

    def _wait_healthy(self, pending: list[tuple[Service, subprocess.Popen]]) -> None:
        """Wait until each of ``pending`` answers its health URL, asked only while its own process still runs."""
        deadline = time.monotonic() + self.start_timeout
        while pending:
            left = []
            for service, process in pending:
                if process.poll() is not None:
                    self._fail(f"the {service.name} (PID {process.pid}) exited before it was healthy", service)
                if not healthy(service.health_url):
                    left.append((service, process))
            pending = left
            if not pending:
                return
            if time.monotonic() > deadline:
                self._fail(f"the {pending[0][0].name} was not healthy after {self.start_timeout:g}s", pending[0][0])
            time.sleep(min(1.0, self.start_timeout / 10 or POLL_S))

    def _fail(self, message: str, service: Service) -> None:
        tail = log_tail(service.log_file)
        raise StartError(f"{message}\nlast lines of {service.log_file}:\n{tail}" if tail else message)

    def detach(self) -> None:
        """Leave the services started so far running when the block ends (they stay in the PID file)."""
        self.detached = True

    def stop_services(self) -> None:
        """Stop every service started, the last first (TERM, KILL after ``stop_grace``), then remove the PID file.
        A service's group whose leader has exited is signalled only while ``pid_files.ours`` allows it."""
        with signals_ignored():
            for service, process in reversed(self.services):
                if self._may_signal(service.name, process):
                    pid_files.stop_group(process.pid, self.stop_grace, self.log, self._alive(process))
            if self.pid_file is not None and self._prepared:
                self.pid_file.unlink(missing_ok=True)
            self.services = []
            self._prepared = False

    def _may_signal(self, name: str, process: subprocess.Popen) -> bool:
        """Whether the process group of ``process`` (the ``name``) may still be signalled (``pid_files.ours``)."""
        if process.poll() is None:  # a child not yet reaped: its PID cannot be anybody else's
            return True
        if not pid_files.group_alive(process.pid):
            return False
        entry = pid_files.Entry(process.pid, self._start_times.get(process.pid, 0))
        return pid_files.ours(entry, self.pid_file or Path(f"the record of the {name}"), self.log)

    @staticmethod
    def _alive(process: subprocess.Popen) -> Callable[[], bool]:
        return lambda: process.poll() is None or pid_files.group_alive(process.pid)

    def stop(self) -> None:
        """Stop the trainer, then the services (unless ``detach()`` was called)."""
        with signals_ignored():
            self.stop_trainer()
            if not self.detached:
                self.stop_services()

    def exited_service(self) -> str | None:
        """``the NAME (PID P) exited with status S`` for the first service that has exited, else None."""
        for service, process in self.services:
            if process.poll() is not None:
                return f"the {service.name} (PID {process.pid}) exited with status {exit_status(process.returncode)}"
        return None

    # --- the trainer -------------------------------------------------------------------------------------------
    def run_trainer(self, command: Sequence[str], env: Mapping[str, str]) -> int:
        """Run the trainer (``env`` added to ``os.environ``) in its own session and process group (so a terminal's
        Ctrl-C reaches only this process, which forwards it), recorded in the PID file, until it exits; its exit
        status (128 + N when signal N ended it). A service that exits meanwhile is said in one line and stops the
        trainer: 3 (``EXIT_JUDGE_DOWN``). Ctrl-C or TERM meanwhile stops it (``stop_trainer``), then goes on as
        KeyboardInterrupt or SystemExit, so that the block ends and stops the services. OSError when it cannot be
        started."""
        if self.pid_file is not None and not self._prepared:
            self.prepare([])
        adopting = set_child_subreaper(True)
        self._lineage, self._children_before = set(), {process.pid for process in psutil.Process().children()}
        with signals_held():
            self.trainer = subprocess.Popen(list(command), env={**os.environ, **env}, start_new_session=True)
            self._record(self.trainer.pid)
        try:
            status = self._wait_trainer(self.trainer)
        finally:
            try:
                self.stop_trainer()
            finally:
                set_child_subreaper(adopting)
        self.trainer = None
        return status

    def _wait_trainer(self, trainer: subprocess.Popen) -> int:
        """The trainer's exit status, or ``EXIT_JUDGE_DOWN`` once a service exited (said in one line). Meanwhile
        the trainer's lineage is noted and the orphans of it this process adopted are reaped as they exit."""
        while True:
            self._note_lineage(trainer.pid)
            try:
                return exit_status(trainer.wait(timeout=POLL_S * 5))
            except subprocess.TimeoutExpired:
                pass
            exited = self.exited_service()
            if exited:
                self.service_down = f"error: {exited}: stopping the trainer"
                self.log(self.service_down)
                return EXIT_JUDGE_DOWN

    def stop_trainer(self) -> None:
        """SIGINT to the trainer's process group, TERM after ``trainer_int_grace``, KILL after
        ``trainer_term_grace``; nothing when the group is gone, or when its leader was reaped and ``pid_files.ours``
        refuses it. A group that outlived its leader (processes the trainer started and left behind) goes the same
        way, and so do the trainer's descendants that left its group (``stop_leftovers``), so that none is
        orphaned."""
        trainer = self.trainer
        if trainer is None:
            return
        with signals_ignored():
            self._note_lineage(trainer.pid)
            leftovers = [process for process in self._adopted() if process.pid != trainer.pid]

            def alive() -> bool:
                reap(leftovers)  # the group's processes this process adopted once the trainer exited
                return trainer.poll() is None or pid_files.group_alive(trainer.pid)

            for number, grace in (
                (signal.SIGINT, self.trainer_int_grace),
                (signal.SIGTERM, self.trainer_term_grace),
                (signal.SIGKILL, 0.0),
            ):
                if not alive() or not self._may_signal("trainer", trainer):
                    break
                whom = "the trainer" if trainer.poll() is None else "what the trainer left running"
                self.log(f"sending {signal.Signals(number).name} to {whom} (process group {trainer.pid})")
                try:
                    os.killpg(trainer.pid, number)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + grace
                while alive() and time.monotonic() < deadline:
                    time.sleep(POLL_S / 4)
            trainer.wait()
            self.stop_leftovers(leftovers)

    def _note_lineage(self, trainer_pid: int) -> None:
        """Note the trainer's descendants, and the children this process adopted from it as the subreaper (every
        child that is neither the trainer, a service, nor one this process had before the trainer started), and reap
        those that exited. (A process another thread of this program started while the trainer runs would count
        too: the launchers start none.)"""
        with suppress_gone():
            self._lineage |= {child.pid for child in psutil.Process(trainer_pid).children(recursive=True)}
        known = self._children_before | {trainer_pid} | {process.pid for _, process in self.services}
        self._lineage |= {process.pid for process in psutil.Process().children() if process.pid not in known}
        reap([process for process in psutil.Process().children() if process.pid in self._lineage])

    def _adopted(self) -> list[psutil.Process]:
        """The processes of the trainer's lineage that are still this process's descendants (the services never)."""
        services = {process.pid for _, process in self.services}
        return [
            process
            for process in psutil.Process().children(recursive=True)
            if process.pid in self._lineage and process.pid not in services
        ]

    def stop_leftovers(self, processes: list[psutil.Process]) -> None:
        """TERM to each of ``processes`` (the trainer's descendants, taken before its group was signalled) that
        still runs and is this user's, KILL after ``trainer_term_grace``, each reaped (this process adopted them)."""
        left = [process for process in processes if still_ours(process)]
        if not left:
            reap(processes)
            return
        self.log(f"sending SIGTERM to {len(left)} process(es) the trainer left outside its process group")
        for process in left:
            with suppress_gone():
                process.terminate()
        _, left = psutil.wait_procs(left, timeout=self.trainer_term_grace)
        if left:
            self.log(f"sending SIGKILL to {len(left)} process(es) the trainer left outside its process group")
            for process in left:
                with suppress_gone():
                    process.kill()
            psutil.wait_procs(left, timeout=pid_files.KILL_WAIT_S)
        reap(processes)

    def wait(self) -> int:
        """Keep the services up until Ctrl-C (130) or TERM/HUP (128 + N), or until one exits (1, said in a line)."""
        try:
            while True:
                exited = self.exited_service()
                if exited:
                    self.log(f"error: {exited}")
                    return 1
                time.sleep(POLL_S * 5)
        except KeyboardInterrupt:
            return 130
        except SystemExit as error:
            return error.code if isinstance(error.code, int) else 1


def check_ports_free(services: Sequence[Service]) -> None:
    """StartError when something already accepts connections on the host and port of a service's health URL: it
    would answer for a server that is not the one started."""
    for service in services:
        parts = urlsplit(service.health_url)
        host, port = parts.hostname or "", parts.port or 80
        if connect_error(host, port, PORT_CHECK_TIMEOUT_S) is None:
            raise StartError(f"port {port} on {host} is already in use")
