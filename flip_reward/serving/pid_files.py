"""The PID files of the judge servers and routers (``flip_reward.serving.processes``): where they may live, what they
hold, and the checks made before a process they name is signalled.

A PID file lives in a directory of this user's that nobody else can write (``flip_reward.ownership``), is never a
symbolic link or another user's file, and holds one line per process group a supervisor started: its PID (= its
process group) and its start time (field 22 of ``/proc/PID/stat``, clock ticks after boot; 0 for one that had
exited before it was recorded). A group is signalled
only while its leader is that very process (same PID, same start time); once the leader has exited, only while
every process left in the group is this user's. So a planted file, a PID of 1 and a PID reused by another process
are refused, never signalled. Every function says what it does through ``log`` (one message, no newline).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flip_reward.ownership import (
    UntrustedPathError,
    check_trusted_file,
    make_private_directory,
    open_trusted_directory,
)

STOP_GRACE_S = 10.0  # TERM, then KILL to a group that outlived it by this long
KILL_WAIT_S = 5.0  # after KILL, how long to wait for the group to be gone (its leader reaped by ``alive``)
POLL_S = 0.2
FILE_MODE = 0o600
PID_MAX = 2**22  # Linux's PID_MAX_LIMIT: no process has a larger PID (and os.killpg overflows past a C int)


class PidFileError(RuntimeError):
    """A PID file that cannot be trusted or read: nothing it names is signalled."""


class PidFileFormatError(PidFileError):
    """A PID file of this user's whose lines are not ``PID START_TIME`` (e.g. written by an older version)."""


@dataclass(frozen=True)
class Entry:
    """One process group a supervisor started: its leader's PID and start time."""

    pid: int
    start: int


Log = Callable[[str], None]


def start_time(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks after boot), or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(text.rpartition(")")[2].split()[19])  # fields after "(comm)" begin with field 3


def _open_file(path: Path, flags: int, kind: str = "PID file") -> int:
    """A descriptor of ``path`` opened with ``flags`` (O_NOFOLLOW added) once its directory and the file itself are
    trusted; PidFileError naming the ``kind`` of file otherwise, FileNotFoundError when it is absent and not created."""
    try:
        directory = open_trusted_directory(path.parent)
    except UntrustedPathError as error:
        raise PidFileError(f"refusing {kind} {path}: {error}") from None
    try:
        check_trusted_file(directory, path.name, path)
        return os.open(path.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE, dir_fd=directory)
    except UntrustedPathError as error:
        raise PidFileError(f"refusing {kind} {path}: {error}") from None
    finally:
        os.close(directory)


def read_entries(pid_file: Path) -> list[Entry]:
    """The process groups ``pid_file`` records ([] when it is absent); PidFileError for an untrusted file or a line
    that is not ``PID START_TIME`` with a PID from 2 to ``PID_MAX``."""
    try:
        descriptor = _open_file(pid_file, os.O_RDONLY)
    except FileNotFoundError:
        return []
    with os.fdopen(descriptor, encoding="utf-8", errors="replace") as file:
        lines = file.read().splitlines()
    entries = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if len(fields) != 2 or not all(field.isdigit() for field in fields) or not 1 < int(fields[0]) <= PID_MAX:
            raise PidFileFormatError(
                f"refusing PID file {pid_file}: line {number} is {line[:80]!r}, not 'PID START_TIME' with a PID "
                f"from 2 to {PID_MAX}"
            )
        entries.append(Entry(int(fields[0]), int(fields[1])))
    return entries


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_owners(pgid: int) -> set[int]:
    """The uids of the processes in process group ``pgid``."""
    owners = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(fields[2]) == pgid:  # field 5, the process group
                owners.add(entry.stat().st_uid)
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
    return owners


def ours(entry: Entry, pid_file: Path, log: Log) -> bool:
    """Whether process group ``entry`` may be signalled: its leader is the recorded process, or has exited and
    every process left in the group is this user's. Says why not when it may not."""
    started = start_time(entry.pid)
    if started is not None and started != entry.start:
        log(
            f"PID {entry.pid} is not the process {pid_file} recorded (it started at {started}, that one at "
            f"{entry.start} clock ticks after boot): not signalled"
        )
        return False
    if started is None and group_owners(entry.pid) - {os.geteuid()}:
        log(f"process group {entry.pid} now holds processes of another user: not signalled")
        return False
    return True


def stop_group(pgid: int, grace: float, log: Log, alive: Callable[[], bool] | None = None) -> None:
    """TERM to process group ``pgid``, KILL once it outlived TERM by ``grace`` seconds, then wait up to
    ``KILL_WAIT_S`` for it to be gone. ``alive`` says whether the group still runs (default ``group_alive``; the
    parent of the leader passes one that also reaps it, so that no zombie keeps its port or GPU)."""
    alive = alive or (lambda: group_alive(pgid))
    log(f"stopping process group {pgid}")
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while alive():
        if time.monotonic() > deadline:
            log(f"process group {pgid} outlived TERM by {grace:g}s: sending KILL")
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + KILL_WAIT_S
            while alive() and time.monotonic() < deadline:
                time.sleep(POLL_S / 4)
            return
        time.sleep(POLL_S)


def live_groups(pid_file: Path, log: Log) -> list[Entry]:
    """The recorded groups that still run and may be signalled (``ours``)."""
    return [entry for entry in read_entries(pid_file) if group_alive(entry.pid) and ours(entry, pid_file, log)]


def stop(pid_file: Path, log: Log, grace: float = STOP_GRACE_S) -> None:
    """Stop every group ``pid_file`` records that is still ours, the last started first (the router stops sending
    to replicas going away), then remove the file; a file naming a group that was refused (``ours``) is kept, so that
    its record is not lost. Nothing to do when it is absent."""
    if not os.path.lexists(pid_file):
        log(f"no PID file {pid_file}: nothing to stop")
        return
    running = [entry for entry in read_entries(pid_file) if group_alive(entry.pid)]
    kept = False
    for entry in reversed(running):
        if ours(entry, pid_file, log):
            stop_group(entry.pid, grace, log)
        else:
            kept = True
    if kept:
        log(f"kept {pid_file}: it names a process group that was not signalled")
    else:
        pid_file.unlink()


def prepare(pid_file: Path, log_files: list[Path], log: Log) -> None:
    """Make ``pid_file`` an empty PID file of this user's (its directory created private when missing), after
    checking the directories and any existing files of it and ``log_files``; PidFileError when one cannot be trusted
    or a server it records still runs (an unreadable file of this user's names nothing to keep: it is emptied)."""
    for path in (pid_file, *log_files):
        make_private_directory(path.parent)
    try:
        running = live_groups(pid_file, log)
    except PidFileFormatError as error:
        log(f"{error}; starting over with an empty one")
        running = []
    if running:
        raise PidFileError(
            f"a server from {pid_file} is running (PID {running[0].pid}); stop it with --stop {pid_file}"
        )
    check_log_files(log_files)
    descriptor = _open_file(pid_file, os.O_WRONLY | os.O_CREAT)
    os.ftruncate(descriptor, 0)
    os.close(descriptor)


def check_log_files(log_files: list[Path]) -> None:
    """PidFileError unless every existing file of ``log_files`` can be trusted (see ``open_log``)."""
    for log_file in log_files:
        try:
            os.close(_open_file(log_file, os.O_RDONLY, "log file"))
        except FileNotFoundError:
            pass


def open_log(log_file: Path) -> int:
    """A descriptor of ``log_file`` opened for writing from its start (created 0600), in a directory of this user's
    that nobody else can write (created private when missing); PidFileError for a symbolic link or another user's."""
    make_private_directory(log_file.parent)
    return _open_file(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "log file")


def record(pid_file: Path, pid: int) -> None:
    """Append process group ``pid`` (just started by a supervisor) with its start time: 0 when it has exited already
    (its group, if any is left, is then signalled only while every process in it is this user's)."""
    if pid <= 1:
        raise PidFileError(f"cannot record PID {pid}: not a process a supervisor started")
    descriptor = _open_file(pid_file, os.O_WRONLY | os.O_APPEND)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(f"{pid} {start_time(pid) or 0}\n")
