"""How the restatement guard reads text: the normalised tokens of a response or an instruction (case, punctuation,
articles, escapes, joiners, format characters, look-alike letters and spelled-out words do not hide a word), and
which of an instruction's tokens are its request rather than the material it supplies for the answer. The rules and
their reasons are in flip_reward/core/restatement.py's docstring, under "Tokens" and "Request and material"."""

from __future__ import annotations

import re
import string
import unicodedata
from bisect import bisect_left, bisect_right
from operator import itemgetter

import regex

MIN_REQUEST = 3  # request tokens that must precede a paragraph break or colon for what follows to be material
MIN_QUOTED = 3  # tokens of a quoted passage that make it material
MAX_SPELLED = 24  # letters of the longest instruction word recognised spelled out one letter at a time

PUNCTUATION = string.punctuation + "\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u00ab\u00bb\u2013\u2014\u2026\u00b7"
_DELETE = str.maketrans("", "", PUNCTUATION)
_ARTICLES = frozenset(("a", "an", "the"))
_CHUNK = re.compile(r"\S+")
_ESCAPED_CHUNK = re.compile(r"(?<!\\)(?:[^\s\\]|\\(?![nrtbf\"'/\\]))+")  # escapes split words: "sea.\nWrite" is two
_JOINED = re.compile(r"[-_.](?<=[^\W\d_][-_.])[-_.]*(?=[^\W\d_])")  # joins letters: well-known, write_a, W.r.i.t.e
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_FIRST = itemgetter(0)
_ASCII_JOINER = re.compile(r"[-_.]+")
_JOINER = regex.compile(r"[\p{Cf}\p{Pd}_.]+")  # format characters (zero-width, soft hyphen, bidi), dashes, _ and .
# Lowercase Cyrillic and Greek letters drawn like a Latin one (after lowercasing, so capitals count too), each Latin
# letter from at most one letter of each script; an explicit table: Unicode's confusables skeleton (UTS #39) also
# folds Latin letters into each other (rn/m, l/1/I), which would merge honest words.
_LOOKALIKES = str.maketrans(
    "\u0430\u0432\u0435\u043a\u043c\u043d\u043e\u0440\u0441\u0442\u0443\u0445\u0456\u0458\u0455\u0501\u051b\u051d\u04cf"
    "\u03b1\u03b2\u03b5\u03b6\u03b7\u03b9\u03ba\u03bc\u03bd\u03bf\u03c1\u03c4\u03c5\u03c7",
    "abekmhopctyxijsdqwlabezhikmnoptyx",
)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"[.!?\n](?:(?<=\n)|(?=\s))")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)  # keeps every offset
_NAMED_MATERIAL = re.compile(  # matched in the first sentence with ASCII letters lowercased
    r"\b(?:th(?:is|ese|e(?: following| given)?)|following|given|below|above)\s+(?:sentences?|text|paragraphs?|"
    r"passages?|lists?|code|words?|phrases?|titles?|strings?|numbers)\b(?:\s+(?:below|above))?"
    r"|\b(?:upper|lower|title|sentence|camel|snake)[ -]?case\b"
)
_CLAUSE_COLON = re.compile(r"[:\uff1a](?=\s)")
_QUOTED = re.compile(
    r"```.*?```|~~~.*?~~~|`[^`\n]+`|\"[^\"]+\"|\u201c[^\u201d]+\u201d|\u00ab[^\u00bb]+\u00bb|(?<!\w)'[^'\n]+'(?!\w)",
    re.DOTALL,
)

Token = tuple[str, int, int]


def tokens_of(text: str, vocabulary: frozenset[str] | set[str] | None = None) -> list[Token]:
    """(token, start, end) of each chunk of ``text`` that carries a token, in order. With the ``vocabulary`` of an
    instruction, a chunk that joins its words (hyphens, underscores, dots, format characters) gives them one by
    one, and letters spelled out one at a time (``W r i t e``, ``W.r.i.t.e``) give the words they spell."""
    chunks = (_ESCAPED_CHUNK if "\\" in text else _CHUNK).finditer(text)
    found = [(chunk.group().lower().translate(_DELETE), chunk.start(), chunk.end()) for chunk in chunks]
    if not text.isascii() or (vocabulary and _JOINED.search(text)):
        found = _normalised(found, text, vocabulary)
    if vocabulary:
        found = _spelled(found, vocabulary)
    return [piece for piece in found if piece[0] and piece[0] not in _ARTICLES]


def _normalised(found: list[Token], text: str, vocabulary: frozenset[str] | set[str] | None) -> list[Token]:
    """``found`` (the plain token of each chunk of ``text``) with the chunks that hold a non-ASCII character, or that
    may join words of the ``vocabulary``, read again by ``_pieces``; linear in their number."""
    starts = [start for _, start, _ in found]
    hits = [] if text.isascii() else [hit.start() for hit in _NON_ASCII.finditer(text)]
    if vocabulary:
        hits += [hit.start() for hit in _JOINED.finditer(text)]
    marked = sorted({bisect_right(starts, hit) - 1 for hit in hits} - {-1})
    if vocabulary:  # a chunk that is an instruction word as it is stays one
        marked = [index for index in marked if found[index][0] not in vocabulary]
    rebuilt: list[Token] = []
    previous = 0
    for index in marked:
        rebuilt += found[previous:index]
        _, start, end = found[index]
        rebuilt += _pieces(text[start:end], start, vocabulary)
        previous = index + 1
    return rebuilt + found[previous:]


def _fold(text: str) -> str:
    """The token of a piece of a chunk: NFKC, lowercase, Cyrillic and Greek look-alikes as Latin, no punctuation."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).lower().translate(_LOOKALIKES)
    return text.lower().translate(_DELETE)


def _pieces(chunk: str, start: int, vocabulary: frozenset[str] | set[str] | None) -> list[Token]:
    """The tokens of one chunk at ``start``: one for the chunk without its format characters, or, when it joins
    words of the ``vocabulary`` rather than being one of them, one for each piece between its joiners."""
    if chunk.isascii() and (vocabulary is None or not _JOINED.search(chunk)):
        return [(chunk.lower().translate(_DELETE), start, start + len(chunk))]
    parts, at = [], 0
    for joiner in [*(_ASCII_JOINER if chunk.isascii() else _JOINER).finditer(chunk), None]:
        end = len(chunk) if joiner is None else joiner.start()
        if token := _fold(chunk[at:end]):
            parts.append((token, start + at, start + end))
        at = end if joiner is None else joiner.end()
    whole = ("".join(token for token, _, _ in parts), start, start + len(chunk))
    if vocabulary is None or len(parts) < 2 or whole[0] in vocabulary:
        return [whole]
    parts = _spelled(parts, vocabulary)
    return parts if sum(len(token) > 1 and token in vocabulary for token, _, _ in parts) >= 2 else [whole]


def _spelled(found: list[Token], vocabulary: frozenset[str] | set[str]) -> list[Token]:
    """``found`` with each run of one-letter tokens that spells words of the ``vocabulary`` (of 2 to MAX_SPELLED
    letters; the longest first) turned into those words."""
    if list(map(len, map(_FIRST, found))).count(1) < 2:
        return found
    vocabulary = vocabulary | _ARTICLES  # spelled out as well ("t h e"), and dropped as articles
    prefixes = {word[:end] for word in vocabulary if len(word) <= MAX_SPELLED for end in range(2, len(word) + 1)}
    out, index = [], 0
    while index < len(found):
        word, stop = None, index
        if len(found[index][0]) == 1:
            spelled, end = found[index][0], index
            while end + 1 < len(found) and len(found[end + 1][0]) == 1:
                spelled += found[end + 1][0]
                if spelled not in prefixes:
                    break
                end += 1
                if spelled in vocabulary:
                    word, stop = (spelled, found[index][1], found[end][2]), end
        out.append(word or found[index])
        index = stop + 1
    return out


def request_flags(instruction: str, found: list[Token]) -> list[bool]:
    """Whether each of the instruction's tokens ``found`` belongs to its request rather than to the material it
    supplies for the answer (after a paragraph break or a clause-ending colon, or quoted); linear in its length."""
    starts = [start for _, start, _ in found]
    flags = [True] * len(found)
    for split in (*(pattern.search(instruction) for pattern in (_PARAGRAPH_BREAK, _CLAUSE_COLON)), named(instruction)):
        if split and sum(flags[: bisect_left(starts, split.end())]) >= MIN_REQUEST:
            flags[bisect_left(starts, split.end()) :] = [False] * (len(found) - bisect_left(starts, split.end()))
    left = sum(flags)
    for quoted in _QUOTED.finditer(instruction):
        inside = range(bisect_left(starts, quoted.start()), bisect_left(starts, quoted.end()))
        quoted_request = sum(flags[index] for index in inside)
        if len(inside) >= MIN_QUOTED and left - quoted_request >= 1:
            flags[inside.start : inside.stop] = [False] * len(inside)
            left -= quoted_request
    return flags


def named(instruction: str) -> re.Match[str] | None:
    """Where the material begins when the instruction's first sentence names it (``this sentence``, ``the following
    text``, ``the list below``...): the end of that sentence, or of the name when the sentence runs on into it."""
    sentence_end = _SENTENCE_END.search(instruction)
    bound = sentence_end.start() if sentence_end else len(instruction)
    name = _NAMED_MATERIAL.search(instruction[:bound].translate(_ASCII_LOWER))
    if name is None:
        return None
    return sentence_end if sentence_end and sentence_end.end() < len(instruction) else name
