"""The checks of a command's output paths, made before its first judge call so that a bad path costs nothing: a
path the command could write (``check_output``), a file it may replace (``check_replaceable``), an output that is
not its own input under another name (``check_not_input``)."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path


def check_output(
    path: str,
    suffixes: Sequence[str] | None,
    option: str = "--output",
    files: Sequence[str] = (),
    subject: str | None = None,
) -> None:
    """ValueError naming ``option`` unless a command could write ``path``: a file ending in one of ``suffixes``, or a
    directory when ``suffixes`` is None (the command writes ``files`` in it), that is no directory (no file) already,
    and whose nearest existing folder is a writable directory (a folder is made there and removed at once, the one
    test that /proc or a read-only mount gives an honest answer to). A file the command would replace must be no
    directory and writable (``check_replaceable``). It leaves nothing behind: the folders are made when the output is
    written. The messages start with ``subject`` (default: the option and the path). Commands call it before their
    first judge call, so that a bad path costs nothing."""
    target = Path(path)
    subject = subject or f"{option} {path}"
    if suffixes is None:
        if target.exists() and not target.is_dir():
            raise ValueError(f"{subject}: is a file, expected a directory")
        for name in files:
            check_replaceable(target / name, f"{subject}: {target / name}")
    else:
        if target.suffix not in suffixes:
            written = f"'{target.suffix}' files" if target.suffix else "a file without an extension"
            raise ValueError(f"{subject}: cannot write {written}; use {' or '.join(suffixes)}")
        check_replaceable(target, subject)
    folder = target if suffixes is None else target.parent
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    if not existing.is_dir():
        raise ValueError(f"{subject}: cannot create {folder}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{subject}: {existing} is not writable")
    try:  # what os.access cannot tell (/proc, a read-only mount as root): a folder made there and removed at once
        os.rmdir(tempfile.mkdtemp(prefix=".flip-reward-check-", dir=existing))
    except OSError as error:
        raise ValueError(f"{subject}: cannot create {folder}: {error.strerror} (errno {error.errno})") from None


def check_replaceable(path: Path, subject: str) -> None:
    """ValueError starting with ``subject`` when an output file a command would replace is a directory or is
    protected: not writable for this user, or without a write bit for its owner (root may write it, but someone
    meant it to stay)."""
    if path.is_dir():
        raise ValueError(f"{subject}: is a directory, expected a file")
    if path.exists() and (not os.access(path, os.W_OK) or not path.stat().st_mode & stat.S_IWUSR):
        raise ValueError(f"{subject}: not writable")


def check_not_input(source: str, outputs: Sequence[str | Path], option: str = "--output") -> None:
    """ValueError naming both when a file a command would write is its input file ``source`` under any name (the
    same path, a hard link or a symbolic link to it): writing it would destroy the input. Commands call it before
    their first judge call; a ``source`` that is no local file (a hub dataset) has nothing to protect."""
    for output in outputs:
        try:
            same = os.path.samefile(source, output)  # the same device and inode, symbolic links followed
        except OSError:  # either does not exist (yet)
            continue
        if same:
            raise ValueError(
                f"{option} {output} is the input file {source} (the same file): writing it would destroy the input; "
                "choose another output"
            )
