"""The orphans a supervising process adopts as a child subreaper (Linux): becoming one, reaping what exited, and
telling a process that still runs as this user's from one gone."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import psutil

PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37  # prctl(2), Linux


def set_child_subreaper(on: bool) -> bool:
    """Make this process the reaper of its orphaned descendants (``on``) or not (Linux's prctl; elsewhere a no-op);
    whether it was one before."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    before = ctypes.c_int(0)
    libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(before), 0, 0, 0)
    libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)
    return bool(before.value)


def reap(processes: Sequence[psutil.Process]) -> None:
    """Collect the exit status of each of ``processes`` that is a child of this process and has exited."""
    for process in processes:
        try:
            os.waitpid(process.pid, os.WNOHANG)
        except ChildProcessError:
            pass


def still_ours(process: psutil.Process) -> bool:
    """Whether ``process`` still runs (not a zombie) and is this user's."""
    try:
        return (
            process.is_running() and process.status() != psutil.STATUS_ZOMBIE and (process.uids().real == os.geteuid())
        )
    except psutil.Error:
        return False


@contextmanager
def suppress_gone() -> Iterator[None]:
    """Ignore a process that exited (or went out of reach) meanwhile."""
    try:
        yield
    except psutil.Error:
        pass
