"""Text that every layer can encode: strings made valid Unicode where they enter, and JSON lines that stay valid UTF-8.

A Python string may hold lone surrogates (code points U+D800 to U+DFFF): the valid JSON ``"\\ud83d"`` (an emoji cut
in half by a token limit or a byte slice) decodes to one, and so do bytes read with ``errors="surrogateescape"``. No
UTF-8 encoder accepts them, so the tokenizer, the judge request, the cache key and every file write would raise.
The policy: text is made valid where it enters (FlipReward's prompt and response; the judge's answer, and the values
read from it, whose JSON may escape half an emoji too; every judge request, for the methods that do not repair their
inputs), each lone surrogate becoming U+FFFD (what a UTF-8 decoder writes for bytes it cannot read) and a surrogate
pair split over two code points joined into its character; the context guard measures any string. NULs, control
characters, any script and any length are valid text and pass unchanged. Files written from rows that still hold the
caller's lone surrogates (``flip-reward score`` echoes its input rows) escape them as JSON does (``json_line``), so
that the row reads back as it was given. JSON that comes in from outside is read with ``parse_json``, whose only
errors are ValueErrors (nesting too deep for Python's parser included).
"""

from __future__ import annotations

import json
import re
import sys

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


def is_valid(text: str) -> bool:
    """Whether ``text`` holds no surrogate code point, i.e. encodes as UTF-8 (the C encoder is the quick test)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def repaired(text: str) -> tuple[str, int]:
    """``text`` as valid Unicode (see the module) and how many lone surrogates were replaced by U+FFFD.

    >>> repaired("half an emoji: \\ud83d"), repaired("\\ud83d\\ude00 joined")
    (('half an emoji: \ufffd', 1), ('\U0001f600 joined', 0))
    """
    if is_valid(text):
        return text, 0
    valid = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return valid, valid.count(REPLACEMENT) - text.count(REPLACEMENT)


def valid_text(text: str) -> str:
    """``text`` as valid Unicode (``repaired`` without the count)."""
    return repaired(text)[0]


def json_line(value: object) -> str:
    """``value`` as one line of JSON (no trailing newline) that encodes as UTF-8 whatever strings it holds: non-ASCII
    text as is, lone surrogates as their ``\\uXXXX`` escapes (JSON allows them; they read back as the same string);
    objects JSON cannot hold as ``str(...)``.

    >>> json_line({"text": "café \\ud83d"})
    '{"text": "café \\\\ud83d"}'
    """
    line = json.dumps(value, ensure_ascii=False, default=str)
    if is_valid(line):
        return line
    return _SURROGATE.sub(lambda surrogate: f"\\u{ord(surrogate.group()):04x}", line)


class JsonTooDeep(ValueError):
    """JSON nested deeper than Python's parser goes (its recursion limit): a ValueError, never a RecursionError."""


def parse_json(text: str | bytes) -> object:
    """``json.loads(text)``, with nesting too deep for the parser as ``JsonTooDeep`` (a ValueError, as malformed JSON
    is a ``json.JSONDecodeError``), so that no input reaches the caller as a RecursionError.

    >>> try:
    ...     parse_json("[" * 100_000)
    ... except JsonTooDeep as error:
    ...     print(error)
    nested too deep: Python reads at most about 1000 levels of arrays and objects
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise JsonTooDeep(
            f"nested too deep: Python reads at most about {sys.getrecursionlimit()} levels of arrays and objects"
        ) from None
