"""Finding and decoding JSON objects in judge text and reading a wanted key out of them: top-level object spans
(string-aware, an unterminated last one included), candidate decodings (``json`` with raw control characters and
LaTeX protected, curly delimiters straightened, then a bounded ``json_repair`` fallback), answers encoded twice as
one JSON string literal, and a breadth-first key lookup that skips echoed placeholders. Also owns key
normalisation (``norm``) and the ``MISSING`` sentinel shared with the label and tag readers."""

from __future__ import annotations

import bisect
import json
import re
from collections import deque
from collections.abc import Iterator
from contextlib import suppress
from functools import lru_cache
from itertools import islice

import json_repair

from flip_reward.core.placeholders import is_placeholder

MISSING = object()  # "no value found", distinct from a JSON null
MAX_CANDIDATES = 4  # candidate objects (or labels, or tags) that mention a wanted key, tried last first
JSON_OBJECT_START = re.compile(r"\{\s*[\"'“‘]")  # a brace opening a quoted key: a JSON object, not prose braces

_NON_ALNUM = re.compile(r"[\W_]+")
_DECODER = json.JSONDecoder(strict=False)
_REPAIR_LIMIT = 4_000  # characters handed to json_repair per candidate: it is pure Python and superlinear
# One token of a brace scan: a double-quoted string (possibly unterminated) or a run of one brace.
_SCAN_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|\{+|\}+', re.DOTALL)
_OPEN_BRACE = re.compile(r"\{(?![^{}:]*\})")  # skips {...} groups with no colon: no key can be inside
# An odd run of backslashes before a LaTeX command that JSON would read as an escape (\b \f always; \n \r \t
# when the letters spell a common command): one more backslash makes the command survive decoding.
_LATEX_COMMAND = re.compile(
    r"\\(?<!\\\\)(?:\\\\)*(?=[bf][A-Za-z]|(?:nabla|neq?|newline|neg|not|notin|nu|ni|right(?:arrow)?|rho"
    r"|rangle|rceil|rfloor|rm|times|text(?:bf|it|rm|sf|tt)?|theta|tau|tanh?|to|tilde|top|tfrac|triangle"
    r"|therefore)(?![A-Za-z]))"
)
_STRING_LITERAL = re.compile(r'"[\s\\"]*[{\[]')  # a JSON string literal whose content is JSON: an answer encoded twice
# A curly quote where a JSON delimiter goes: opening after { [ , : or a line break, closing before : , } ] or a
# line break. Single curly quotes count only where one opens a key or value (’ is mostly an apostrophe).
_CURLY_DELIMITER = re.compile(r"(?<=[{\[,:\n])(\s*)([“”‘’])|([“”‘’])(?=\s*(?:[:,}\]\n]|\Z))")
_SINGLE_CURLY_OPENING = re.compile(r"[{\[,:\n]\s*‘")
_CURLY = re.compile("[“”‘’]")


@lru_cache(maxsize=4096)
def norm(name: str) -> str:
    """A key reduced to lowercase alphanumerics."""
    return _NON_ALNUM.sub("", name).casefold()


def decode_string_literal(text: str) -> str:
    """The content of an answer that is one JSON string literal holding JSON (possibly fenced, truncated or
    encoded more than twice), decoded; any other text as is."""
    for _ in range(3):
        body = text.strip()
        if body[:3] in ("```", "~~~"):
            body = body.partition("\n")[2].rstrip().removesuffix("```").removesuffix("~~~").strip()
        if not _STRING_LITERAL.match(body):
            break
        for tail in ("", '"', '\\"'):  # a cut-off literal lacks its closing quote, or ends inside an escape
            with suppress(ValueError, RecursionError):
                value, end = _DECODER.raw_decode(body + tail)
                text = value + body[end:]  # what follows the literal (prose, a label) is kept
                break
        else:
            break
    return text


def object_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each top-level balanced ``{...}`` (string-aware), then of an unterminated last one."""
    opening = _OPEN_BRACE.search(text)
    while opening:
        depth, end = 0, len(text)
        for token in _SCAN_TOKEN.finditer(text, opening.start()):
            run = token.group()
            if run[0] == "{":
                depth += len(run)
            elif run[0] == "}":
                if len(run) >= depth:
                    end = token.start() + depth
                    break
                depth -= len(run)
        yield opening.start(), end
        opening = _OPEN_BRACE.search(text, end)


def from_json(text: str, spans: list[tuple[int, int]], hits: list[int], names: tuple[str, ...]) -> object:
    """The wanted value from the last candidate objects holding a key hit (sorted offsets), or MISSING."""
    with_hits = (
        (start, end, hits[bisect.bisect_left(hits, start) : bisect.bisect_left(hits, end)])
        for start, end in reversed(spans)
    )
    for start, end, span_hits in islice(((a, b, h) for a, b, h in with_hits if h), MAX_CANDIDATES):
        span = text[start:end]
        for decoded in _decodings(span, _window_start(span, [hit - start for hit in span_hits])):
            value = lookup(decoded, names)
            if value is not MISSING:
                return value
    return MISSING


def _window_start(span: str, offsets: list[int]) -> int | None:
    """The last key hit in ``span`` that can start a repair window: in an object with quoted keys, only a
    quoted hit, so that a bare ``, instruction:`` inside a string value is never taken for a key."""
    quoted_keys = JSON_OBJECT_START.match(span)
    usable = [offset for offset in offsets if not quoted_keys or span[offset] in "\"'“”‘’"]
    return usable[-1] if usable else None


def _decodings(span: str, window_start: int | None) -> Iterator[object]:
    """Decodings of a candidate object, best first: ``json`` (raw control characters allowed; curly delimiters
    straightened if it fails as is), else ``json_repair`` on it when short, then on a capped window from
    ``window_start`` (bounds time, recovers swallowed keys)."""
    decoded = loads_or_missing(span)
    if decoded is MISSING and _CURLY.search(span):
        span = _straighten(span)
        decoded = loads_or_missing(span)
    if decoded is not MISSING:
        yield decoded
        return
    if len(span) <= _REPAIR_LIMIT:
        yield _repair(span)
    if window_start is not None and (len(span) > _REPAIR_LIMIT or span[1:window_start].strip()):
        yield _repair("{" + span[window_start : window_start + _REPAIR_LIMIT])


def _straighten(span: str) -> str:
    """``span`` with the curly quotes that delimit its keys and values made straight double quotes (see
    _CURLY_DELIMITER); curly quotes inside values (apostrophes, quotations) are kept."""
    quotes = "“”‘’" if _SINGLE_CURLY_OPENING.search(span) else "“”"
    return _CURLY_DELIMITER.sub(lambda m: (m[1] or "") + '"' if (m[2] or m[3]) in quotes else m[0], span)


def loads_or_missing(text: str) -> object:
    """``json.loads`` of ``text`` (raw control characters allowed, LaTeX protected), or MISSING when invalid."""
    try:
        return json.loads(_protect_latex(text), strict=False)
    except (ValueError, RecursionError):
        return MISSING


def _repair(text: str) -> object:
    """``json_repair``'s reading of ``text``, or None when it fails."""
    try:
        return json_repair.loads(_protect_latex(text), skip_json_loads=True)
    except Exception:  # a heuristic parser on arbitrary text: any failure just means "no object here"
        return None


def _protect_latex(text: str) -> str:
    """``text`` with each odd backslash run before a LaTeX command made even (see _LATEX_COMMAND)."""
    return _LATEX_COMMAND.sub(r"\g<0>\\", text)


def lookup(obj: object, names: tuple[str, ...]) -> object:
    """Breadth-first search of decoded JSON for the first dict holding a wanted key with a value that is no
    placeholder; MISSING if none."""
    wanted = [norm(name) for name in names]
    queue = deque([obj])
    while queue:
        node = queue.popleft()
        if isinstance(node, dict):
            keys = {norm(str(key)): value for key, value in node.items()}
            for key in wanted:
                if key in keys and not (isinstance(keys[key], str) and is_placeholder(keys[key])):
                    return keys[key]
            queue.extend(node.values())
        elif isinstance(node, list):
            queue.extend(node)
    return MISSING
