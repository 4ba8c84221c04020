"""Output files a failure never leaves half-written: JSONL files that only ever hold whole lines, single files kept
whole or removed, and OutputError, the one error saying which file could not be written (a full disk, an I/O error)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from flip_reward.text import json_line


class OutputError(OSError):
    """A file could not be written; the message names it, says why and what of it was kept. An OSError, so that a
    caller that already survives I/O errors survives it too; the CLI tells it apart (exit status 4)."""


def reason(error: OSError) -> str:
    """``No space left on device (errno 28)``: the cause of an OSError without the path it repeats."""
    return f"{error.strerror} (errno {error.errno})" if error.strerror else str(error)


class JsonlFile:
    """A JSONL file written one whole line at a time: each line goes to the file in one write call with nothing held
    back in a buffer, and a line a failure cut short is truncated away, so that the file only ever holds whole lines.
    ``append`` keeps what the file holds. A context manager; OutputError when the file cannot be opened or written."""

    def __init__(self, path: str | os.PathLike, append: bool = False):
        self.path = Path(path)
        self.lines = 0
        self._append = append
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        try:
            self._fd = os.open(self.path, flags, 0o666)
        except OSError as error:
            raise OutputError(f"could not write {self.path}: {reason(error)}") from error
        self._size = os.fstat(self._fd).st_size

    def write(self, row: object) -> None:
        """``row`` as one JSON line."""
        self.write_line(json_line(row))

    def write_line(self, line: str) -> None:
        """``line`` (one line of JSON, without its newline), whole or not at all."""
        encoded = (line + "\n").encode("utf-8")
        data = memoryview(encoded)
        try:
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError as error:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
                os.lseek(self._fd, self._size, os.SEEK_SET)  # a later line follows the last whole one, leaving no gap
            kept = "the lines before are whole" if self._append else f"the {self.lines} line(s) before are whole"
            raise OutputError(f"could not write {self.path}: {reason(error)}; {kept}") from error
        self._size += len(encoded)
        self.lines += 1

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> JsonlFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextlib.contextmanager
def whole_file(path: str | os.PathLike) -> Iterator[None]:
    """Around code that writes ``path`` in one go (a JSON document, a plot, a parquet file): if it fails with an
    OSError, the part written is removed and OutputError says so."""
    try:
        yield
    except OSError as error:
        with contextlib.suppress(OSError):
            Path(path).unlink()
        raise OutputError(f"could not write {path}: {reason(error)}; the partial file was removed") from error
