"""An OS error's cause in words, for the one line that reports it (every layer: the judge cache, data files,
training outputs)."""

from __future__ import annotations

import os
import re

ERRNO_MARK = re.compile(r"\[errno \d+\] ", re.IGNORECASE)  # pyarrow: "... Detail: [errno 28] No space left on device"
RUST_IO_ERROR = re.compile(r"\(os error (\d+)\)")  # safetensors: "... I/O error: No space left on device (os error 28)"


def reason(error: Exception) -> str:
    """``No space left on device (errno 28)``: the cause of an OSError without the path it repeats (nor an errno
    its text already holds); for an error from Rust code (safetensors' SafetensorError, no OSError) that says which
    system error it was, that error's text."""
    number = getattr(error, "errno", None)
    text = getattr(error, "strerror", None) or str(error)
    if number is None and (match := RUST_IO_ERROR.search(text)):
        number = int(match[1])
        text = os.strerror(number)
    text = ERRNO_MARK.sub("", text)
    return f"{text} (errno {number})" if number is not None else text
