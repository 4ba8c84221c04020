"""Robust extraction of named fields (inferred instruction, reasoning, scores) from free-form judge output."""

from __future__ import annotations

import bisect
import json
import re
from collections import deque
from collections.abc import Iterator, Sequence
from functools import lru_cache
from itertools import islice

import json_repair

from flip_reward.core.thinking import strip_thinking

INSTRUCTION_KEYS: tuple[str, ...] = ("INFERRED INSTRUCTION", "INSTRUCTION")
REASONING_KEYS: tuple[str, ...] = ("REASONING",)
# Plain-text labels that end the value of the field before them when they start a later line.
_KNOWN_LABELS: tuple[str, ...] = INSTRUCTION_KEYS + REASONING_KEYS + tuple(
    "EXPLANATION ANALYSIS RATIONALE FEEDBACK SCORE RATING CONFIDENCE BETTER_RESPONSE BEST_RESPONSE_INDEX".split()
)

_MISSING = object()
_REPAIR_LIMIT = 4_000  # characters handed to json_repair per candidate: it is pure Python and superlinear
_MAX_CANDIDATES = 4  # candidate objects that mention a wanted key, tried last first

_TEMPLATE_TOKENS = re.compile(
    r"<\|(?:im_start|start_header_id)\|>[ \t]*(?:(?:assistant|user|system|tool)\b[ \t]*)?"
    r"(?:<\|end_header_id\|>)?|<\|\w{1,32}\|>|</s>"
)
# One token of a brace scan: a double-quoted string (possibly unterminated) or a run of one brace.
_SCAN_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|\{+|\}+', re.DOTALL)
_OPEN_BRACE = re.compile(r"\{(?![^{}:]*\})")  # skips {...} groups with no colon: no key can be inside
_JSON_OBJECT_START = re.compile(r"\{\s*[\"']")
# An odd run of backslashes before a LaTeX command that JSON would read as an escape (\b \f always; \n \r \t
# when the letters spell a common command): one more backslash makes the command survive decoding.
_LATEX_COMMAND = re.compile(
    r"\\(?<!\\\\)(?:\\\\)*(?=[bf][A-Za-z]|(?:nabla|neq?|newline|neg|not|notin|nu|ni|right(?:arrow)?|rho"
    r"|rangle|rceil|rfloor|rm|times|text(?:bf|it|rm|sf|tt)?|theta|tau|tanh?|to|tilde|top|tfrac|triangle"
    r"|therefore)(?![A-Za-z]))"
)
_FENCE_LINE = re.compile(r"[ \t]*(?:```|~~~)[^\n]*")
_QUOTED = re.compile(r"([\"'])(.*)\1,?", re.DOTALL)


def extract_field(text: str, names: Sequence[str]) -> object | None:
    """The value of the first of ``names`` found in judge output ``text``, or None when none is recoverable.

    Names match keys case-insensitively, spaces/underscores/hyphens between words interchangeable and
    surrounding whitespace ignored. JSON objects come first, last object first: the first holding any wanted
    key wins, and in it the earliest of ``names`` (top-level keys before nested ones); its JSON value is
    returned as is (str, number, bool, list, dict or None). Failing that, the last plain-text label
    (``KEY: value``, ``**Key:** value``, ``## Key``) outside JSON objects gives a stripped string.
    Never raises on any ``text``.
    """
    return _extract(_clean(text), names, {})


def _extract(cleaned: str | None, names: Sequence[str], spans_cache: dict) -> object | None:
    """extract_field on already cleaned text; ``spans_cache`` shares the object spans between fields of one text."""
    names = (names,) if isinstance(names, str) else tuple(n for n in names if isinstance(n, str) and _norm(n))
    if cleaned is None or not names:
        return None
    hits = [match.start("key") for match in _key_regex(names).finditer(cleaned)]
    if not hits and not _label_regex(names).search(cleaned):
        return None  # the fast path for text that never names the field
    if "spans" not in spans_cache:
        spans_cache["spans"] = list(_object_spans(cleaned))
    spans = spans_cache["spans"]
    value = _from_json(cleaned, spans, hits, names)
    if value is _MISSING:
        value = _from_labels(_outside_json(cleaned, spans), names)
    return None if value is _MISSING else value


def parse_inferred_instruction(text: str) -> str | None:
    """The instruction the judge inferred ("INFERRED INSTRUCTION" or bare "instruction"), or None; see _to_text
    for non-string values. Never falls back to the reasoning or the whole text."""
    return _to_text(extract_field(text, INSTRUCTION_KEYS))


def parse_reasoning(text: str) -> str | None:
    """The judge's "REASONING" value (for logging), or None."""
    return _to_text(extract_field(text, REASONING_KEYS))


def parse_flip_answer(text: str) -> tuple[str | None, str | None]:
    """``(parse_inferred_instruction(text), parse_reasoning(text))``, cleaning the text and finding its JSON objects
    once for both (the reward path needs both for every judgment)."""
    cleaned, spans_cache = _clean(text), {}
    return (_to_text(_extract(cleaned, INSTRUCTION_KEYS, spans_cache)),
            _to_text(_extract(cleaned, REASONING_KEYS, spans_cache)))


def _to_text(value: object) -> str | None:
    """A field value as stripped non-empty text: lists of scalars join with newlines, numbers and bools
    go through ``str``; None, dicts (structure, not an answer), nested lists and blanks give None."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, (bool, int, float)):
        return str(value)
    if isinstance(value, list):
        items = (_to_text(item) for item in value if not isinstance(item, (list, dict)))
        return "\n".join(item for item in items if item) or None
    return None


def _norm(name: str) -> str:
    """A key reduced to lowercase alphanumerics."""
    return re.sub(r"[\W_]+", "", name).casefold()


def _clean(text: object) -> str | None:
    """Text without BOM, CR line endings, chat-template tokens and thinking; None for non-strings."""
    if not isinstance(text, str):
        return None
    text = text.replace("\ufeff", "").replace("\r\n", "\n").replace("\r", "\n")
    return strip_thinking(_TEMPLATE_TOKENS.sub("", text))


def _object_spans(text: str) -> Iterator[tuple[int, int]]:
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


def _names_regex(names: tuple[str, ...]) -> str:
    """Regex alternation matching any of ``names`` with spaces, underscores or hyphens between words."""
    words = (filter(None, re.split(r"[\W_]+", name)) for name in names)
    return "|".join("[ \t_-]*".join(map(re.escape, parts)) for parts in words)


@lru_cache(maxsize=64)
def _key_regex(names: tuple[str, ...]) -> re.Pattern[str]:
    """A wanted name, quoted or bare, where a JSON key would be: after ``{``, ``,``, a quote or a closing
    bracket, and before ``:``. Group "key" starts at the key's opening quote if it has one."""
    name = f"(?:{_names_regex(names)})"
    key = rf"[\"']\s*{name}\s*[\"']\s*:|(?<![A-Za-z0-9]){name}\s*:"
    return re.compile(rf"[{{,\"'\]}}]\s*(?P<key>{key})", re.IGNORECASE)


@lru_cache(maxsize=64)
def _label_regex(names: tuple[str, ...]) -> re.Pattern[str]:
    """A label opening a line: ``KEY:``, ``**Key:**``, ``**KEY**:``, ``- Key:``, ``## Key`` (on its own line)."""
    return re.compile(
        rf"^[ \t]*(?:[-*+>][ \t]+)?(?:#{{1,6}}[ \t]*)?(?:\*\*|__)?[\"']?(?:{_names_regex(names)})[\"']?"
        r"(?:\*\*|__)?[ \t]*(?::(?:[ \t]*(?:\*\*|__))?|(?=\n|\Z))",
        re.IGNORECASE | re.MULTILINE,
    )


def _from_json(text: str, spans: list[tuple[int, int]], hits: list[int], names: tuple[str, ...]) -> object:
    """The wanted value from the last candidate objects holding a key hit (sorted offsets), or _MISSING."""
    with_hits = (
        (start, end, hits[bisect.bisect_left(hits, start) : bisect.bisect_left(hits, end)])
        for start, end in reversed(spans)
    )
    for start, end, span_hits in islice(((a, b, h) for a, b, h in with_hits if h), _MAX_CANDIDATES):
        span = text[start:end]
        for decoded in _decodings(span, _window_start(span, [hit - start for hit in span_hits])):
            value = _lookup(decoded, names)
            if value is not _MISSING:
                return value
    return _MISSING


def _window_start(span: str, offsets: list[int]) -> int | None:
    """The last key hit in ``span`` that can start a repair window: in an object with quoted keys, only a
    quoted hit, so that a bare ``, instruction:`` inside a string value is never taken for a key."""
    quoted_keys = _JSON_OBJECT_START.match(span)
    usable = [offset for offset in offsets if not quoted_keys or span[offset] in "\"'"]
    return usable[-1] if usable else None


def _decodings(span: str, window_start: int | None) -> Iterator[object]:
    """Decodings of a candidate object, best first: ``json`` (raw control characters allowed), else ``json_repair``
    on it when short, then on a capped window from ``window_start`` (bounds time, recovers swallowed keys)."""
    try:
        yield json.loads(_protect_latex(span), strict=False)
        return
    except (ValueError, RecursionError):
        pass
    if len(span) <= _REPAIR_LIMIT:
        yield _repair(span)
    if window_start is not None and (len(span) > _REPAIR_LIMIT or span[1:window_start].strip()):
        yield _repair("{" + span[window_start : window_start + _REPAIR_LIMIT])


def _repair(text: str) -> object:
    """``json_repair``'s reading of ``text``, or None when it fails."""
    try:
        return json_repair.loads(_protect_latex(text), skip_json_loads=True)
    except Exception:  # a heuristic parser on arbitrary text: any failure just means "no object here"
        return None


def _protect_latex(text: str) -> str:
    """``text`` with each odd backslash run before a LaTeX command made even (see _LATEX_COMMAND)."""
    return _LATEX_COMMAND.sub(r"\g<0>\\", text)


def _lookup(obj: object, names: tuple[str, ...]) -> object:
    """Breadth-first search of decoded JSON for the first dict holding a wanted key; _MISSING if none."""
    wanted = [_norm(name) for name in names]
    queue = deque([obj])
    while queue:
        node = queue.popleft()
        if isinstance(node, dict):
            keys = {_norm(str(key)): value for key, value in node.items()}
            for key in wanted:
                if key in keys:
                    return keys[key]
            queue.extend(node.values())
        elif isinstance(node, list):
            queue.extend(node)
    return _MISSING


def _outside_json(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` without the spans that are JSON objects (``{`` then a quoted key), so that labels written
    inside JSON strings (e.g. in the reasoning) are never read as plain-text fields."""
    pieces, pos = [], 0
    for start, end in spans:
        if _JSON_OBJECT_START.match(text, start):
            pieces.append(text[pos:start])
            pos = end
    pieces.append(text[pos:])
    return "\n".join(pieces)


def _from_labels(text: str, names: tuple[str, ...]) -> object:
    """The value after the last plain-text label of ``names``, up to the next known label, or _MISSING."""
    labels = deque(_label_regex(names).finditer(text), maxlen=1)
    if not labels:
        return _MISSING
    label = labels[0]
    stop = _label_regex(_KNOWN_LABELS + names).search(text, label.end())
    return _tidy(text[label.end() : stop.start() if stop else len(text)])


def _tidy(value: str) -> str:
    """A plain-text value without surrounding fence lines, bold markers or quotes (and a JSON-ish comma)."""
    lines = value.strip().split("\n")
    first, last = 0, len(lines)
    while first < last and _FENCE_LINE.fullmatch(lines[last - 1]):
        last -= 1
    while first < last and _FENCE_LINE.fullmatch(lines[first]):
        first += 1
    value = re.sub(r"^\*\*|\*\*$", "", "\n".join(lines[first:last]).strip()).strip()
    quoted = _QUOTED.fullmatch(value)
    return quoted.group(2).strip() if quoted else value
