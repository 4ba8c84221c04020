"""Judge answer cache: an LRU in memory, optionally backed by a JSON-only SQLite file that processes share.

Keys digest everything that determines an answer: the server(s) asked, the model, the messages and the sampling
parameters. The Judge stores only answers the method could use, so a judge that answered badly once is asked again.
Disk entries are JSON text, never pickles (whoever can write the cache directory must not be able to run code in
the trainer); the directory is created private (0700). Whoever can write the directory can still plant answers,
which become rewards: so a directory or database file (its -journal, -wal and -shm included) that is a symbolic
link, another user's, or writable by group or others is never used (``check_cache_directory``; a library cache
says so once and keeps answers in memory only, the CLI refuses such a ``--cache``). A disk error (a full disk, a
corrupt file) degrades that call to a miss, said once; the store tries again at the next call, and counts the
answers it could not store (``DiskStore.unstored``, ``failure`` the last reason) for the commands' closing lines.
An entry of another shape is a miss. Disk I/O runs off the event loop (``aget``/``aput``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from flip_reward.os_errors import reason
from flip_reward.ownership import (
    UntrustedPathError,
    check_trusted_file,
    make_private_directory,
    open_trusted_directory,
    same_directory,
)

logger = logging.getLogger("flip_reward")

T = TypeVar("T")
DEFAULT_CACHE_SIZE = 4096
DB_NAME = "answers.sqlite3"
DB_FILES = tuple(DB_NAME + suffix for suffix in ("", "-journal", "-wal", "-shm"))  # SQLite reads them all
ENTRY_FIELDS = {"text": str, "prompt_tokens": int, "completion_tokens": int}
PLANTING_RISK = "another user could plant judge answers there"


class UnsafeCacheError(UntrustedPathError):
    """A cache directory another user could have written: its answers cannot be trusted as rewards."""


def check_cache_directory(directory: str | os.PathLike) -> None:
    """UnsafeCacheError unless ``directory`` is absent (it will be created private) or trusted (``ownership``) with
    trusted database files."""
    if os.path.lexists(directory):
        os.close(_open_checked(directory))


def _open_checked(directory: str | os.PathLike) -> int:
    """A descriptor of the trusted cache ``directory`` whose database files are trusted too; UnsafeCacheError
    otherwise."""
    try:
        descriptor = open_trusted_directory(directory)
    except UntrustedPathError as error:
        raise UnsafeCacheError(f"{error}; {PLANTING_RISK}") from None
    try:
        for name in DB_FILES:
            check_trusted_file(descriptor, name, Path(directory) / name)
    except UntrustedPathError as error:
        os.close(descriptor)
        raise UnsafeCacheError(f"{error}; {PLANTING_RISK}") from None
    return descriptor


def request_key(servers: Sequence[str | None], model: str, messages: list[dict], params: dict) -> str:
    """A stable digest of everything that determines the judge's answer, the server(s) asked included."""
    payload = json.dumps(
        {"servers": list(servers), "model": model, "messages": messages, "params": params},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def valid_entry(value: object) -> bool:
    """Whether ``value`` has the shape of a cached answer (anything else read from disk is a miss)."""
    return (
        isinstance(value, dict)
        and value.keys() == ENTRY_FIELDS.keys()
        and all(type(value[name]) is kind for name, kind in ENTRY_FIELDS.items())
    )


class DiskStore:
    """Answers as JSON text in one SQLite table under a private directory; safe to share between processes.
    A directory that fails ``check_cache_directory`` is not used at all (one warning; every call a miss). A disk
    error fails that call only (one warning): ``stored`` and ``unstored`` count the answers written and not, ``failure``
    says why."""

    def __init__(self, directory: str):
        self.directory = directory
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._refused = False
        self.failure: str | None = None
        self.stored = self.unstored = 0  # answers this process wrote, and could not write

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            make_private_directory(self.directory)
            descriptor = _open_checked(self.directory)
            try:
                connection = sqlite3.connect(Path(self.directory) / DB_NAME, timeout=30, check_same_thread=False)
                if not same_directory(descriptor, self.directory):
                    connection.close()
                    raise UnsafeCacheError(f"{self.directory} was replaced while it was opened; {PLANTING_RISK}")
            finally:
                os.close(descriptor)
            connection.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            connection.commit()
            self._connection = connection
        return self._connection

    def get(self, key: str) -> dict | None:
        row = self._guarded(lambda c: c.execute("SELECT value FROM answers WHERE key = ?", (key,)).fetchone())
        if not row:
            return None
        try:
            value = json.loads(row[0])
        except (TypeError, ValueError):
            return None
        return value if valid_entry(value) else None

    def put(self, key: str, value: dict) -> None:
        text = json.dumps(value, ensure_ascii=False)

        def write(connection: sqlite3.Connection) -> bool:
            connection.execute("INSERT OR REPLACE INTO answers (key, value) VALUES (?, ?)", (key, text))
            connection.commit()
            return True

        stored = bool(self._guarded(write))
        with self._lock:
            self.stored += stored
            self.unstored += not stored

    def _guarded(self, operation: Callable[[sqlite3.Connection], T]) -> T | None:
        """``operation(connection)``, or None when the disk fails (this call only; said once, ``failure`` keeps the
        last reason) or the directory is unsafe (every call; said once)."""
        with self._lock:
            if self._refused:
                return None
            try:
                return operation(self._connect())
            except UnsafeCacheError as error:
                self._refused, self.failure = True, str(error)
                logger.warning("judge cache %s is not used: %s; answers are kept in memory only", self.directory, error)
            except (OSError, sqlite3.Error) as error:
                if self.failure is None:
                    logger.warning(
                        "judge cache %s failed (%s): an answer it cannot store is kept in memory only and asked "
                        "again by a later run (said once)",
                        self.directory,
                        disk_error(error),
                    )
                self.failure = disk_error(error)
                if self._connection is not None:
                    self._connection.close()
                    self._connection = None  # reconnect next time: the failure may be transient
            return None


def disk_error(error: OSError | sqlite3.Error) -> str:
    """``No space left on device (errno 28)``, ``database or disk is full``: what went wrong, without a path."""
    return reason(error) if isinstance(error, OSError) else str(error)


class ResponseCache:
    """An LRU of up to ``max_entries`` answers in memory (0 keeps none), backed by ``DiskStore`` when ``path`` is
    given. Thread-safe; pickles by its settings."""

    def __init__(self, path: str | os.PathLike | None = None, max_entries: int = DEFAULT_CACHE_SIZE):
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries!r}")
        self.path = str(path) if path else None
        self.max_entries = max_entries
        self._memory: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()
        self._disk = DiskStore(self.path) if self.path else None

    def __getstate__(self) -> dict:
        return {"path": self.path, "max_entries": self.max_entries}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def __len__(self) -> int:
        return len(self._memory)

    @property
    def disk(self) -> DiskStore | None:
        """The disk store behind the memory, or None."""
        return self._disk

    def get(self, key: str) -> dict | None:
        """The cached answer for ``key``, from memory or disk, or None."""
        value = self._from_memory(key)
        if value is None and self._disk is not None:
            value = self._disk.get(key)
            if value is not None:
                self._remember(key, value)
        return value

    def put(self, key: str, value: dict) -> None:
        """Store an answer (``text``, ``prompt_tokens``, ``completion_tokens``) in memory and on disk."""
        if not valid_entry(value):
            raise ValueError(f"not a cache entry: {value!r}"[:200])
        self._remember(key, value)
        if self._disk is not None:
            self._disk.put(key, value)

    async def aget(self, key: str) -> dict | None:
        """``get`` with the disk read on a worker thread (a memory hit stays on the loop)."""
        value = self._from_memory(key)
        if value is None and self._disk is not None:
            value = await asyncio.to_thread(self.get, key)
        return value

    async def aput(self, key: str, value: dict) -> None:
        """``put`` with the disk write on a worker thread."""
        if self._disk is None:
            self.put(key, value)
        else:
            await asyncio.to_thread(self.put, key, value)

    def _from_memory(self, key: str) -> dict | None:
        with self._lock:
            value = self._memory.get(key)
            if value is not None:
                self._memory.move_to_end(key)
            return value

    def _remember(self, key: str, value: dict) -> None:
        if not self.max_entries:
            return
        with self._lock:
            self._memory[key] = value
            self._memory.move_to_end(key)
            while len(self._memory) > self.max_entries:
                self._memory.popitem(last=False)
