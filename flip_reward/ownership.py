"""Whether a directory and the files in it can be trusted: owned by this user, writable by nobody else, and not
symbolic links. The judge cache and the judge script's PID files live only in such directories, so that another
local user can plant neither a judge answer nor a process to signal.

A directory is checked through a file descriptor opened without following a symbolic link, and its files relative
to that descriptor, so the checks and the use that follows them see the same directory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


class UntrustedPathError(ValueError):
    """A directory or file another user could have written (or pointed somewhere else)."""


def untrusted_reason(
    status: os.stat_result, shown: str | os.PathLike, owners: tuple[int, ...] | None = None
) -> str | None:
    """Why an entry with ``status`` (from ``lstat``/``fstat``) cannot be trusted, or None when it can; ``owners``
    the uids it may belong to (default: this user alone)."""
    user = os.geteuid()
    if stat.S_ISLNK(status.st_mode):
        return f"{shown} is a symbolic link"
    if status.st_uid not in (owners or (user,)):
        also = " or root" if owners and 0 in owners and user != 0 else ""
        return f"{shown} is owned by uid {status.st_uid}, not by this user (uid {user}){also}"
    if status.st_mode & WRITABLE_BY_OTHERS:
        return f"{shown} is writable by group or others (mode {stat.S_IMODE(status.st_mode):04o})"
    return None


def open_trusted_directory(path: str | os.PathLike) -> int:
    """A read-only descriptor of directory ``path`` (the caller closes it); UntrustedPathError when ``path`` is a
    symbolic link, another user's, or writable by group or others; OSError when it cannot be opened (it does not
    exist, or is no directory)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        if os.path.islink(path):
            raise UntrustedPathError(f"{path} is a symbolic link") from None
        raise error
    reason = untrusted_reason(os.fstat(descriptor), path)
    if reason:
        os.close(descriptor)
        raise UntrustedPathError(reason)
    return descriptor


def check_trusted_file(directory: int, name: str, shown: str | os.PathLike) -> bool:
    """Whether file ``name`` exists in the open ``directory``; UntrustedPathError when it is a symbolic link, not a
    regular file, another user's, or writable by group or others (``shown`` names it in the message)."""
    try:
        status = os.stat(name, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return False
    reason = untrusted_reason(status, shown)
    if reason is None and not stat.S_ISREG(status.st_mode):
        reason = f"{shown} is not a regular file"
    if reason:
        raise UntrustedPathError(reason)
    return True


def same_directory(descriptor: int, path: str | os.PathLike) -> bool:
    """Whether ``path`` still names the directory open as ``descriptor`` (nobody swapped it meanwhile)."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    opened = os.fstat(descriptor)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def folder_reason(folder: Path, entry: Path) -> str | None:
    """Why ``entry`` in ``folder`` could be replaced by another user, or None when it could not: the folder is
    writable by group or others (unless it is sticky, as /tmp or a Kubernetes secret mount often is, and ``entry``
    itself, a link not followed, is this user's or root's: nobody else may then replace it), or is owned by a user
    other than this one and root. OSError when ``entry`` cannot be looked at in a sticky folder."""
    status = folder.stat()
    mode = f"mode {stat.S_IMODE(status.st_mode):04o}"
    writable = status.st_mode & WRITABLE_BY_OTHERS
    if writable and not status.st_mode & stat.S_ISVTX:
        return f"its folder {folder} is writable by group or others ({mode}): refusing it (chmod go-w {folder})"
    if status.st_uid not in trusted_owners():
        return f"its folder {folder} is owned by uid {status.st_uid}, who can replace it: refusing it"
    owner = entry.lstat().st_uid if writable else os.geteuid()
    if owner not in trusted_owners():
        return (
            f"its folder {folder} is writable by group or others ({mode}) and {entry.name} there is owned by uid "
            f"{owner}, who can replace it: refusing it (move it to a folder only you can write)"
        )
    return None


def trusted_owners() -> tuple[int, int]:
    """The users a private file and its folders may belong to: root (who can do anything anyway) and this one."""
    return (0, os.geteuid())


def read_private_file(path: str | os.PathLike, shown: str) -> str:
    """The text of file ``path`` (``shown`` names it in messages), read from the very descriptor whose owner and
    mode were checked; UntrustedPathError unless it is a regular file of this user's or root's (root can do
    anything anyway: Kubernetes secrets are root's) that nobody else can write, in folders (the one named and, when
    ``path`` is a symbolic link, its target's) where nobody else can replace it (``folder_reason``: a sticky folder
    such as a secret mount is fine for an entry of ours or root's); also (naming the file) when it cannot be opened
    or is not UTF-8 text. A link into a folder of root's is followed (Kubernetes mounts secrets that way); a link
    another user planted is refused by the folder it sits in."""
    path = Path(path)
    target = Path(os.path.realpath(path))
    for entry in dict.fromkeys((path.absolute(), target)):
        try:
            reason = folder_reason(entry.parent, entry)
        except OSError as error:
            raise UntrustedPathError(f"{shown} cannot be read: {error.strerror}") from None
        if reason:
            raise UntrustedPathError(f"{shown}: {reason}")
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise UntrustedPathError(f"{shown} cannot be read: {error.strerror}") from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise UntrustedPathError(f"{shown} is not a regular file: refusing it")
        reason = untrusted_reason(status, shown, trusted_owners())
        if reason:
            fix = f" (chmod 600 {path})" if status.st_mode & WRITABLE_BY_OTHERS else ""
            raise UntrustedPathError(f"{reason}: refusing it{fix}")
        with open(descriptor, "rb", closefd=False) as file:
            data = file.read()
    finally:
        os.close(descriptor)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UntrustedPathError(f"{shown} is not UTF-8 text") from None


def make_private_directory(path: str | os.PathLike) -> None:
    """Create directory ``path`` readable by this user only (missing parents are made too, with the umask's mode, as
    ``mkdir -p`` makes them: only ``path`` itself must be private); an existing one is left as it is, to be checked
    by ``open_trusted_directory``."""
    try:
        Path(path).mkdir(mode=0o700, parents=True)
    except FileExistsError:  # a directory, or something else that ``open_trusted_directory`` will name
        pass
