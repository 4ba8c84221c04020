"""Robust extraction of named fields (inferred instruction, reasoning, scores) from free-form judge output: the
public API (extract_field, parse_inferred_instruction, parse_reasoning, parse_flip_answer and the field keys), text
cleaning, the order in which sources are tried, and the plain-text labels and XML-style tags read when no JSON
object holds the field. Finding and decoding JSON objects (broken, truncated, fenced, encoded twice, curly-quoted)
lives in ``json_fields``; recognising echoed template placeholders in ``placeholders``."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from itertools import islice

from flip_reward.core.json_fields import (
    JSON_OBJECT_START,
    MAX_CANDIDATES,
    MISSING,
    decode_string_literal,
    from_json,
    loads_or_missing,
    lookup,
    norm,
    object_spans,
)
from flip_reward.core.placeholders import is_placeholder
from flip_reward.core.thinking import strip_thinking
from flip_reward.text import valid_text

_TEMPLATE_INSTRUCTION_KEYS: tuple[str, ...] = ("INFERRED INSTRUCTION", "INSTRUCTION")
# Names judges invent for the same field, most specific first; read only when no template key is found.
_INVENTED_INSTRUCTION_KEYS: tuple[str, ...] = (
    "INFERRED PROMPT",
    "INFERRED USER MESSAGE",
    "RECONSTRUCTED INSTRUCTION",
    "RECONSTRUCTED PROMPT",
    "RECONSTRUCTED USER MESSAGE",
    "ORIGINAL INSTRUCTION",
    "ORIGINAL PROMPT",
    "ORIGINAL USER MESSAGE",
    "USER INSTRUCTION",
    "USER PROMPT",
    "USER MESSAGE",
    "LIKELY INSTRUCTION",
    "LIKELY PROMPT",
    "PROMPT",
    "TASK",
)
INSTRUCTION_KEYS: tuple[str, ...] = _TEMPLATE_INSTRUCTION_KEYS + _INVENTED_INSTRUCTION_KEYS
REASONING_KEYS: tuple[str, ...] = ("REASONING",)
# Labels (and tags) that end the value of the field before them when they start a later line. Invented names are
# left out: "Task:" or "Prompt:" may well be a line of the inferred instruction itself.
_KNOWN_LABELS: tuple[str, ...] = (
    _TEMPLATE_INSTRUCTION_KEYS
    + REASONING_KEYS
    + tuple(
        "EXPLANATION ANALYSIS RATIONALE FEEDBACK SCORE RATING CONFIDENCE BETTER_RESPONSE BEST_RESPONSE_INDEX".split()
    )
)
_KNOWN_NORMS = frozenset(norm(label) for label in _KNOWN_LABELS)

# Chat-template tokens a judge server that does not skip special tokens leaves around the answer: the header of the
# assistant turn before it (``<|im_start|>assistant``, ``<|start_header_id|>assistant<|end_header_id|>``, ``<s>``)
# and end-of-turn / end-of-text tokens after it (``<|im_end|>``, ``<|eot_id|>``, ``</s>``, ``<end_of_turn>``). Only
# these edges are cut: the same tokens inside the answer are the judge's text (an instruction about chat templates
# names them).
_SPECIAL_TOKEN = r"(?:<\|\w{1,32}\|>|<｜[^｜<>\s]{1,32}｜>|</?s>|<(?:start|end)_of_turn>)"
_LEADING_TOKENS = re.compile(rf"(?:\s*{_SPECIAL_TOKEN}(?:[ \t]*(?:assistant|model)\b)?)+[ \t]*\n?")
_TRAILING_TOKENS = re.compile(rf"(?:\s*{_SPECIAL_TOKEN})+\s*\Z")
_TRAILING_REACH = 256  # characters searched for trailing tokens (a few of them): the same cost at any text length
_FENCE_LINE = re.compile(r"[ \t]*(?:```|~~~)[^\n]*")
_QUOTED = re.compile(r"([\"'“‘])(.*)([\"'”’]),?", re.DOTALL)
_QUOTE_PAIRS = {'"': '"', "'": "'", "“": "”", "‘": "’"}


def extract_field(text: str, names: Sequence[str]) -> object | None:
    """The value of the first of ``names`` found in judge output ``text``, or None when none is recoverable.

    Names match keys case-insensitively, spaces/underscores/hyphens between words interchangeable and
    surrounding whitespace ignored. JSON objects come first, last object first: the first holding any wanted
    key wins, and in it the earliest of ``names`` (top-level keys before nested ones); its JSON value is
    returned as is (str, number, bool, list, dict or None). Failing that, the last ``<key>...</key>`` element,
    then the last plain-text label (``KEY: value``, ``KEY - value``, ``**Key:** value``, ``1. Key: value``,
    ``## Key``), then the last unclosed ``<key>`` (a truncated answer), all outside JSON objects and other
    fields' elements, give a stripped string. A string that is an echoed template placeholder (``"<...>"``,
    ``"[INFERRED INSTRUCTION]"``, ``"..."``) counts as absent. Never raises on any ``text``.
    """
    value = _extract(_clean(text), names, {})
    return None if value is MISSING else value


def parse_inferred_instruction(text: str) -> str | None:
    """The instruction the judge inferred, or None; see _to_text for non-string values. The template's keys
    ("INFERRED INSTRUCTION", bare "instruction") win over invented ones ("prompt", "original instruction", ...),
    which are read only when no template key is found. Never falls back to the reasoning or the whole text."""
    return _instruction(_clean(text), {})


def parse_reasoning(text: str) -> str | None:
    """The judge's "REASONING" value (for logging), or None."""
    return _to_text(_extract(_clean(text), REASONING_KEYS, {}))


def parse_flip_answer(text: str) -> tuple[str | None, str | None]:
    """``(parse_inferred_instruction(text), parse_reasoning(text))``, cleaning the text and finding its JSON objects
    once for both (the reward path needs both for every judgment)."""
    cleaned, cache = _clean(text), {}
    whole = _one_object_answer(cleaned)
    if whole is not None:
        return whole
    return _instruction(cleaned, cache), _to_text(_extract(cleaned, REASONING_KEYS, cache))


def _one_object_answer(cleaned: str | None) -> tuple[str | None, str | None] | None:
    """The answer of text that is one valid JSON object holding a template instruction key and the reasoning key,
    both written out in the text (what a judge asked for JSON nearly always answers), or None to take the general
    path. It gives what the general path gives, since there that object is the only span and its keys are hits,
    without the key, label and tag scans."""
    stripped = cleaned.strip() if cleaned is not None else ""
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return None
    decoded = loads_or_missing(stripped)
    if not isinstance(decoded, dict):
        return None
    found = []
    for names in (_TEMPLATE_INSTRUCTION_KEYS, REASONING_KEYS):
        value = lookup(decoded, names)
        if value is MISSING or not _key_regex(names).search(stripped):
            return None
        found.append(_to_text(value))
    return found[0], found[1]


def _instruction(cleaned: str | None, cache: dict) -> str | None:
    """parse_inferred_instruction on cleaned text: the template's keys, else the invented ones."""
    value = _extract(cleaned, _TEMPLATE_INSTRUCTION_KEYS, cache)
    return _to_text(_extract(cleaned, _INVENTED_INSTRUCTION_KEYS, cache) if value is MISSING else value)


def _extract(cleaned: str | None, names: Sequence[str], cache: dict) -> object:
    """extract_field on cleaned text, MISSING when not found; ``cache`` shares the text's layout between fields."""
    names = (names,) if isinstance(names, str) else tuple(n for n in names if isinstance(n, str) and norm(n))
    if cleaned is None or not names or not _mentions(cleaned, names, cache):
        return MISSING
    hits = [match.start("key") for match in _key_regex(names).finditer(cleaned)]
    if not hits and not _label_regex(names).search(cleaned) and not _tag_regex(names, True).search(cleaned):
        return MISSING  # the fast path for text that never names the field
    spans, elements, pieces = _layout(cleaned, names, cache)
    wanted = {norm(name) for name in names}
    foreign = [(el[0], el[3]) for el in elements if el[4] not in wanted]
    value = from_json(cleaned, [s for s in spans if not _inside(s[0], foreign)], hits, names)
    stops = _KNOWN_LABELS + names
    for texts in (  # lazy: each source is read only when the ones before it found nothing
        (cleaned[element[1] : element[2]] for element in reversed(elements) if element[4] in wanted),
        _after_marks(pieces, _label_regex(names), _stop_regex(stops, False)),
        _after_marks(pieces, _tag_regex(names, True), _stop_regex(stops, True)),
    ):
        value = _first_usable(texts) if value is MISSING else value
    return value


def _mentions(text: str, names: tuple[str, ...], cache: dict) -> bool:
    """Whether every word of one of ``names`` occurs in ``text``, any case: a cheap test that any key, label or tag
    of theirs must pass (substring search is much faster than trying a regex at every offset)."""
    if "folded" not in cache:
        cache["folded"] = text.casefold()
    return any(all(word in cache["folded"] for word in words) for words in _name_words(names))


@lru_cache(maxsize=64)
def _name_words(names: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """The casefolded words of each of ``names``."""
    return tuple(tuple(filter(None, re.split(r"[\W_]+", name.casefold()))) for name in names)


def _to_text(value: object) -> str | None:
    """A field value as stripped non-empty valid Unicode text (a JSON escape such as ``"\\ud83d"`` decodes to a lone
    surrogate, made U+FFFD: see ``flip_reward.text``): lists of scalars join with newlines, numbers and bools go
    through ``str``; None, dicts (structure, not an answer), nested lists and blanks give None."""
    if isinstance(value, str):
        return valid_text(value.strip()) or None
    if isinstance(value, (bool, int, float)):
        return str(value)
    if isinstance(value, list):
        items = (_to_text(item) for item in value if not isinstance(item, (list, dict)))
        return "\n".join(item for item in items if item) or None
    return None


def _clean(text: object) -> str | None:
    """Text without BOM, CR line endings, the chat-template tokens around the answer (``_without_template_edges``)
    and thinking, decoded if it is JSON encoded as a JSON string; None for non-strings. Text that is one JSON object
    keeps its ``<think>`` tags: inside a JSON string they are the judge's text, not its thinking."""
    if not isinstance(text, str):
        return None
    text = _without_template_edges(text.replace("\ufeff", "").replace("\r\n", "\n").replace("\r", "\n"))
    unthought = strip_thinking(text)
    if unthought != text and _is_json_object(text):
        unthought = text
    return decode_string_literal(unthought)


def _without_template_edges(text: str) -> str:
    """``text`` without the assistant header before the answer and the end-of-turn tokens after it (see
    _SPECIAL_TOKEN); chat-template tokens anywhere else are kept."""
    leading = _LEADING_TOKENS.match(text)
    start = leading.end() if leading else 0
    reach = max(start, len(text) - _TRAILING_REACH)
    ends_in_tag = text[reach:].rstrip().endswith(">")  # a quick test: most answers end in "}" or prose
    trailing = _TRAILING_TOKENS.search(text, reach) if ends_in_tag else None
    return text[start : trailing.start() if trailing else len(text)]


def _is_json_object(text: str) -> bool:
    """Whether ``text`` is one valid JSON object (with surrounding whitespace)."""
    stripped = text.strip()
    return stripped[:1] == "{" and stripped[-1:] == "}" and isinstance(loads_or_missing(stripped), dict)


def _layout(text: str, names: tuple[str, ...], cache: dict) -> tuple[list, list, list[str]]:
    """The text's JSON object spans, its top-level tagged elements of known fields and ``names`` outside JSON
    objects (see _elements), and the pieces of text outside both; cached per set of names beyond the known ones."""
    if "spans" not in cache:
        cache["spans"] = list(object_spans(text))
    spans = cache["spans"]
    extra = tuple(sorted({norm(name) for name in names} - _KNOWN_NORMS))
    if extra not in cache:
        objects = [(start, end) for start, end in spans if JSON_OBJECT_START.match(text, start)]
        tags = _tag_regex(_KNOWN_LABELS + names, False).finditer(text) if "<" in text else ()
        elements = _elements(tag for tag in tags if not _inside(tag.start(), objects))
        cache[extra] = elements, _pieces(text, objects + [(el[0], el[3]) for el in elements])
    return spans, *cache[extra]


def _inside(pos: int, intervals: list[tuple[int, int]]) -> bool:
    """Whether ``pos`` falls in one of ``intervals`` (sorted, disjoint ``(start, end)`` pairs)."""
    index = bisect.bisect_right(intervals, (pos, float("inf"))) - 1
    return index >= 0 and intervals[index][0] <= pos < intervals[index][1]


def _pieces(text: str, intervals: list[tuple[int, int]]) -> list[str]:
    """The pieces of ``text`` between the (possibly overlapping) ``intervals``."""
    pieces, pos = [], 0
    for start, end in sorted(intervals):
        if start > pos:
            pieces.append(text[pos:start])
        pos = max(pos, end)
    pieces.append(text[pos:])
    return pieces


def _elements(tags: Iterable[re.Match[str]]) -> list[tuple[int, int, int, int, str]]:
    """The outermost closed elements among ``tags`` as (start, content start, content end, end, normalised name),
    in order: each closing tag pairs with the latest unpaired opening tag of its name."""
    opened: dict[str, re.Match[str]] = {}
    paired = []
    for tag in tags:
        name = norm(tag.group("name"))
        if not tag.group("close"):
            opened[name] = tag
        elif name in opened:
            start = opened.pop(name)
            paired.append((start.start(), start.end(), tag.start(), tag.end(), name))
    outermost, reach = [], 0
    for element in sorted(paired):
        if element[0] >= reach:
            outermost.append(element)
            reach = element[3]
    return outermost


def _names_regex(names: tuple[str, ...]) -> str:
    """Regex alternation matching any of ``names`` with spaces, underscores or hyphens between words."""
    words = (filter(None, re.split(r"[\W_]+", name)) for name in names)
    return "|".join("[ \t_-]*".join(map(re.escape, parts)) for parts in words)


@lru_cache(maxsize=64)
def _key_regex(names: tuple[str, ...]) -> re.Pattern[str]:
    """A wanted name, quoted (straight or curly) or bare, where a JSON key would be: after ``{``, ``,``, a quote or
    a closing bracket, and before ``:``. Group "key" starts at the key's opening quote if it has one."""
    name = f"(?:{_names_regex(names)})"
    key = rf"[\"'“”‘’]\s*{name}\s*[\"'“”‘’]\s*:|(?<![A-Za-z0-9]){name}\s*:"
    return re.compile(rf"[{{,\"'\]}}“”‘’]\s*(?P<key>{key})", re.IGNORECASE)


@lru_cache(maxsize=64)
def _label_regex(names: tuple[str, ...]) -> re.Pattern[str]:
    """A label opening a line, after an optional bullet, heading mark or number: ``KEY:``, ``**Key:**``,
    ``**KEY**:``, ``- Key:``, ``2) Key:``, ``KEY - value``, ``Key — value``, ``## Key`` (on its own line)."""
    return re.compile(
        r"^[ \t]*(?:[-*+>•·▪][ \t]+)?(?:#{1,6}[ \t]*)?(?:\*\*|__)?(?:\(?\d{1,3}[.)][ \t]*)?(?:\*\*|__)?"
        rf"[\"'“”‘’]?(?:{_names_regex(names)})[\"'“”‘’]?(?:\*\*|__)?[ \t]*"
        r"(?:(?::|(?<=[ \t])--?(?=[ \t])|[–—])(?:[ \t]*(?:\*\*|__))?|(?=\n|\Z))",
        re.IGNORECASE | re.MULTILINE,
    )


@lru_cache(maxsize=64)
def _tag_regex(names: tuple[str, ...], opening_only: bool) -> re.Pattern[str]:
    """An XML-style tag of a wanted name, ``<inferred_instruction>``, ``< INFERRED INSTRUCTION >``, ``</reasoning>``
    (group "close" set), any case; only opening tags when ``opening_only``."""
    close = "" if opening_only else "(?P<close>/)?"
    return re.compile(rf"<[ \t]*{close}[ \t]*(?P<name>{_names_regex(names)})[ \t]*>", re.IGNORECASE)


@lru_cache(maxsize=64)
def _stop_regex(names: tuple[str, ...], tags_anywhere: bool) -> re.Pattern[str]:
    """Where a plain-text value ends: a label of ``names`` or a tag of theirs, at a line start unless
    ``tags_anywhere`` (a value after an unclosed tag ends at any tag; one after a label keeps inline ones)."""
    tag = ("" if tags_anywhere else r"^[ \t]*") + _tag_regex(names, False).pattern
    return re.compile(f"{_label_regex(names).pattern}|{tag}", re.IGNORECASE | re.MULTILINE)


def _after_marks(pieces: list[str], marks: re.Pattern[str], stops: re.Pattern[str]) -> Iterator[str]:
    """The text after each of ``marks`` (labels or opening tags) in ``pieces``, last first, up to the next of
    ``stops`` or the end of its piece."""
    for piece in reversed(pieces):
        for mark in reversed(list(marks.finditer(piece))):
            stop = stops.search(piece, mark.end())
            yield piece[mark.end() : stop.start() if stop else len(piece)]


def _first_usable(texts: Iterable[str]) -> object:
    """The first of up to MAX_CANDIDATES tidied ``texts`` that is neither blank nor a placeholder, or MISSING."""
    for text in islice(texts, MAX_CANDIDATES):
        value = _tidy(text)
        if value and not is_placeholder(value):
            return value
    return MISSING


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
    return quoted.group(2).strip() if quoted and _QUOTE_PAIRS[quoted.group(1)] == quoted.group(3) else value
