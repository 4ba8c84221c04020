"""Output files a failure never leaves half-written: JSONL files that only ever hold whole lines, files replaced
whole or not at all (alone or as a set that lands together), and OutputError, the one error saying which file could
not be written (a full disk, an I/O error)."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from flip_reward.os_errors import reason
from flip_reward.text import json_line


class OutputError(OSError):
    """A file could not be written; the message names it, says why and what of it was kept. An OSError, so that a
    caller that already survives I/O errors survives it too; the CLI tells it apart (exit status 4)."""


def write_errors() -> tuple[type[Exception], ...]:
    """What writing a model can raise on a full disk: OSError, and safetensors' SafetensorError (no OSError) when
    safetensors is installed."""
    try:
        from safetensors import SafetensorError
    except ImportError:
        return (OSError,)
    return (OSError, SafetensorError)


class JsonlFile:
    """A JSONL file written one whole line at a time: each line goes to the file in one write call with nothing held
    back in a buffer, and a line a failure cut short is truncated away, so that the file only ever holds whole lines.
    ``append`` keeps what the file holds; its folder is made when missing. A context manager; OutputError when the
    file cannot be opened or written."""

    def __init__(self, path: str | os.PathLike, append: bool = False):
        self.path = Path(path)
        self.lines = 0
        self._append = append
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
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


class FileSet:
    """Files that land together or not at all: each is written to a temporary file beside it (its folder made when
    missing) that takes the mode (and, where allowed, the owner and group) of the file it replaces, and only once
    every one is written are they synced to disk and moved into place (os.replace, which needs no space), so that a
    failure leaves every earlier file untouched. A replaced file is a new file: another hard link to the old one keeps
    the old content. A context manager: leaving it by an error
    removes the temporary files; ``commit`` moves them into place. OutputError names the file that could not be
    written and says what was kept (``kept``)."""

    def __init__(self, kept: str = "the partial files were removed and the previous outputs are untouched"):
        self.kept = kept
        self._temporary: dict[Path, Path] = {}  # the file each temporary file replaces (symbolic links resolved)
        self._given: dict[Path, Path] = {}  # each of those files as given

    def write(self, path: str | os.PathLike, write: Callable[[Path], object]) -> None:
        """Have ``write`` write ``path``'s content to the temporary file it is given (named like ``path``, same
        extension); OutputError when that fails."""
        path = Path(path)
        target = Path(os.path.realpath(path))  # a symbolic link stays: the file it points to is replaced
        temporary = target.with_name(f".{target.stem}.{secrets.token_hex(4)}.partial{target.suffix}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            self._temporary[target] = temporary
            write(temporary)
            _take_over_mode(temporary, target)
            _sync(temporary)
            self._given[target] = path
        except OSError as error:
            self.discard()
            raise OutputError(f"could not write {path}: {reason(error)}; {self.kept}") from error

    def commit(self) -> list[Path]:
        """Move every file written into place; returns their paths, as given. Every place is checked first (a
        directory there replaces nothing); OutputError naming the file when one cannot be moved."""
        for target in self._temporary:
            if target.is_dir():
                self._fail(target, "Is a directory", self.kept)
        written: list[Path] = []
        for target, temporary in list(self._temporary.items()):
            try:
                os.replace(temporary, target)
            except OSError as error:
                replaced = ", ".join(str(path) for path in written) or "no other file"
                self._fail(target, reason(error), f"the partial files were removed; {replaced} replaced")
            del self._temporary[target]
            written.append(self._given[target])
        self._given = {}
        return written

    def _fail(self, target: Path, why: str, kept: str) -> None:
        """Remove the temporary files and raise OutputError naming ``target`` as given."""
        path = self._given[target]
        self.discard()
        raise OutputError(f"could not write {path}: {why}; {kept}")

    def discard(self) -> None:
        """Remove the temporary files written so far."""
        for temporary in self._temporary.values():
            with contextlib.suppress(OSError):
                temporary.unlink()
        self._temporary, self._given = {}, {}

    def __enter__(self) -> FileSet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()


def _take_over_mode(temporary: Path, target: Path) -> None:
    """The mode of ``target``, when it exists, on ``temporary``, and its owner and group where this process may
    give them (as root; otherwise a file stays this user's)."""
    try:
        status = os.stat(target)
    except FileNotFoundError:
        return
    with contextlib.suppress(PermissionError):  # before chmod: a chown clears set-user-ID bits
        os.chown(temporary, status.st_uid, status.st_gid)
    os.chmod(temporary, stat.S_IMODE(status.st_mode))


def _sync(path: Path) -> None:
    """``path``'s content on disk (fsync), so that a crash after the rename never leaves an empty file in place."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def whole_file(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Write ``path`` in one go (a JSON document, a plot, a parquet file) by having ``write`` write a temporary
    file beside it, then moving that into place: the previous file, if any, stays whole until then. OutputError
    when it fails (the partial file is removed)."""
    with FileSet("the partial file was removed") as files:
        files.write(path, write)
        return files.commit()[0]
