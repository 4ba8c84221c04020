"""Parsing JSON text that nobody vetted: a nesting bound checked before the parser runs, and errors that say where.

``json.loads`` recurses once per nesting level and raises RecursionError (a traceback, not a message) on a document
nested ~1,000 deep; a structure just under that limit parses, then breaks whatever walks it next (``json.dumps`` of an
output row, pyarrow, a repr). ``parse_json`` refuses text nested deeper than MAX_JSON_DEPTH levels before parsing, by
a scan of its brackets outside strings (only when the text holds more brackets than the bound, so ordinary rows cost
two ``str.count`` calls), and reports a syntax error at its real position: the line ending a JSONL line was read
with is no part of the document, so an error at its end is at the line's last column, not column 1 of the next line.
"""

from __future__ import annotations

import json

import regex

MAX_JSON_DEPTH = 100  # far above any row this package reads (a chat row is 3 deep), far below Python's recursion limit
# A whole string (possessive, so a long one costs no backtracking state), a bracket, or the quote of a string that
# never ends (the scan stops there: the parser will name that error).
_TOKENS = regex.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"|[\[\]{}]|"', regex.DOTALL)


class JsonTextError(ValueError):
    """JSON text that cannot be read: ``problem`` at 1-based ``line`` and ``column`` (characters)."""

    def __init__(self, problem: str, line: int, column: int, too_deep: bool = False):
        self.problem, self.line, self.column, self.too_deep = problem, line, column, too_deep
        super().__init__(self.describe(with_line=True))

    def describe(self, with_line: bool = False) -> str:
        """What is wrong and where: at ``column`` of a one-line document, at ``line``/``column`` with ``with_line``."""
        where = f"line {self.line} column {self.column}" if with_line else f"column {self.column}"
        if self.too_deep:
            return f"JSON nested deeper than {MAX_JSON_DEPTH} levels (at {where})"
        return f"not valid JSON ({self.problem} at {where})"


def parse_json(text: str) -> object:
    """The value of JSON ``text`` (one JSONL line, its line ending included or not, or a whole document), or
    JsonTextError: a syntax error, or nesting deeper than MAX_JSON_DEPTH.

    >>> parse_json('{"a": [1, 2]}\\n')
    {'a': [1, 2]}
    >>> for text in ('{"a": 1\\n', "[" * 101 + "]" * 101):
    ...     try:
    ...         parse_json(text)
    ...     except JsonTextError as error:
    ...         print(error.describe())
    not valid JSON (Expecting ',' delimiter at column 8)
    JSON nested deeper than 100 levels (at column 101)
    """
    text = text.rstrip("\r\n")
    deep_at = _too_deep_at(text)
    if deep_at is not None:
        line = text.count("\n", 0, deep_at) + 1
        raise JsonTextError("", line, deep_at - text.rfind("\n", 0, deep_at), too_deep=True)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise JsonTextError(error.msg.removesuffix(" at"), error.lineno, error.colno) from None  # "starting at"


def _too_deep_at(text: str) -> int | None:
    """The offset of the bracket that opens level MAX_JSON_DEPTH + 1 of ``text``, None when there is none."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return None
    depth = 0
    for token in _TOKENS.finditer(text):
        char = text[token.start()]
        if char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return token.start()
        elif char in "]}":
            depth -= 1
        elif token.end() - token.start() == 1:  # an unterminated string: the rest of the text is inside it
            return None
    return None
